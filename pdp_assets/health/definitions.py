"""Everything the health source contributes, without resources (bound in pdp_assets.definitions:
``google`` (a GoogleSource) and ``storage`` (a BlobStorage))."""

import dagster as dg

from pdp_assets.health import assets
from pdp_assets.health.checks import health_checks
from pdp_assets.health.jobs import (
    health_automation_sensor,
    health_daily_schedule,
    health_job,
    health_observe_job,
)

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([assets]),
    asset_checks=health_checks,
    jobs=[health_observe_job, health_job],
    schedules=[health_daily_schedule],
    sensors=[health_automation_sensor],
)
