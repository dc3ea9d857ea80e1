"""Everything the lab-results source contributes, without resources (bound in pdp_assets.definitions)."""

import dagster as dg

from pdp_assets.lab_results import assets
from pdp_assets.lab_results.checks import lake_checks
from pdp_assets.lab_results.sensors import (
    lab_deletion_job,
    lab_deletion_sensor,
    lab_export_job,
    lab_intake_job,
    lab_lake_job,
    lab_lake_sensor,
    lab_landing_sensor,
)

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([assets]),
    asset_checks=lake_checks,
    jobs=[lab_intake_job, lab_deletion_job, lab_lake_job, lab_export_job],
    sensors=[lab_landing_sensor, lab_deletion_sensor, lab_lake_sensor],
)
