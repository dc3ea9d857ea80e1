"""One abstract resource per external system; local and cloud implementations beside it."""

from pdp_assets.lib.resources.storage import AzureBlobStorage, BlobInfo, BlobStorage, LocalBlobStorage

__all__ = ["AzureBlobStorage", "BlobInfo", "BlobStorage", "LocalBlobStorage"]
