"""Keeps dead runs from blocking the queue: each tick, a run in progress whose process is gone
(its host restarted, ``dg dev`` or ``pdp ingest`` was killed) is marked failed, so run retries
launch it again and its pool slot is free. It ticks soon after the daemon starts, which is when
a host restart's runs are found."""

import dagster as dg

from pdp_assets.lib.dead_runs import fail_dead_runs


@dg.sensor(minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def dead_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    """Marks failed every run in progress whose process no longer exists on this host."""
    failed = fail_dead_runs(context.instance)
    if failed:
        context.log.warning(f"marked failed {len(failed)} run(s) whose process is gone: {failed}")
        return dg.SkipReason(f"marked failed {len(failed)} run(s) whose process is gone: {', '.join(failed)}")
    return dg.SkipReason("every run in progress has a live process")
