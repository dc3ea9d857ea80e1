"""Full loads against the fakesnow server: two weeks of lab results, every phase, idempotency."""

import dagster as dg
import polars as pl

from pdp_assets.defs.warehouse.assets import AUDIT, build_load_asset
from pdp_assets.lib.lab_results import lake
from pdp_assets_tests.warehouse.conftest import drive_rows, lab_frame, query, step_events, WEEK1, WEEK2, write_week

PHASE_STEPS = ["stale_handling", "pre_validation", "source_to_stage", "stage_to_target", "audit",
               "stage_cleaning", "target_cleaning", "commit"]


def load(cfg, lab, storage, warehouse, instance, week, raise_on_error=True):
    return dg.materialize([build_load_asset(cfg, lab)], partition_key=week, instance=instance,
                          resources={"storage": storage, "warehouse": warehouse}, raise_on_error=raise_on_error)


def test_two_weeks_of_lab_results(cfg, lab, storage, warehouse, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 120))
    write_week(storage, WEEK2, lab_frame(WEEK2, 80))
    for week in (WEEK1, WEEK2):
        result = load(cfg, lab, storage, warehouse, instance, week)
        assert [s.split("__")[-1] for s in step_events(result, "STEP_SUCCESS")] == PHASE_STEPS
        [check] = result.get_asset_check_evaluations()
        assert check.check_name == AUDIT and check.passed
    assert query(warehouse, "SELECT COUNT(*) FROM LAB_RESULTS") == [(200,)]
    assert query(warehouse, "SELECT PDP_WINDOW, COUNT(*) FROM LAB_RESULTS GROUP BY 1 ORDER BY 1")[1][1] == 80
    assert query(warehouse, "SELECT COUNT(*) FROM LAB_RESULTS_STAGE") == [(0,)]  # stage cleaned
    rows = drive_rows(warehouse)
    assert [(r["WINDOW_KEY"], r["ATTEMPT"], r["STATUS"], r["RUN_KIND"]) for r in rows] == [
        (WEEK1, 1, "SUCCEEDED", "FRESH"), (WEEK2, 1, "SUCCEEDED", "FRESH")]
    first = rows[0]
    assert (first["SOURCE_ROWS"], first["STAGE_ROWS"], first["INSERTED_ROWS"], first["TARGET_ROWS"],
            first["STAGE_CLEANED_ROWS"], first["AUDIT_STATUS"]) == (120, 120, 120, 120, 120, "PASSED")
    assert all(first[f"{p.upper()}_SECONDS"] is not None for p in PHASE_STEPS[:-1])
    mat = result.asset_materializations_for_node("warehouse_lab_results")[0]
    assert mat.metadata["target_rows"].value == 80


def test_rerunning_a_window_never_duplicates(cfg, lab, storage, warehouse, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 50))
    load(cfg, lab, storage, warehouse, instance, WEEK1)
    changed = lab_frame(WEEK1, 50).with_columns(pl.when(pl.col("viral_load") == 0).then(7).otherwise(pl.col("viral_load")).alias("viral_load"))
    write_week(storage, WEEK1, pl.concat([changed, lab_frame(WEEK1, 5, start=50)]))
    load(cfg, lab, storage, warehouse, instance, WEEK1)
    load(cfg, lab, storage, warehouse, instance, WEEK1)
    assert query(warehouse, "SELECT COUNT(*), COUNT(DISTINCT SAMPLE_ID) FROM LAB_RESULTS") == [(55, 55)]
    assert query(warehouse, "SELECT VIRAL_LOAD FROM LAB_RESULTS WHERE SAMPLE_ID = %s", ("S20240101-00000",)) == [(7,)]
    rows = drive_rows(warehouse, WEEK1)
    assert [(r["ATTEMPT"], r["INSERTED_ROWS"], r["UPDATED_ROWS"]) for r in rows] == [(1, 50, 0), (2, 5, 50), (3, 0, 55)]


def test_target_cleaning_removes_rows_the_lake_no_longer_has(cfg, lab, storage, warehouse, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 10))
    load(cfg, lab, storage, warehouse, instance, WEEK1)
    write_week(storage, WEEK1, lab_frame(WEEK1, 10).slice(2))
    load(cfg, lab, storage, warehouse, instance, WEEK1)
    assert query(warehouse, "SELECT COUNT(*) FROM LAB_RESULTS") == [(8,)]
    assert drive_rows(warehouse, WEEK1)[-1]["TARGET_CLEANED_ROWS"] == 2


def test_a_missing_source_file_never_wipes_the_target(cfg, lab, storage, warehouse, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 10))
    load(cfg, lab, storage, warehouse, instance, WEEK1)
    storage.delete(lake.DATA, lake.lake_blob(WEEK1))  # a wrong container, a week not built yet ...
    load(cfg, lab, storage, warehouse, instance, WEEK1)
    assert query(warehouse, "SELECT COUNT(*) FROM LAB_RESULTS") == [(10,)]
    assert drive_rows(warehouse, WEEK1)[-1]["TARGET_CLEANED_ROWS"] == 0


def test_an_empty_week_loads_nothing_and_passes(cfg, lab, storage, warehouse, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 10))  # the source has files, not for this week
    result = load(cfg, lab, storage, warehouse, instance, WEEK2)
    assert result.get_asset_check_evaluations()[0].passed
    assert drive_rows(warehouse, WEEK2)[0]["SOURCE_FILES"] == 0


def test_a_load_whose_source_matches_no_file_at_all_fails_saying_where_it_looked(cfg, lab, storage, warehouse, instance):
    result = load(cfg, lab, storage, warehouse, instance, WEEK2, raise_on_error=False)  # a typo in container or path
    assert not result.success
    (row,) = drive_rows(warehouse, WEEK2)
    assert row["STATUS"] == "FAILED" and "no file in container 'data' matches '{week_path}/data.parquet' for any week" in row["ERROR_TEXT"]


def test_the_audit_sees_target_rows_the_source_no_longer_has(cfg, lab, storage, warehouse, instance):
    no_cleaning = lab.model_copy(update={"phases": lab.phases.model_copy(update={"target_cleaning": False})})
    write_week(storage, WEEK1, lab_frame(WEEK1, 10))
    load(cfg, no_cleaning, storage, warehouse, instance, WEEK1)
    write_week(storage, WEEK1, lab_frame(WEEK1, 10).head(9))  # a record gone from the source
    result = load(cfg, no_cleaning, storage, warehouse, instance, WEEK1, raise_on_error=False)
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.metadata["target_rows"].value == 10
    assert check.metadata["target_rows_not_in_source"].value == 1
    row = drive_rows(warehouse, WEEK1)[-1]
    assert "source 9, stage 9, target 10; 1 target row(s) the source does not have (SELECT * FROM" in row["ERROR_TEXT"]
    listing = "SELECT" + row["ERROR_TEXT"].split("(SELECT", 1)[1].removesuffix(")")
    assert len(query(warehouse, listing)) == 1  # the query it gives lists that row
    assert load(cfg, lab, storage, warehouse, instance, WEEK1).success  # with target cleaning: pruned, 9 = 9 = 9
    assert query(warehouse, "SELECT COUNT(*) FROM LAB_RESULTS") == [(9,)]
