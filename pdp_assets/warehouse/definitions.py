"""Everything the warehouse loads contribute, without resources (bound in pdp_assets.definitions).

Reading loads.yaml here means a bad file stops the code location from loading, with a message
that names the file, the load and the field.
"""

import dagster as dg

from pdp_assets.warehouse.assets import build_load_asset, build_load_job
from pdp_assets.warehouse.config import CONFIG_PATH, WarehouseConfig, load_config
from pdp_assets.warehouse.deletions import build_deletion_asset


def build_defs(cfg: WarehouseConfig) -> dg.Definitions:
    loads = cfg.enabled
    return dg.Definitions(
        assets=[*(build_load_asset(cfg, load) for load in loads), build_deletion_asset(cfg)],
        jobs=[build_load_job(load) for load in loads],
    )


config = load_config(CONFIG_PATH)
defs = build_defs(config)
