"""How health work is started: every morning the automation sensor observes the sources (reads
Google, writes nothing) for this week and the last, as their AutomationCondition says; it then
builds only the weeks whose content or code changed. The jobs do the same by hand or for a range."""

import dagster as dg

from pdp_assets.defs.health.assets import BLOOD_PRESSURE, DAILY, HEART_RATE, RAW_BP, RAW_MI_BAND, SLEEP

health_observe_job = dg.define_asset_job(
    "health_observe_job",
    selection=dg.AssetSelection.assets(RAW_BP, RAW_MI_BAND),
    description="Read the sheet and the Drive folder; record a data version per week (no writes).",
)
health_job = dg.define_asset_job(
    "health_job",
    selection=dg.AssetSelection.assets(BLOOD_PRESSURE, HEART_RATE, SLEEP, DAILY),
    description="Normalise, validate and merge the selected weeks (a range runs as one run).",
)
