"""How retail work is started: the weekly job and its schedule."""

import datetime as dt

import dagster as dg

from pdp_assets.defs.retail import assets
from pdp_assets.lib.partitions import week_key, weekly_partitions

# In process: every step and check of a run shares the process's one Spark session, instead of
# each starting its own JVM (about 10 s and 1 GB each).
retail_job = dg.define_asset_job(
    "retail_job",
    selection=dg.AssetSelection.groups(assets.GROUP),
    partitions_def=weekly_partitions,
    executor_def=dg.in_process_executor,
    description="Bronze -> silver -> gold for one week or a range of weeks, in one Spark session.",
)


@dg.schedule(job=retail_job, cron_schedule="0 3 * * 1", execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def retail_weekly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Every Monday at 03:00 UTC, the week that has just ended."""
    last_week = week_key(context.scheduled_execution_time.date() - dt.timedelta(days=7))
    return dg.RunRequest(run_key=last_week, partition_key=last_week)

