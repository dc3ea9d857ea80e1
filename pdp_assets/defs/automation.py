"""The one automation-condition sensor, for every source: each tick it evaluates the
AutomationCondition declared on each asset and launches what is due, a range of weeks of a
single-run asset as one run. Runs execute in process: their steps are chains of Polars, Spark or
SQL work that share one process (and one Spark session) better than a process each."""

import dagster as dg

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(include_sources=True),  # the observed health sources too
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
)

defs = dg.Definitions(sensors=[automation_sensor], executor=dg.in_process_executor)
