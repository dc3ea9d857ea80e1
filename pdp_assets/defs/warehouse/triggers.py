"""How warehouse work is started: each load's week runs when its source week changes, and each
lab deletion request is honoured once the lab recorded it, as the assets' AutomationConditions
say. The jobs do the same by hand (a load job per load in loads.yaml)."""

import dagster as dg

from pdp_assets.defs.warehouse.assets import build_load_job, CONFIG

load_jobs = [build_load_job(load) for load in CONFIG.enabled]
warehouse_deletion_job = dg.define_asset_job(
    "warehouse_deletion_job",
    selection=dg.AssetSelection.assets("warehouse_lab_deletions"),
    description="Delete one lab deletion request's records from the warehouse's tables.",
)
