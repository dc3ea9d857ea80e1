"""How retail work is started: every Monday the automation sensor builds the week that has just
ended, bronze to gold, as the assets' AutomationConditions say; retail_job does the same by hand
or for a range of weeks."""

import dagster as dg

from pdp_assets.defs.retail import assets

# In process: every step and check of a run shares the process's one Spark session instead of
# each starting its own JVM.
retail_job = dg.define_asset_job(
    "retail_job",
    selection=dg.AssetSelection.groups(assets.GROUP),
    executor_def=dg.in_process_executor,
    description="Bronze -> silver -> gold for one week or a range of weeks, in one Spark session.",
)
