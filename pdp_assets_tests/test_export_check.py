"""lab_cdc_export's `export_matches_lake` check: it passes after the lake run that writes the
export, and names each way a stale or tampered export differs from the lake."""

import dagster as dg
import polars as pl
import pytest

from pdp_assets.definitions import build_definitions
from pdp_assets.defs.lab_results.checks import EXPORT_MATCHES_LAKE, export_problems
from pdp_assets.lib.lab_results import lake
from pdp_assets.ops.runner import evaluate_and_run
from pdp_assets_tests.conftest import csv_bytes


@pytest.fixture
def ingested(pdp_env, instance):
    """Three records in two weeks, one of them formula-like, through the sensors and jobs."""
    defs = build_definitions()
    storage = defs.resources["storage"]
    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,5", "=B2,2024-01-03,NEG,0", "C3,2024-02-05,POS,12"))
    summary = evaluate_and_run(defs, instance)
    assert [r.job for r in summary.runs] == ["lab_intake_job", "lab_lake_job"] and not summary.failed
    return storage


def _export(storage) -> pl.DataFrame:
    return pl.read_csv(storage.read(lake.DATA, lake.EXPORT_BLOB), infer_schema=False)


def _write(storage, frame: pl.DataFrame) -> None:
    storage.write(lake.DATA, lake.EXPORT_BLOB, frame.write_csv().encode())


def test_the_check_passes_after_the_lake_run(ingested, instance):
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("lab_cdc_export"), EXPORT_MATCHES_LAKE)]
    )
    (execution,) = check.values()
    evaluation = execution.event.asset_check_evaluation
    assert evaluation.passed, evaluation.metadata
    assert evaluation.metadata["rows_export"].value == evaluation.metadata["rows_lake"].value == 3
    problems, _ = export_problems(ingested)
    assert not any(problems.values())


def test_each_difference_is_counted(ingested):
    good = _export(ingested)
    assert good["sample_id"].to_list() == ["C3", "'=B2", "A1"]  # newest first, formula neutralised

    _write(ingested, good.head(2))
    assert export_problems(ingested)[0]["lake_records_missing"] == 1

    _write(ingested, pl.concat([good, good.head(1)]))
    assert export_problems(ingested)[0]["duplicate_records"] == 1

    _write(ingested, pl.concat([good, pl.DataFrame([{"sample_id": "Z9", "test_date": "2024-01-02",
                                                     "result": "NEG", "viral_load": "0"}])]))
    assert export_problems(ingested)[0]["records_not_in_lake"] == 1

    _write(ingested, good.reverse())
    assert export_problems(ingested)[0]["out_of_order_rows"] == 2

    _write(ingested, good.with_columns(pl.col("sample_id").str.strip_chars_start("'")))
    problems, _ = export_problems(ingested)
    assert problems["formula_cells"] == 1

    ingested.delete(lake.DATA, lake.EXPORT_BLOB)
    assert export_problems(ingested)[0] == {"export_missing": 1}
