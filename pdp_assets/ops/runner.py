"""Evaluate sensors once and execute the runs they request, synchronously, on an instance.

This is what ``pdp ingest`` does without a daemon: the runs are recorded on the instance at
``$DAGSTER_HOME`` like any other, so they show in the UI. Each sensor keeps its own cursor for
this path in the instance's key-value store, apart from the daemon's.
"""

from dataclasses import dataclass, field
from typing import Callable, Optional

import dagster as dg

CURSOR_PREFIX = "pdp/ingest-cursor/"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the event log keeps all


@dataclass
class RunOutcome:
    sensor: str
    run_id: str
    job: str
    partition: str
    success: bool


@dataclass
class TickSummary:
    runs: list[RunOutcome] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[RunOutcome]:
        return [r for r in self.runs if not r.success]


def _partition_label(request: dg.RunRequest) -> str:
    rng = request.partition_key_range
    if rng:
        return rng.start if rng.start == rng.end else f"{rng.start}...{rng.end}"
    return request.partition_key or ""


def evaluate_and_run(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    sensor_names: list[str],
    echo: Optional[Callable[[str], None]] = None,
) -> TickSummary:
    """Tick each sensor in order (once), then execute every run it asked for before the next."""
    summary = TickSummary()
    resources = defs.resources or {}
    for name in sensor_names:
        sensor = defs.resolve_sensor_def(name)
        cursor_key = CURSOR_PREFIX + name
        cursor = instance.run_storage.get_cursor_values({cursor_key}).get(cursor_key)
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources=resources, definitions=defs, sensor_name=name
        ) as context:
            result = sensor(context)
        if isinstance(result, dg.SkipReason):
            result = dg.SensorResult(skip_reason=result)
        for req in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        if result.cursor is not None:
            instance.run_storage.set_cursor_values({cursor_key: result.cursor})
        if not result.run_requests:
            summary.skipped[name] = result.skip_reason.skip_message if result.skip_reason else "nothing to do"
            continue
        job = defs.resolve_job_def(sensor.job_name)
        for request in result.run_requests:
            label = _partition_label(request)
            if echo:
                echo(f"{name}: running {job.name} [{label}]")
            outcome = job.execute_in_process(
                instance=instance,
                partition_key=request.partition_key,
                tags={**request.tags, "dagster/sensor_name": name, "pdp/launched_by": "pdp ingest"},
                run_config={**(request.run_config or {}), **QUIET},
                raise_on_error=False,
            )
            summary.runs.append(RunOutcome(name, outcome.run_id, job.name, label, outcome.success))
            if echo:
                echo(f"  {'succeeded' if outcome.success else 'FAILED'}: run {outcome.run_id}")
    return summary


LAB_SENSORS = ["lab_landing_sensor", "lab_deletion_sensor", "lab_lake_sensor"]
