"""Blocking Pandera checks on every lake week: bad data must not reach the export.

In a one-week run a check's result is recorded for that week; in a single-run backfill over a
range it checks every week of the range, fails if any fails, and lists each week's outcome.
"""

import dagster as dg
import polars as pl

from pdp_assets.lab_results import lake
from pdp_assets.lab_results.assets import lab_results
from pdp_assets.lab_results.schemas import LabResult
from pdp_assets.metadata import weeks_check_result
from pdp_assets.partitions import week_bounds, week_path, weekly_partitions
from pdp_assets.resources.storage import BlobStorage

LAKE_SCHEMA_CHECK = "lake_schema"
UNIQUE_SAMPLE_ID = "unique_sample_id"
DATES_IN_WEEK = "dates_inside_week"

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


@dg.asset_check(asset=lab_results, name=LAKE_SCHEMA_CHECK, blocking=True, partitions_def=weekly_partitions,
                description="Columns and types (sample_id str, test_date date, result POS/NEG/N/A, viral_load int64 >= 0)")
def lake_schema(context: dg.AssetCheckExecutionContext, storage: BlobStorage) -> dg.AssetCheckResult:
    return _check_weeks(context, storage, _schema_problems)


@dg.asset_check(asset=lab_results, name=UNIQUE_SAMPLE_ID, blocking=True, partitions_def=weekly_partitions,
                description="One row per sample_id in each week")
def unique_sample_id(context: dg.AssetCheckExecutionContext, storage: BlobStorage) -> dg.AssetCheckResult:
    return _check_weeks(context, storage, _duplicate_ids)


@dg.asset_check(asset=lab_results, name=DATES_IN_WEEK, blocking=True, partitions_def=weekly_partitions,
                description="Every test_date lies inside its partition's ISO week")
def dates_inside_week(context: dg.AssetCheckExecutionContext, storage: BlobStorage) -> dg.AssetCheckResult:
    return _check_weeks(context, storage, _dates_outside)


lake_checks = [lake_schema, unique_sample_id, dates_inside_week]
