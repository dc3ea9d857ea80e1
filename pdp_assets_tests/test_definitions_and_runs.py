"""The Definitions load, and the lab pipeline runs in process through its jobs and sensors."""

import datetime as dt
import gc
import os
import subprocess
import sys

import dagster as dg
import polars as pl
import pytest

from pdp_assets.definitions import build_definitions
from pdp_assets.lib.lab_results import lake
from pdp_assets.ops import home
from pdp_assets.ops.runner import evaluate_and_run, LAB_SENSORS, LAKE_STEP, WAREHOUSE_STEP
from pdp_assets_tests.conftest import csv_bytes

LAB_ASSETS = {"lab_raw_uploads", "lab_valid_rows", "lab_quarantine", "lab_results", "lab_cdc_export", "lab_deletions"}


@pytest.fixture
def defs(pdp_env):
    return build_definitions()


@pytest.fixture
def storage(defs):
    return defs.resources["storage"]


def test_definitions_still_load_after_the_instance_a_command_used_is_closed(pdp_env):
    """A command initialises the storage outside a run, on whatever instance is current; keeping
    that storage past the instance must not make the closed instance current again, or the next
    definitions load reads its removed database."""
    with dg.instance_for_test():
        storage = home.storage()
    del storage
    gc.collect()
    dg.Definitions.validate_loadable(build_definitions())


def test_definitions_load_and_every_asset_is_partitioned_and_checked(defs):
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert LAB_ASSETS <= keys
    checked = {c.asset_key.to_user_string() for c in graph.asset_check_keys}
    for key in graph.get_all_asset_keys():
        assert graph.get(key).partitions_def is not None, key
    assert {"lab_raw_uploads", "lab_valid_rows", "lab_quarantine", "lab_results", "lab_deletions"} <= checked
    blocking = {c.name for c in graph.asset_check_keys if graph.get_check_spec(c).blocking}
    assert {"lake_schema", "unique_sample_id", "dates_inside_week", "rows_accounted"} <= blocking


def test_every_asset_names_its_owner_and_domain(defs):
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.tags.get("domain") == node.group_name, key
        if node.is_materializable:  # Dagster gives an external observation (SourceAsset) no owners
            assert node.owners and node.owners[0].startswith("team:"), key
    owners = {graph.get(k).group_name: graph.get(k).owners for k in graph.materializable_asset_keys}
    assert len({tuple(o) for o in owners.values()}) == 4, owners


def test_storage_is_chosen_by_environment(pdp_env, monkeypatch):
    from pdp_assets.lib.resources.storage import AzureBlobStorage, LocalBlobStorage

    assert isinstance(build_definitions().resources["storage"], LocalBlobStorage)
    monkeypatch.setenv("PDP_ENV", "cloud")
    assert isinstance(build_definitions().resources["storage"], AzureBlobStorage)
    monkeypatch.setenv("PDP_STORAGE", "local")  # one system switched back on its own
    assert isinstance(build_definitions().resources["storage"], LocalBlobStorage)
    monkeypatch.setenv("PDP_STORAGE", "s3")
    with pytest.raises(Exception) as raised:  # the autoloader wraps it, naming defs/resources.py
        build_definitions()
    causes = [raised.value]
    while causes[-1].__cause__ is not None:
        causes.append(causes[-1].__cause__)
    assert "resources.py" in str(raised.value)
    assert any(isinstance(e, dg.DagsterInvariantViolationError) and "PDP_STORAGE='s3'" in str(e) for e in causes)


def test_upload_to_lake_to_export_through_sensors_and_jobs(defs, storage, instance):
    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,5", "A2,2024-01-03,NEG,0", "A3,2024-01-03,Positive,1"))
    storage.write(lake.LANDING, "b.csv", csv_bytes("A1,2024-01-01,NEG,0", "B1,2024-02-05,POS,12"))
    summary = evaluate_and_run(defs, instance)
    assert [r.job for r in summary.runs] == ["lab_intake_job", "lab_intake_job", "lab_lake_job"]
    assert not summary.failed

    intake = instance.get_latest_materialization_event(dg.AssetKey("lab_valid_rows")).asset_materialization
    assert intake.partition.startswith("b.csv@")
    meta = {k: v.value for k, v in intake.metadata.items()}
    assert (meta["rows_read"], meta["rows_valid"], meta["rows_quarantined"]) == (2, 2, 0)

    lake_run = instance.get_run_by_id(summary.runs[-1].run_id)
    assert lake_run.tags["dagster/asset_partition_range_start"] == "2024-01-01"
    assert lake_run.tags["dagster/asset_partition_range_end"] == "2024-02-05"
    checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("lab_results"), n) for n in ("lake_schema", "unique_sample_id", "dates_inside_week")]
    )
    assert len(checks) == 3 and all(c.status.value == "SUCCEEDED" for c in checks.values())
    for c in checks.values():
        assert c.event.asset_check_evaluation.passed

    export = pl.read_csv(storage.read(lake.DATA, lake.EXPORT_BLOB), infer_schema=False)
    # b.csv arrived later: its A1 wins; newest test first
    assert export.rows() == [("B1", "2024-02-05", "POS", "12"), ("A2", "2024-01-03", "NEG", "0"), ("A1", "2024-01-01", "NEG", "0")]

    # Nothing new: every sensor skips, no run.
    again = evaluate_and_run(defs, instance)
    assert again.runs == [] and set(again.skipped) == {*LAB_SENSORS, WAREHOUSE_STEP, LAKE_STEP}


def test_blocking_checks_keep_bad_lake_data_out_of_the_export(defs, storage, instance):
    week = "2024-01-01"
    bad = pl.DataFrame(
        {"sample_id": ["X1", "X1"], "test_date": [dt.date(2024, 1, 1), dt.date(2024, 2, 1)],
         "result": ["POS", "POS"], "viral_load": [1, -1]},
    )
    storage.write(lake.ARCHIVE, lake.slice_blob(week, dt.datetime(2024, 1, 2), "0" * 16), lake.to_parquet(bad))
    result = defs.resolve_job_def("lab_lake_job").execute_in_process(
        instance=instance, partition_key=week, raise_on_error=False
    )
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {"lake_schema": False, "unique_sample_id": True, "dates_inside_week": False}
    # unique_sample_id passes: the rebuild keeps one row per id, the later one
    assert not storage.exists(lake.DATA, lake.EXPORT_BLOB)
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {dg.AssetKey("lab_results")}


def test_a_malformed_deletion_request_is_kept_with_a_reason(defs, storage, instance):
    storage.write(lake.DELETION_REQUESTS, "bad.csv", b"id,date\nA1,2024-01-01\n")
    summary = evaluate_and_run(defs, instance)
    assert [r.job for r in summary.runs] == ["lab_deletion_job", "warehouse_deletion_job"]
    assert storage.exists(lake.DELETION_REQUESTS, "bad.csv")  # kept for a person to fix
    (log_blob,) = storage.list_blobs(lake.LOGS, "deletion_")
    assert b"missing column(s) sample_id, test_date" in storage.read(lake.LOGS, log_blob.name)
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("lab_deletions"), "every_id_accounted")]
    )
    assert not next(iter(check.values())).event.asset_check_evaluation.passed


LOAD_WITH_DEPRECATIONS_AS_ERRORS = """
import warnings
for category in (DeprecationWarning, FutureWarning):
    for module in ("pdp_assets", "benchmarks"):
        warnings.filterwarnings("error", category=category, module=module)
from pdp_assets.definitions import build_definitions
defs = build_definitions()
defs.get_repository_def().asset_graph  # builds every asset, check, job and sensor
print(len(defs.resolve_asset_graph().get_all_asset_keys()))
"""


def test_the_code_location_loads_without_a_deprecated_api_in_project_code(pdp_env):
    out = subprocess.run([sys.executable, "-c", LOAD_WITH_DEPRECATIONS_AS_ERRORS], capture_output=True, text=True,
                         env={**os.environ, "PDP_HOME": str(pdp_env)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.split()[-1]) > 20


def test_the_same_metadata_keys_in_every_source(defs, storage, instance):
    graph = defs.resolve_asset_graph()
    tables = [k for k in graph.materializable_asset_keys
              if graph.get(k).group_name in ("lab_results", "health", "retail") and k.to_user_string() not in
              ("lab_raw_uploads", "lab_quarantine", "lab_deletions")]
    missing = [k.to_user_string() for k in tables if "dagster/column_schema" not in graph.get(k).metadata]
    assert missing == []
    columns = [c.name for c in graph.get(dg.AssetKey("lab_results")).metadata["dagster/column_schema"].columns]
    assert columns == ["sample_id", "test_date", "result", "viral_load"]

    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,5", "A2,2024-01-10,NEG,0", "A3,2024-01-10,bad,1"))
    evaluate_and_run(defs, instance)
    for key, rows in [("lab_raw_uploads", 3), ("lab_valid_rows", 2), ("lab_quarantine", 1), ("lab_cdc_export", 2)]:
        meta = instance.get_latest_materialization_event(dg.AssetKey(key)).asset_materialization.metadata
        assert meta["dagster/row_count"].value == rows, key
        assert meta["dagster/uri"].value.startswith(str(storage.root)), key
    # each lake week its own row count and file
    weeks = {r.partition_key: r.asset_materialization.metadata for r in
             instance.fetch_materializations(dg.AssetKey("lab_results"), limit=10).records}
    assert {w: m["dagster/row_count"].value for w, m in weeks.items()} == {"2024-01-01": 1, "2024-01-08": 1}
    assert weeks["2024-01-08"]["dagster/uri"].value.endswith("year=2024/week=02/data.parquet")
