"""Blocking Pandera checks on every lake week: bad data must not reach the export.

In a one-week run a check's result is recorded for that week; in a single-run backfill over a
range it checks every week of the range, fails if any fails, and lists each week's outcome.
"""

import dagster as dg
import polars as pl

from pdp_assets.defs.lab_results import assets as lab
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.schemas import LabResult
from pdp_assets.lib.metadata import weeks_check_result
from pdp_assets.lib.partitions import week_bounds, week_path, weekly_partitions
from pdp_assets.lib.resources.storage import BlobStorage

LAKE_SCHEMA_CHECK = "lake_schema"
UNIQUE_SAMPLE_ID = "unique_sample_id"
DATES_IN_WEEK = "dates_inside_week"
EXPORT_MATCHES_LAKE = "export_matches_lake"

_SCHEMA_WITHOUT_UNIQUE = LabResult.to_schema().update_column("sample_id", unique=False)


def _schema_problems(frame: pl.DataFrame, week: str) -> int:
    try:
        _SCHEMA_WITHOUT_UNIQUE.validate(frame, lazy=True)
        return 0
    except Exception as e:  # SchemaErrors, or SchemaError for a wrong column set
        cases = getattr(e, "failure_cases", None)
        return cases.height if cases is not None else 1


def _duplicate_ids(frame: pl.DataFrame, week: str) -> int:
    return frame.height - frame["sample_id"].n_unique()


def _dates_outside(frame: pl.DataFrame, week: str) -> int:
    first, last = week_bounds(week)
    return frame.filter(~pl.col("test_date").is_between(first, last)).height


def _check_weeks(context: dg.AssetCheckExecutionContext, storage: BlobStorage, problems) -> dg.AssetCheckResult:
    outcomes = {}
    for wk in context.partition_keys:
        outcomes[week_path(wk)] = problems(lake.read_lake_week(storage, wk), wk)
    return weeks_check_result(outcomes)


@dg.asset_check(asset=lab.lab_results, name=LAKE_SCHEMA_CHECK, blocking=True, partitions_def=weekly_partitions,
                description="Columns and types (sample_id str, test_date date, result POS/NEG/N/A, viral_load int64 >= 0)")
def lake_schema(context: dg.AssetCheckExecutionContext, storage: BlobStorage) -> dg.AssetCheckResult:
    return _check_weeks(context, storage, _schema_problems)


@dg.asset_check(asset=lab.lab_results, name=UNIQUE_SAMPLE_ID, blocking=True, partitions_def=weekly_partitions,
                description="One row per sample_id in each week")
def unique_sample_id(context: dg.AssetCheckExecutionContext, storage: BlobStorage) -> dg.AssetCheckResult:
    return _check_weeks(context, storage, _duplicate_ids)


@dg.asset_check(asset=lab.lab_results, name=DATES_IN_WEEK, blocking=True, partitions_def=weekly_partitions,
                description="Every test_date lies inside its partition's ISO week")
def dates_inside_week(context: dg.AssetCheckExecutionContext, storage: BlobStorage) -> dg.AssetCheckResult:
    return _check_weeks(context, storage, _dates_outside)


def export_problems(storage: BlobStorage) -> tuple[dict[str, int], dict]:
    """How data/final_cdc_export.csv differs from what it must be: every lake record once, no
    other, newest test first, no cell a spreadsheet would run as a formula."""
    if not storage.exists(lake.DATA, lake.EXPORT_BLOB):
        return {"export_missing": 1}, {}
    export = pl.read_csv(storage.read(lake.DATA, lake.EXPORT_BLOB), infer_schema=False)
    missing_columns = [c for c in lake.LAKE_COLUMNS if c not in export.columns]
    if missing_columns:
        return {"columns_missing": len(missing_columns)}, {"columns_missing": dg.MetadataValue.json(missing_columns)}
    wanted = lake.neutralise_formulas(lake.read_lake(storage)).select(
        pl.col(lake.LAKE_COLUMNS).cast(pl.String)
    )
    export = export.select(lake.LAKE_COLUMNS)
    key = ["sample_id", "test_date"]
    missing = wanted.join(export, on=key, how="anti")
    extra = export.join(wanted, on=key, how="anti")
    dates = export["test_date"]
    text = [c for c, t in lake.LAKE_SCHEMA.items() if t == pl.String]  # what neutralise_formulas guards
    formulas = export.filter(pl.any_horizontal(lake.runs_as_formula(c) for c in text))
    problems = {
        "lake_records_missing": missing.height,
        "records_not_in_lake": extra.height,
        "duplicate_records": export.height - export.select(key).n_unique(),
        "out_of_order_rows": int((dates.slice(1) > dates.slice(0, max(dates.len() - 1, 0))).sum()),
        "formula_cells": formulas.height,
    }
    examples = {
        "rows_export": export.height,
        "rows_lake": wanted.height,
        # Which records, by test date only: metadata is kept for ever and never holds an id.
        "missing_by_test_date": dg.MetadataValue.json(dict(missing["test_date"].value_counts().head(10).rows())),
        "extra_by_test_date": dg.MetadataValue.json(dict(extra["test_date"].value_counts().head(10).rows())),
    }
    return problems, examples


@dg.asset_check(asset=lab.lab_cdc_export, name=EXPORT_MATCHES_LAKE, partitions_def=weekly_partitions,
                description="The export holds every lake record once and nothing else, newest test first, "
                "with no cell a spreadsheet would run as a formula (the whole file, whatever the weeks)")
def export_matches_lake(context: dg.AssetCheckExecutionContext, storage: BlobStorage) -> dg.AssetCheckResult:
    problems, details = export_problems(storage)
    return dg.AssetCheckResult(
        passed=not any(problems.values()),
        metadata={**problems, **details, "path": storage.location(lake.DATA, lake.EXPORT_BLOB)},
    )


lake_checks = [lake_schema, unique_sample_id, dates_inside_week, export_matches_lake]
