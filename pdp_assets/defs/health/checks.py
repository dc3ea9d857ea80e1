"""Blocking Pandera checks on every stored week of every health layer: bad data must not reach
``health_daily_metrics``, and a bad daily table must not be trusted.

In a one-week run a check's result is recorded for that week; in a single-run backfill over a
range it checks every week of the range, fails if any fails, and lists each week's outcome.
"""

from typing import Callable

import dagster as dg
import pandera.errors
import pandera.polars as pa
import polars as pl

from pdp_assets.defs.health.assets import BLOOD_PRESSURE, DAILY, HEART_RATE, RAW_BP, RAW_MI_BAND, SETTINGS, SLEEP
from pdp_assets.lib.health import normalise as n, schemas, store
from pdp_assets.lib.metadata import markdown_table, weeks_check_result
from pdp_assets.lib.partitions import week_bounds, week_path, weekly_partitions
from pdp_assets.lib.resources.google import GoogleSource
from pdp_assets.lib.resources.storage import BlobStorage

SCHEMA_CHECK = "pandera_schema"
SOURCE_READABLE = "source_readable"  # on the raw sources, run with their observation


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
    return check_weeks(context, storage, "health_daily_metrics", n.DAILY_SCHEMA, lambda wk: schemas.daily(*week_bounds(wk)))


# --- the raw sources: checked when they are observed. Soft (WARN): the layers quarantine rows
# they cannot read, with the reason, so nothing is lost; but a person should fix the source.

@dg.asset_check(asset=RAW_BP, name=SOURCE_READABLE, partitions_def=weekly_partitions,
                description="The sheet has a header row naming Date, Time, Systolic, Diastolic and Pulse "
                "(case, spaces, units and aliases tolerated); without them its rows can only be quarantined")
def blood_pressure_sheet_readable(context: dg.AssetCheckExecutionContext, google: GoogleSource) -> dg.AssetCheckResult:
    where = google.location("sheet", SETTINGS.bp_sheet)
    try:
        values = google.sheet_values(SETTINGS.bp_sheet, SETTINGS.bp_range)
    except FileNotFoundError as e:
        values, problem = [], str(e)
    else:
        problem = "" if values and any(str(c).strip() for c in values[0]) else "the sheet is empty (no header row)"
    header = [n.header_name(str(c)) for c in values[0]] if values else []
    missing = [c for c in n.BP_COLUMNS if c not in header]
    return dg.AssetCheckResult(
        passed=not problem and not missing,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "problem": problem or (f"no {', '.join(missing)} column" if missing else "none"),
            "columns_missing": dg.MetadataValue.json(missing),
            "header": dg.MetadataValue.json([str(c) for c in values[0]] if values else []),
            "sheet_rows": max(len(values) - 1, 0),
            "sheet": where,
        },
    )


@dg.asset_check(asset=RAW_MI_BAND, name=SOURCE_READABLE, partitions_def=weekly_partitions,
                description="Every CSV export in the Drive folder reads as CSV and has Key, Time and Value "
                "columns; a file that does not is skipped or quarantined whole")
def mi_band_exports_readable(context: dg.AssetCheckExecutionContext, google: GoogleSource) -> dg.AssetCheckResult:
    where = google.location("folder", SETTINGS.mi_band_folder)
    try:
        files = [f for f in google.list_folder(SETTINGS.mi_band_folder) if f.name.lower().endswith(".csv")]
    except FileNotFoundError as e:
        files, problems = [], [str(e)]
    else:
        problems = n.mi_band_rows([(f.name, google.download(f)) for f in files]).notes  # only problems
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "files": len(files),
            "files_with_problems": len(problems),
            "problems": dg.MetadataValue.json(problems[:20]),
            "folder": where,
        },
    )


health_checks = [blood_pressure_schema, heart_rate_schema, sleep_schema, daily_schema,
                 blood_pressure_sheet_readable, mi_band_exports_readable]
