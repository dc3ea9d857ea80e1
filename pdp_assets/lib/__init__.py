"""Pure code the assets and the operator commands share: validation, lake I/O, transforms, SQL,
the storage backends and the ISO-week partitions. Nothing here imports ``pdp_assets.defs``."""
