"""How health work is started: a daily schedule observes the sources (reads Google, writes
nothing); the automation sensor then builds only the weeks whose content or code changed."""

import datetime as dt

import dagster as dg

from pdp_assets.defs.health.assets import BLOOD_PRESSURE, DAILY, GROUP, HEART_RATE, RAW_BP, RAW_MI_BAND, SETTINGS, SLEEP
from pdp_assets.lib.partitions import week_key, weekly_partitions

health_observe_job = dg.define_asset_job(
    "health_observe_job",
    selection=dg.AssetSelection.assets(RAW_BP, RAW_MI_BAND),
    partitions_def=weekly_partitions,
    description="Read the sheet and the Drive folder; record a data version per week (no writes).",
)
health_job = dg.define_asset_job(
    "health_job",
    selection=dg.AssetSelection.assets(BLOOD_PRESSURE, HEART_RATE, SLEEP, DAILY),
    partitions_def=weekly_partitions,
    description="Normalise, validate and merge the selected weeks (a range runs as one run).",
)


def refresh_request(today: dt.date) -> dg.RunRequest:
    """Observe this week and the last (a reading typed on Monday may be for Sunday)."""
    return dg.RunRequest(
        tags={
            "dagster/asset_partition_range_start": week_key(today - dt.timedelta(days=7)),
            "dagster/asset_partition_range_end": week_key(today),
        }
    )


@dg.schedule(
    job=health_observe_job,
    cron_schedule="0 6 * * *",
    execution_timezone=SETTINGS.timezone,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def health_daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every morning, look at the current (and previous) week in Google; unchanged weeks get the
    same data version, so nothing downstream is requested for them."""
    return refresh_request(context.scheduled_execution_time.date())


# Turns new data versions and code versions into runs: one backfill (single run) per tick.
health_automation_sensor = dg.AutomationConditionSensorDefinition(
    "health_automation_sensor",
    target=dg.AssetSelection.groups(GROUP),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)
