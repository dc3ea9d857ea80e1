"""Faults injected into chosen statements: transient ones retried by RetryPolicy, permanent ones
failing at once, the audit outside and inside its tolerance, stale attempts, schema drift."""

import datetime as dt

import dagster as dg
import polars as pl
import pytest

from pdp_assets.defs.warehouse.assets import build_load_asset
from pdp_assets.lib.warehouse import drive
from pdp_assets.lib.warehouse.sql import audit_counts
from pdp_assets_tests.warehouse.conftest import (
    WEEK1, drive_rows, faulty, lab_frame, query, step_events, write_week)


def load(cfg, lab, storage, warehouse, instance, week=WEEK1):
    return dg.materialize([build_load_asset(cfg, lab)], partition_key=week, instance=instance,
                          resources={"storage": storage, "warehouse": warehouse}, raise_on_error=False)


def failure_message(result) -> str:
    return "\n".join(e.event_specific_data.error.message for e in result.all_events
                     if e.event_type_value == "STEP_FAILURE")


def test_transient_errors_are_retried_by_the_retry_policy(cfg, lab, storage, fakesnow_port, schema, tmp_path, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 30))
    warehouse = faulty(fakesnow_port, schema, tmp_path, r"^MERGE INTO", times=2, fault="transient")
    result = load(cfg, lab, storage, warehouse, instance)
    assert result.success
    assert step_events(result, "STEP_RESTARTED") == ["warehouse_lab_results.lab_results__stage_to_target"] * 2
    [row] = drive_rows(warehouse)
    assert (row["STATUS"], row["RETRIES"], row["INSERTED_ROWS"]) == ("SUCCEEDED", 2, 30)
    assert row["ERROR_KIND"] == "transient" and "connection reset" in row["ERROR_TEXT"]  # the last error, kept


def test_transient_errors_fail_once_retries_are_spent(cfg, lab, storage, fakesnow_port, schema, tmp_path, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 5))
    warehouse = faulty(fakesnow_port, schema, tmp_path, r"^MERGE INTO", times=99, fault="transient")
    result = load(cfg, lab, storage, warehouse, instance)
    assert not result.success
    assert len(step_events(result, "STEP_RESTARTED")) == lab.retry.max_retries
    [row] = drive_rows(warehouse)
    assert (row["STATUS"], row["FAILED_PHASE"], row["ERROR_KIND"]) == ("FAILED", "stage_to_target", "transient")


def test_permanent_errors_fail_at_once_with_a_clear_message(cfg, lab, storage, fakesnow_port, schema, tmp_path, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 5))
    warehouse = faulty(fakesnow_port, schema, tmp_path, r"^MERGE INTO", times=1, fault="permanent")
    result = load(cfg, lab, storage, warehouse, instance)
    assert not result.success
    assert step_events(result, "STEP_RESTARTED") == []
    message = failure_message(result)
    assert "lab_results 2024-01-01 stage_to_target failed (permanent, not retried): ProgrammingError" in message
    [row] = drive_rows(warehouse)
    assert (row["STATUS"], row["PHASE"], row["FAILED_PHASE"], row["ERROR_KIND"], row["ERROR_CLASS"]) == (
        "FAILED", "stage_to_target", "stage_to_target", "permanent", "ProgrammingError")
    assert query(warehouse, "SELECT COUNT(*) FROM LAB_RESULTS") == [(0,)]


@pytest.mark.parametrize("source,stage,target,tolerance,passed", [
    (100, 100, 100, 0, True), (100, 100, 99, 0, False), (100, 100, 99, 1, True), (100, 98, 100, 1, False),
    (0, 0, 0, 0, True), (0, 1, 0, 0, False),
])
def test_audit_counts_and_tolerance(source, stage, target, tolerance, passed):
    assert audit_counts(source, stage, target, tolerance)[0] is passed


@pytest.mark.parametrize("tolerance,passes", [(0.0, False), (5.0, True)])
def test_count_audit_blocks_outside_the_tolerance(cfg, lab, storage, fakesnow_port, schema, tmp_path, instance,
                                                  tolerance, passes):
    write_week(storage, WEEK1, lab_frame(WEEK1, 40))
    lose_one = "DELETE FROM LAB_RESULTS WHERE SAMPLE_ID = 'S20240101-00003'"  # a row lost after the MERGE
    warehouse = faulty(fakesnow_port, schema, tmp_path, r"^MERGE INTO", times=1, fault="sql", fault_sql=lose_one)
    result = load(cfg, lab.model_copy(update={"tolerance_percent": tolerance}), storage, warehouse, instance)
    [check] = result.get_asset_check_evaluations()
    assert check.passed is passes and check.metadata["target_rows"].value == 39
    assert check.metadata["diff_percent"].value == 2.5
    [row] = drive_rows(warehouse)
    if passes:
        assert result.success and row["STATUS"] == "SUCCEEDED" and row["AUDIT_STATUS"] == "PASSED"
    else:
        assert not result.success
        assert "stage_cleaning" not in " ".join(step_events(result, "STEP_START"))  # blocked
        assert (row["STATUS"], row["FAILED_PHASE"], row["ERROR_CLASS"]) == ("FAILED", "audit", "AuditFailed")
        assert "source 40, stage 40, target 39" in row["ERROR_TEXT"]
        assert query(warehouse, "SELECT COUNT(*) FROM LAB_RESULTS_STAGE") == [(40,)]  # kept to look at
        assert instance.get_latest_materialization_event(dg.AssetKey("warehouse_lab_results")) is None
        # The next attempt (the fault is spent) passes, and cleans the failed attempt's stage rows too.
        assert load(cfg, lab, storage, warehouse, instance).success
        assert query(warehouse, "SELECT COUNT(*) FROM LAB_RESULTS_STAGE") == [(0,)]
        assert drive_rows(warehouse)[-1]["STAGE_CLEANED_ROWS"] == 80


def _running_attempt(warehouse, heartbeat: dt.datetime, run_id: str) -> None:
    """What a crashed run leaves: a RUNNING attempt and its stage rows."""
    with warehouse.connect() as conn:
        cur = conn.cursor()
        drive.ensure(cur, "PDP_LOAD_DRIVE")
        drive.insert(cur, "PDP_LOAD_DRIVE", {
            "LOAD_ID": "lab_results__2024-01-01__a1", "LOAD_NAME": "lab_results", "WINDOW_KEY": WEEK1,
            "ATTEMPT": 1, "RUN_KIND": "FRESH", "STATUS": "RUNNING", "PHASE": "stage_to_target", "RETRIES": 0,
            "RUN_ID": run_id, "STARTED_AT": heartbeat, "UPDATED_AT": heartbeat})
        cur.execute("CREATE TABLE LAB_RESULTS_STAGE (SAMPLE_ID VARCHAR, TEST_DATE DATE, RESULT VARCHAR, "
                    "VIRAL_LOAD NUMBER(38,0), PDP_WINDOW DATE, PDP_LOAD_ID VARCHAR)")
        cur.execute("INSERT INTO LAB_RESULTS_STAGE VALUES ('X', '2024-01-01', 'POS', 1, '2024-01-01', "
                    "'lab_results__2024-01-01__a1')")


def test_a_stale_attempt_is_marked_and_the_window_retried(cfg, lab, storage, warehouse, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 10))
    _running_attempt(warehouse, drive.now() - dt.timedelta(hours=2), "a-run-that-crashed")
    result = load(cfg, lab, storage, warehouse, instance)
    assert result.success
    old, new = drive_rows(warehouse, WEEK1)
    assert (old["STATUS"], old["FAILED_PHASE"], old["ERROR_KIND"]) == ("STALE", "stage_to_target", "stale")
    assert "no heartbeat since" in old["ERROR_TEXT"]
    assert (new["ATTEMPT"], new["RUN_KIND"], new["STATUS"]) == (2, "RETRY", "SUCCEEDED")
    assert query(warehouse, "SELECT COUNT(*) FROM LAB_RESULTS WHERE SAMPLE_ID = 'X'") == [(0,)]
    assert query(warehouse, "SELECT COUNT(*) FROM LAB_RESULTS_STAGE") == [(0,)]


def test_an_attempt_whose_run_ended_is_stale_at_once(cfg, lab, storage, warehouse, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 10))
    run = instance.create_run_for_job(dg.GraphDefinition("g").to_job())
    instance.report_run_failed(run)
    _running_attempt(warehouse, drive.now(), run.run_id)  # a fresh heartbeat, but its run is over
    assert load(cfg, lab, storage, warehouse, instance).success
    old, new = drive_rows(warehouse, WEEK1)
    assert old["STATUS"] == "STALE" and "ended (FAILURE)" in old["ERROR_TEXT"]
    assert new["RUN_KIND"] == "RETRY"


def test_a_live_run_is_never_stale_however_old_its_heartbeat(cfg, lab, storage, warehouse, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 10))
    run = instance.create_run_for_job(dg.GraphDefinition("g").to_job())  # known, not finished: a long MERGE
    _running_attempt(warehouse, drive.now() - dt.timedelta(hours=2), run.run_id)
    result = load(cfg, lab, storage, warehouse, instance)
    assert not result.success and f"is being loaded by run {run.run_id}" in failure_message(result)
    assert [r["STATUS"] for r in drive_rows(warehouse, WEEK1)] == ["RUNNING"]
    assert query(warehouse, "SELECT COUNT(*) FROM LAB_RESULTS_STAGE") == [(1,)]  # its stage rows untouched


def test_a_window_being_loaded_is_not_loaded_twice(cfg, lab, storage, warehouse, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 10))
    _running_attempt(warehouse, drive.now(), "a-run-still-going")  # unknown here, heartbeat fresh
    result = load(cfg, lab, storage, warehouse, instance)
    assert not result.success and "is being loaded by run a-run-still-going" in failure_message(result)
    assert [r["STATUS"] for r in drive_rows(warehouse, WEEK1)] == ["RUNNING"]


def test_schema_drift_add_policy_adds_the_column(cfg, lab, storage, warehouse, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 10))
    assert load(cfg, lab, storage, warehouse, instance).success
    write_week(storage, WEEK1, lab_frame(WEEK1, 10).with_columns(lab_site=pl.lit("north")))
    assert load(cfg, lab, storage, warehouse, instance).success
    assert query(warehouse, "SELECT DISTINCT LAB_SITE FROM LAB_RESULTS") == [("north",)]
    assert "LAB_SITE" in drive_rows(warehouse, WEEK1)[-1]["SCHEMA_CHANGES"]


def test_schema_drift_reject_policy_stops_with_a_clear_message(cfg, lab, storage, warehouse, instance):
    strict = lab.model_copy(update={"schema_drift": "reject"})
    write_week(storage, WEEK1, lab_frame(WEEK1, 10))
    assert load(cfg, strict, storage, warehouse, instance).success
    write_week(storage, WEEK1, lab_frame(WEEK1, 10).with_columns(lab_site=pl.lit("north")))
    result = load(cfg, strict, storage, warehouse, instance)
    assert not result.success and step_events(result, "STEP_RESTARTED") == []
    message = failure_message(result)
    assert "schema drift" in message and "new column(s) {'LAB_SITE': 'VARCHAR'}" in message
    assert "Policy is 'reject'" in message
    assert drive_rows(warehouse, WEEK1)[-1]["FAILED_PHASE"] == "pre_validation"
    assert "LAB_SITE" not in [r[0] for r in query(warehouse, "SELECT COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS "
                                                             "WHERE TABLE_SCHEMA = CURRENT_SCHEMA() AND TABLE_NAME = 'LAB_RESULTS'")]


def test_a_removed_column_is_refused_under_either_policy(cfg, lab, storage, warehouse, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 10))
    assert load(cfg, lab, storage, warehouse, instance).success
    write_week(storage, WEEK1, lab_frame(WEEK1, 10).drop("viral_load"))
    result = load(cfg, lab, storage, warehouse, instance)
    assert "column(s) gone from the source ['VIRAL_LOAD']" in failure_message(result)


def test_duplicate_merge_keys_are_refused(cfg, lab, storage, warehouse, instance):
    frame = lab_frame(WEEK1, 5)
    write_week(storage, WEEK1, pl.concat([frame, frame.head(1)]))
    result = load(cfg, lab, storage, warehouse, instance)
    assert "1 source row(s) repeat a merge key" in failure_message(result)
