"""How lab work is started: new landing CSVs -> intake runs, new deletion requests -> deletion
runs (sensors, since files must be noticed), archived uploads holding records a deletion erased ->
intake runs that rewrite their copies without them. The lake weeks those runs change are rebuilt by the
automation sensor (lab_results' AutomationCondition); lab_lake_job is the same rebuild by hand."""

import json

import dagster as dg

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.deletions import uploads_to_erase
from pdp_assets.lib.lab_results.intake import partition_key
from pdp_assets.lib.partitions import deletion_partitions, upload_partitions
from pdp_assets.lib.resources.storage import BlobStorage

# The lab jobs run in process: their steps are a few seconds of Polars and blob I/O in a chain,
# so a process per step (the default executor) would cost more than the work; and every upload
# waits for it.
lab_intake_job = dg.define_asset_job(
    "lab_intake_job",
    selection=dg.AssetSelection.assets("lab_raw_uploads", "lab_valid_rows", "lab_quarantine"),
    executor_def=dg.in_process_executor,
    description="Process one landing-zone upload.",
)
lab_deletion_job = dg.define_asset_job(
    "lab_deletion_job",
    selection=dg.AssetSelection.assets("lab_deletions"),
    executor_def=dg.in_process_executor,
    description="Record one deletion request: its records join the erasure list.",
)
lab_lake_job = dg.define_asset_job(
    "lab_lake_job",
    selection=dg.AssetSelection.assets("lab_results", "lab_cdc_export"),
    executor_def=dg.in_process_executor,
    description="Rebuild lake weeks from the archive and refresh the CDC export.",
)
lab_export_job = dg.define_asset_job(
    "lab_export_job", selection=dg.AssetSelection.assets("lab_cdc_export"),
    executor_def=dg.in_process_executor,
    description="Refresh the CDC export (any one week refreshes the whole file).",
)

MAX_FILES_PER_TICK = 500
MAX_ATTEMPTS = 3  # runs of one blob version before it is left for a person (its runs say why)
# The sensor asks again for a blob whose run died or failed, so Dagster's run retries are off
# for its runs: both would run it.
NO_RUN_RETRIES = {"dagster/max_retries": "0"}


def stalled_requests(
    instance: dg.DagsterInstance, keys: list[str], asset_key: dg.AssetKey,
    partitions: dg.DynamicPartitionsDefinition,
) -> tuple[dict[str, int], list[str]]:
    """Of blob versions requested before and still waiting (a processed blob leaves its
    container): which to request again, with the attempt number, and which were given up.
    Derived from what Dagster recorded, not from the cursor: a blob whose latest run failed or
    died (dead_run_sensor marks it failed) is asked again; one in progress, materialized, or
    requested this tick (the daemon creates its runs with the tick) is not."""
    if not keys:
        return {}, []
    known = set(instance.get_dynamic_partitions(partitions.name))
    status = instance.get_status_by_partition(asset_key, [k for k in keys if k in known], partitions) or {}
    again, given_up = {}, []
    for key in keys:
        if status.get(key) != dg.AssetPartitionStatus.FAILED:
            continue
        runs = instance.get_runs_count(dg.RunsFilter(tags={"dagster/partition": key}))
        if runs >= MAX_ATTEMPTS:
            given_up.append(key)
        else:
            again[key] = runs + 1
    return again, given_up


def new_blob_requests(
    context: dg.SensorEvaluationContext, storage: BlobStorage, container: str,
    partitions: dg.DynamicPartitionsDefinition, asset_key: dg.AssetKey, suffix: str = ".csv",
) -> dg.SensorResult:
    """One run per blob version not requested before, and again for one whose run did not
    succeed. The cursor maps name -> etag of requested blobs still present, so a processed
    (removed) blob is forgotten, and a blob overwritten with new content gets a new etag and is
    processed again."""
    requested: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    blobs = [b for b in storage.list_blobs(container) if "/" not in b.name]
    present = {b.name: b.etag for b in blobs}
    ignored = [b.name for b in blobs if not b.name.lower().endswith(suffix) and requested.get(b.name) != b.etag]
    if ignored:
        context.log.warning(f"ignoring blobs in {container} that are not {suffix} files: {ignored[:10]}")
    new = [b for b in blobs if b.name.lower().endswith(suffix) and requested.get(b.name) != b.etag]
    new = new[:MAX_FILES_PER_TICK]  # the rest on the next tick
    waiting = [partition_key(b.name, b.etag) for b in blobs
               if b.name.lower().endswith(suffix) and requested.get(b.name) == b.etag]
    again, given_up = stalled_requests(context.instance, waiting, asset_key, partitions)
    if given_up:
        context.log.warning(f"{len(given_up)} file(s) in {container} failed {MAX_ATTEMPTS} runs and wait "
                            f"for a person (see their runs): {given_up[:10]}")
    cursor = {n: e for n, e in requested.items() if n in present}
    cursor.update({b.name: b.etag for b in new})
    cursor.update({n: present[n] for n in ignored})
    keys = [partition_key(b.name, b.etag) for b in new]
    requests = [dg.RunRequest(partition_key=k, run_key=k, tags=NO_RUN_RETRIES) for k in keys]
    requests += [dg.RunRequest(partition_key=k, run_key=f"{k} attempt {n}", tags=NO_RUN_RETRIES)
                 for k, n in again.items()]
    if not requests:
        skip = dg.SkipReason(f"no new files in {container} ({len(blobs)} present, all requested)")
        return dg.SensorResult(skip_reason=skip, cursor=json.dumps(cursor))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[partitions.build_add_request(keys)] if keys else [],
        cursor=json.dumps(cursor),
    )


@dg.sensor(job=lab_intake_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def lab_landing_sensor(context: dg.SensorEvaluationContext, storage: BlobStorage):
    """A run for each new or replaced CSV in the landing-zone container."""
    return new_blob_requests(context, storage, lake.LANDING, upload_partitions, dg.AssetKey("lab_raw_uploads"))


@dg.sensor(job=lab_deletion_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def lab_deletion_sensor(context: dg.SensorEvaluationContext, storage: BlobStorage):
    """A run for each new deletion request CSV in the deletion-requests container."""
    return new_blob_requests(context, storage, lake.DELETION_REQUESTS, deletion_partitions,
                             dg.AssetKey("lab_deletions"))


@dg.sensor(job=lab_intake_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING)
def lab_erasure_sensor(context: dg.SensorEvaluationContext, storage: BlobStorage):
    """An intake run for each archived upload that still holds records a recorded deletion request
    erased: the run rewrites that upload's archive, staged rows and quarantine without them."""
    pending = uploads_to_erase(storage)
    if not pending:
        return dg.SkipReason("no archived upload holds a record a deletion request erased")
    return dg.SensorResult(run_requests=[
        dg.RunRequest(partition_key=upload, run_key=f"{upload} erasing {' '.join(requests)}",
                      tags={"pdp/erasing": " ".join(requests)})
        for upload, requests in pending.items()])
