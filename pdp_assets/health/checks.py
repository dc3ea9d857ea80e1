"""Blocking Pandera checks on every stored week of every health layer: bad data must not reach
``daily_health_metrics``, and a bad daily table must not be trusted.

In a one-week run a check's result is recorded for that week; in a single-run backfill over a
range it checks every week of the range, fails if any fails, and lists each week's outcome.
"""

from typing import Callable

import dagster as dg
import pandera.errors
import pandera.polars as pa
import polars as pl

from pdp_assets.health import normalise as n
from pdp_assets.health import schemas, store
from pdp_assets.health.assets import BLOOD_PRESSURE, DAILY, HEART_RATE, SETTINGS, SLEEP
from pdp_assets.metadata import markdown_table, weeks_check_result
from pdp_assets.partitions import week_bounds, week_path, weekly_partitions
from pdp_assets.resources.storage import BlobStorage

SCHEMA_CHECK = "pandera_schema"


def _failures(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.DataFrame:
    try:
        schema.validate(frame, lazy=True)
        return pl.DataFrame()
    except pandera.errors.SchemaErrors as e:
        return e.failure_cases
    except pandera.errors.SchemaError as e:  # e.g. a wrong column set: one failure
        return pl.DataFrame({"check": [str(e)]})


def check_weeks(
    context: dg.AssetCheckExecutionContext, storage: BlobStorage, layer: str, frame_schema: dict,
    schema_for: Callable[[str], pa.DataFrameSchema],
) -> dg.AssetCheckResult:
    outcomes, examples = {}, []
    for wk in context.partition_keys:
        if not storage.exists(store.CONTAINER, store.week_blob(layer, wk)):
            outcomes[week_path(wk)] = 0  # a week without data has no file: nothing to break a rule
            continue
        cases = _failures(schema_for(wk), store.read_week(storage, layer, wk, frame_schema))
        outcomes[week_path(wk)] = cases.height
        if cases.height and len(examples) < 3:
            examples.append(cases.head(10).select(pl.all().cast(pl.String)))
    return weeks_check_result(
        outcomes,
        failure_cases=markdown_table(pl.concat(examples, how="diagonal") if examples else pl.DataFrame(), 20),
    )


@dg.asset_check(asset=BLOOD_PRESSURE, name=SCHEMA_CHECK, blocking=True, partitions_def=weekly_partitions,
                description="Types, 60-260 / 30-160 / 25-230 limits, diastolic below systolic, one reading per "
                "instant, dates inside the week")
def blood_pressure_schema(context: dg.AssetCheckExecutionContext, storage: BlobStorage) -> dg.AssetCheckResult:
    return check_weeks(context, storage, "blood_pressure", n.BP_SCHEMA, lambda wk: schemas.blood_pressure(*week_bounds(wk)))


@dg.asset_check(asset=HEART_RATE, name=SCHEMA_CHECK, blocking=True, partitions_def=weekly_partitions,
                description="Types, 25-230 bpm, min <= avg <= max, one row per day inside the week")
def heart_rate_schema(context: dg.AssetCheckExecutionContext, storage: BlobStorage) -> dg.AssetCheckResult:
    return check_weeks(context, storage, "heart_rate", n.HR_SCHEMA, lambda wk: schemas.heart_rate(*week_bounds(wk)))


@dg.asset_check(asset=SLEEP, name=SCHEMA_CHECK, blocking=True, partitions_def=weekly_partitions,
                description="Types, at least the minimum sleep, stages non-negative and within the total, "
                "one row per day inside the week")
def sleep_schema(context: dg.AssetCheckExecutionContext, storage: BlobStorage) -> dg.AssetCheckResult:
    return check_weeks(
        context, storage, "sleep", n.SLEEP_SCHEMA,
        lambda wk: schemas.sleep(*week_bounds(wk), SETTINGS.min_sleep_minutes),
    )


@dg.asset_check(asset=DAILY, name=SCHEMA_CHECK, blocking=True, partitions_def=weekly_partitions,
                description="One row per day inside the week, every day from at least one source, flags match data")
def daily_schema(context: dg.AssetCheckExecutionContext, storage: BlobStorage) -> dg.AssetCheckResult:
    return check_weeks(context, storage, "daily_health_metrics", n.DAILY_SCHEMA, lambda wk: schemas.daily(*week_bounds(wk)))


health_checks = [blood_pressure_schema, heart_rate_schema, sleep_schema, daily_schema]
