"""``pdp ingest`` without a daemon: tick the lab sensors once and execute the runs they request,
then do what the automation sensor would do next: honour the deletion requests in the warehouse
and rebuild the lake weeks those runs changed, synchronously, on an instance.

The runs are recorded on the instance at ``$DAGSTER_HOME`` like any other, so they show in the
UI. Between invocations it keeps no state of its own: each sensor's cursor and the weeks to
rebuild are worked out from what Dagster has recorded, so an invocation that was killed part way
is picked up by the next one.
"""

import json
from dataclasses import dataclass, field
from typing import Callable, Optional

import dagster as dg

from pdp_assets.defs.lab_results.assets import lab_deletions, lab_results, STAGED_WEEKS
from pdp_assets.defs.warehouse.deletions import warehouse_lab_deletions
from pdp_assets.lib.dead_runs import fail_dead_runs, this_process_tags
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.intake import partition_key
from pdp_assets.lib.partitions import deletion_partitions, upload_partitions
from pdp_assets.lib.resources.storage import BlobStorage
from pdp_assets.ops.home import initialised

# The event log keeps everything; the command prints one line per failed run (service_errors).
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
DONE = (dg.AssetPartitionStatus.MATERIALIZED, dg.AssetPartitionStatus.IN_PROGRESS)
# What the automation sensor does under a daemon, after the sensors' runs.
WAREHOUSE_STEP, LAKE_STEP = "warehouse_deletions", "lab_lake"
Echo = Optional[Callable[[str], None]]


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


def _requested_blobs(instance: dg.DagsterInstance, storage: BlobStorage, container: str,
                     partitions_def: dg.DynamicPartitionsDefinition) -> str:
    """A drop-container sensor's cursor as the daemon would have it: the blob versions that have a
    run. The sensor asks again for those whose run failed or died, from what Dagster recorded, as
    it does under the daemon; one requested by an invocation killed before its run was created
    counts as new."""
    blobs = {partition_key(b.name, b.etag): b for b in storage.list_blobs(container) if "/" not in b.name}
    known = set(instance.get_dynamic_partitions(partitions_def.name)) & blobs.keys()
    ran = [k for k in sorted(known) if instance.get_runs_count(dg.RunsFilter(tags={"dagster/partition": k}))]
    return json.dumps({blobs[k].name: blobs[k].etag for k in ran})


# The sensors `pdp ingest` ticks, in order, each with how its cursor is found.
LAB_SENSORS = {
    "lab_landing_sensor": lambda i, s: _requested_blobs(i, s, lake.LANDING, upload_partitions),
    "lab_deletion_sensor": lambda i, s: _requested_blobs(i, s, lake.DELETION_REQUESTS, deletion_partitions),
    "lab_erasure_sensor": lambda i, s: None,  # its state is the archive's own record of erasures applied
}


def unapplied_deletions(instance: dg.DagsterInstance) -> list[str]:
    """Deletion requests the lab recorded that the warehouse has not yet honoured."""
    requests = instance.get_dynamic_partitions(deletion_partitions.name)
    if not requests:
        return []
    lab = instance.get_status_by_partition(lab_deletions.key, requests, deletion_partitions) or {}
    warehouse = instance.get_status_by_partition(warehouse_lab_deletions.key, requests, deletion_partitions) or {}
    return [r for r in requests if lab.get(r) == dg.AssetPartitionStatus.MATERIALIZED and warehouse.get(r) not in DONE]


def _latest_by_week(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, int]:
    """The storage id of each week's latest materialization of ``key``."""
    latest: dict[str, int] = {}
    cursor = None
    while True:
        page = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1000, cursor=cursor)
        for record in page.records:
            latest[record.partition_key] = max(latest.get(record.partition_key, 0), record.storage_id)
        if not page.has_more:
            return latest
        cursor = page.cursor


def stale_weeks(instance: dg.DagsterInstance) -> list[str]:
    """Weeks whose inputs an upload or a deletion changed after the week was last rebuilt: what
    lab_results' AutomationCondition requests under the daemon."""
    built = _latest_by_week(instance, lab_results.key)
    return sorted(w for w, changed in _latest_by_week(instance, STAGED_WEEKS).items() if changed > built.get(w, 0))


def _label(first: Optional[str], last: Optional[str]) -> str:
    return (first or "") if first == last else f"{first}...{last}"


def _execute(instance, job, step: str, label: str, echo: Echo, partition_key=None, tags=None,
             run_config=None) -> RunOutcome:
    if echo:
        echo(f"{step}: running {job.name} [{label}]")
    outcome = job.execute_in_process(instance=instance, partition_key=partition_key,
                                     tags={**(tags or {}), "pdp/launched_by": "pdp ingest", **this_process_tags()},
                                     run_config={**(run_config or {}), **QUIET}, raise_on_error=False)
    if echo:
        echo(f"  {'succeeded' if outcome.success else 'FAILED'}: run {outcome.run_id}")
    return RunOutcome(step, outcome.run_id, job.name, label, outcome.success)


def evaluate_and_run(defs: dg.Definitions, instance: dg.DagsterInstance, echo: Echo = None) -> TickSummary:
    """Tick each sensor in order (once) and execute every run it asked for before the next; then
    rebuild, in one run, the lake weeks changed since their last rebuild."""
    summary = TickSummary()
    dead = fail_dead_runs(instance)  # an earlier invocation killed mid-run: its runs count as failed
    if dead and echo:
        echo(f"marked failed {len(dead)} run(s) whose process is gone: {', '.join(dead)}")
    resources = defs.resources or {}
    storage = initialised(resources["storage"])
    for name, find_cursor in LAB_SENSORS.items():
        sensor = defs.resolve_sensor_def(name)
        with dg.build_sensor_context(instance=instance, cursor=find_cursor(instance, storage), resources=resources,
                                     definitions=defs, sensor_name=name) as context:
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
            summary.runs.append(_execute(instance, job, name, _label(request.partition_key, request.partition_key),
                                         echo, request.partition_key, {**request.tags, "dagster/sensor_name": name},
                                         request.run_config))
    pending = unapplied_deletions(instance)
    if not pending:
        summary.skipped[WAREHOUSE_STEP] = "every recorded deletion request is honoured in the warehouse"
    for request in pending:
        summary.runs.append(_execute(instance, defs.resolve_job_def("warehouse_deletion_job"), WAREHOUSE_STEP,
                                     request, echo, request))
    weeks = stale_weeks(instance)
    if not weeks:
        summary.skipped[LAKE_STEP] = "no lake week changed since it was last rebuilt"
        return summary
    range_tags = {"dagster/asset_partition_range_start": weeks[0], "dagster/asset_partition_range_end": weeks[-1],
                  "pdp/weeks_changed": str(len(weeks))}
    summary.runs.append(_execute(instance, defs.resolve_job_def("lab_lake_job"), LAKE_STEP,
                                 _label(weeks[0], weeks[-1]), echo, tags=range_tags))
    return summary
