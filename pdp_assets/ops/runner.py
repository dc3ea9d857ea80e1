"""Evaluate the lab sensors once and execute the runs they request, synchronously, on an instance.

This is what ``pdp ingest`` does without a daemon: the runs are recorded on the instance at
``$DAGSTER_HOME`` like any other, so they show in the UI. Between invocations it keeps no state of
its own: each sensor's cursor is worked out from what Dagster has recorded, so an invocation that
was killed part way is picked up by the next one.
"""

import json
from dataclasses import dataclass, field
from typing import Callable, Optional

import dagster as dg

from pdp_assets.defs.lab_results.assets import deletion_partitions, lab_deletions, lab_results, RAW_UPLOADS, upload_partitions
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.intake import partition_key
from pdp_assets.lib.resources.storage import BlobStorage

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the event log keeps all
DONE = (dg.AssetPartitionStatus.MATERIALIZED, dg.AssetPartitionStatus.IN_PROGRESS)


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


def _handled_blobs(instance: dg.DagsterInstance, storage: BlobStorage, container: str,
                   asset_key: dg.AssetKey, partitions_def: dg.DynamicPartitionsDefinition) -> str:
    """A drop-container sensor's cursor: the blob versions whose partition is materialized or
    being materialized. A version whose run failed or never started is requested again."""
    blobs = {partition_key(b.name, b.etag): b for b in storage.list_blobs(container) if "/" not in b.name}
    known = sorted(set(instance.get_dynamic_partitions(partitions_def.name)) & blobs.keys())
    status = (instance.get_status_by_partition(asset_key, known, partitions_def) or {}) if known else {}
    return json.dumps({blobs[k].name: blobs[k].etag for k in known if status.get(k) in DONE})


def _last_lake_build(instance: dg.DagsterInstance, storage: BlobStorage) -> str:
    """The lake sensor's cursor: the latest lab_results materialization, so every upload and
    deletion recorded after it is applied by the next lake run."""
    latest = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=lab_results.key), limit=1).records
    return str(latest[0].storage_id if latest else 0)


# The sensors `pdp ingest` ticks, in order, each with how its cursor is found.
LAB_SENSORS = {
    "lab_landing_sensor": lambda i, s: _handled_blobs(i, s, lake.LANDING, RAW_UPLOADS, upload_partitions),
    "lab_deletion_sensor": lambda i, s: _handled_blobs(i, s, lake.DELETION_REQUESTS, lab_deletions.key,
                                                       deletion_partitions),
    "lab_lake_sensor": _last_lake_build,
}


def _partition_label(request: dg.RunRequest) -> str:
    rng = request.partition_key_range
    if rng:
        return rng.start if rng.start == rng.end else f"{rng.start}...{rng.end}"
    return request.partition_key or ""


def evaluate_and_run(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    sensor_names=LAB_SENSORS,
    echo: Optional[Callable[[str], None]] = None,
) -> TickSummary:
    """Tick each sensor in order (once), then execute every run it asked for before the next."""
    summary = TickSummary()
    resources = defs.resources or {}
    storage = resources["storage"].process_config_and_initialize()
    for name in sensor_names:
        sensor = defs.resolve_sensor_def(name)
        cursor = LAB_SENSORS[name](instance, storage)
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources=resources, definitions=defs, sensor_name=name
        ) as context:
            result = sensor(context)
        if isinstance(result, dg.SkipReason):
            result = dg.SensorResult(skip_reason=result)
        for req in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
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
