"""Health telemetry as assets: the two raw sources as they are in Google, versioned per ISO week;
normalised blood pressure, heart rate and sleep; and ``health_daily_metrics``.

Cache awareness is Dagster's own: the raw assets are observable sources whose observation reports
a ``DataVersion`` per week from the week's content; every asset has a ``code_version`` (which
includes the time zone and minimum sleep); the automation condition below requests a week only
when its source content or the code changed, so an unchanged week is never launched again.
"""

import datetime as dt
import zoneinfo

import dagster as dg
import polars as pl

from pdp_assets.lib.automation import AC, WHEN_INPUTS_CHANGE, WHEN_SOURCE_CHANGES
from pdp_assets.lib.health import normalise as n, schemas, store
from pdp_assets.lib.health.settings import HealthSettings
from pdp_assets.lib.metadata import COLUMN_SCHEMA, column_schema, markdown_table, record_weeks, ROW_COUNT, URI
from pdp_assets.lib.partitions import week_bounds, week_path, weekly_partitions
from pdp_assets.lib.resources.google import GoogleSource
from pdp_assets.lib.resources.storage import BlobStorage

GROUP = "health"
OWNERS = ["team:personal-health"]  # who to ask about these assets; the tag selects them across groups
TAGS = {"domain": GROUP}
SETTINGS = HealthSettings.from_env()

RAW_BP = dg.AssetKey("health_raw_blood_pressure")
RAW_MI_BAND = dg.AssetKey("health_raw_mi_band")
BLOOD_PRESSURE = dg.AssetKey("health_blood_pressure")
HEART_RATE = dg.AssetKey("health_heart_rate")
SLEEP = dg.AssetKey("health_sleep")
DAILY = dg.AssetKey("health_daily_metrics")

ROWS_ACCOUNTED = "rows_accounted"  # blocking: rows read = kept + quarantined (+ left out)


def code_version(number: int) -> str:
    """The code's own version and the settings that change results."""
    return f"{number};{SETTINGS.rules}"


# The layers' schemas bound a date to its week; the UI's column list shows their columns only.
_ANY_WEEK = week_bounds(weekly_partitions.get_first_partition_key())


def local_today() -> dt.date:
    """Today in the configured time zone: later dates are typos."""
    return dt.datetime.now(zoneinfo.ZoneInfo(SETTINGS.timezone)).date()


def _observed_weeks(context: dg.OpExecutionContext, rows: pl.DataFrame) -> list[str]:
    """The run's weeks (the schedule asks for this week and the last), or, in a run without
    partitions, every week from the source's first week with data to the current one."""
    if context.has_partition_key or context.has_partition_key_range:
        return list(context.partition_keys)
    first = rows["week"].drop_nulls().min()
    return [w for w in weekly_partitions.get_partition_keys() if first is not None and w >= first]


# --- reading the sources -------------------------------------------------------------------------

def read_blood_pressure(google: GoogleSource, today: dt.date) -> tuple[n.SheetRows, pl.DataFrame]:
    sheet = n.sheet_rows(google.sheet_values(SETTINGS.bp_sheet, SETTINGS.bp_range))
    return sheet, n.with_bp_weeks(sheet.frame, today, SETTINGS.date_order)


def read_mi_band(google: GoogleSource, today: dt.date) -> tuple[n.MiBandRows, pl.DataFrame]:
    files = google.list_folder(SETTINGS.mi_band_folder)
    export = n.mi_band_rows([(f.name, google.download(f)) for f in files if f.name.lower().endswith(".csv")])
    return export, n.with_mi_band_weeks(export.frame, SETTINGS.timezone, today)


# --- raw: the sources as they are, versioned per week ------------------------------------------

# observable_source_asset, not an AssetSpec in multi_observable_source_asset: only its observation
# records a data version per partition (DataVersionsByPartition).
# Observed every morning, this week and the last (a reading typed on Monday may be for Sunday).
# Weeks whose content is unchanged get the same data version, so nothing downstream runs for them.
OBSERVE_DAILY = (
    AC.in_latest_time_window(lookback_delta=dt.timedelta(weeks=2))
    & AC.cron_tick_passed("0 6 * * *", SETTINGS.timezone).since_last_handled()
    & ~AC.in_progress()
)

@dg.observable_source_asset(
    key=RAW_BP,
    partitions_def=weekly_partitions,
    group_name=GROUP, tags=TAGS,
    automation_condition=OBSERVE_DAILY,
    description="Blood pressure readings as typed in the Google Sheet (Date, Time, Systolic, Diastolic, "
    "Pulse). Observing it reads the sheet once and records a data version per ISO week from that "
    "week's rows, so only weeks whose readings changed are rebuilt.",
)
def health_raw_blood_pressure(context: dg.OpExecutionContext, google: GoogleSource) -> dg.DataVersionsByPartition:
    _, rows = read_blood_pressure(google, local_today())
    return dg.DataVersionsByPartition(n.week_versions(rows, n.BP_COLUMNS, _observed_weeks(context, rows)))


@dg.observable_source_asset(
    key=RAW_MI_BAND,
    partitions_def=weekly_partitions,
    group_name=GROUP, tags=TAGS,
    automation_condition=OBSERVE_DAILY,
    description="Mi Band (Mi Fitness) export CSVs in the Google Drive folder: heart_rate and sleep "
    "records (Key, Time, Value JSON). Observing it records a data version per ISO week from that "
    "week's distinct records; other keys and exact duplicates across exports do not count.",
)
def health_raw_mi_band(context: dg.OpExecutionContext, google: GoogleSource) -> dg.DataVersionsByPartition:
    _, records = read_mi_band(google, local_today())
    return dg.DataVersionsByPartition(n.week_versions(records, n.MI_COLUMNS, _observed_weeks(context, records)))


# --- writing a layer ---------------------------------------------------------------------------

def write_layer(
    storage: BlobStorage, layer: str, weeks: list[str], read: pl.DataFrame, kept: pl.DataFrame,
    quarantine: pl.DataFrame, kept_input: pl.Expr | None = None, left_out: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Replace each week's file and quarantine file; return per-week counts.

    ``read`` has one row per input row (column ``week``). ``kept_input`` counts the input rows
    behind a kept row when rows are aggregated (a day from several records); ``left_out``
    (week, count) counts input rows left out on purpose (short sleeps)."""
    wanted = pl.col("week").is_in(weeks)
    for wk, frame in store.split_by_week(kept.filter(wanted), weeks).items():
        store.write_week(storage, layer, wk, frame)
    for wk, frame in store.split_by_week(quarantine.filter(wanted), weeks).items():
        store.write_quarantine(storage, layer, wk, frame)

    def count(frame: pl.DataFrame, name: str, agg: pl.Expr) -> pl.DataFrame:
        return frame.filter(wanted).group_by("week").agg(agg.cast(pl.Int64).alias(name))

    if left_out is None:
        left_out = pl.DataFrame(schema={"week": pl.String, "count": pl.UInt32})
    table = pl.DataFrame({"week": weeks}, schema={"week": pl.String})
    for part in [
        count(read, "read", pl.len()),
        count(kept, "kept", kept_input if kept_input is not None else pl.len()),
        count(kept, "rows", pl.len()),
        count(quarantine, "quarantined", pl.len()),
        count(left_out, "left_out", pl.col("count").sum()),
    ]:
        table = table.join(part, on="week", how="left")
    return table.fill_null(0).with_columns(path=pl.col("week").map_elements(week_path, return_dtype=pl.String))


def _accounted(asset: dg.AssetKey, table: pl.DataFrame) -> dg.AssetCheckResult:
    bad = table.filter(pl.col("read") != pl.col("kept") + pl.col("quarantined") + pl.col("left_out"))
    return dg.AssetCheckResult(
        asset_key=asset,
        check_name=ROWS_ACCOUNTED,
        passed=bad.height == 0,
        metadata={"weeks_checked": table.height, "weeks_failing": bad.height, "failing": markdown_table(bad)},
    )


def _per_week_metadata(context: dg.AssetExecutionContext, asset: dg.AssetKey, table: pl.DataFrame,
                       storage: BlobStorage, layer: str) -> None:
    """Each week's rows and file on its own materialization (a range run records every week)."""
    uri = pl.col("week").map_elements(lambda w: storage.location(store.CONTAINER, store.week_blob(layer, w)),
                                      return_dtype=pl.String)
    record_weeks(context, table.select("week", "rows", "read", "kept", "quarantined", "left_out", uri=uri), asset)


def _summary(table: pl.DataFrame, storage: BlobStorage, layer: str) -> dict:
    changed = table.filter((pl.col("read") > 0) | (pl.col("quarantined") > 0))
    return {
        "weeks": table.height,
        "rows_read": int(table["read"].sum()),
        "rows_kept": int(table["kept"].sum()),
        "rows_in_weeks": int(table["rows"].sum()),
        "rows_quarantined": int(table["quarantined"].sum()),
        "rows_left_out": int(table["left_out"].sum()),
        "weeks_with_data": markdown_table(changed.select("path", "read", "kept", "quarantined", "left_out"), 25),
    }


# --- normalised layers -------------------------------------------------------------------------

@dg.asset(
    key=BLOOD_PRESSURE,
    metadata={COLUMN_SCHEMA: column_schema(schemas.blood_pressure(*_ANY_WEEK), checks=False)},
    deps=[RAW_BP],
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP, owners=OWNERS, tags=TAGS,
    code_version=code_version(2),
    automation_condition=WHEN_SOURCE_CHANGES,
    kinds={"polars", "parquet"},
    check_specs=[dg.AssetCheckSpec(ROWS_ACCOUNTED, asset=BLOOD_PRESSURE, blocking=True, partitions_def=weekly_partitions,
                                   description="rows read = rows kept + rows quarantined, every week")],
)
def health_blood_pressure(
    context: dg.AssetExecutionContext, google: GoogleSource, storage: BlobStorage
) -> dg.MaterializeResult:
    """One row per valid blood pressure reading (local date, UTC instant, systolic, diastolic,
    pulse, sheet row): blood_pressure/year=YYYY/week=WW/data.parquet. Impossible or unreadable
    readings go to quarantine/blood_pressure/ with every reason; readings without a usable date
    to quarantine/blood_pressure/undated.csv."""
    weeks = context.partition_keys
    today = local_today()
    sheet, rows = read_blood_pressure(google, today)
    split = n.normalise_blood_pressure(rows, SETTINGS.timezone, today, f"sheet:{SETTINGS.bp_sheet}")
    undated = split.quarantine.filter(pl.col("week").is_null()).drop("week")
    store.write_undated(storage, "blood_pressure", undated)
    table = write_layer(storage, "blood_pressure", weeks, rows, split.kept, split.quarantine)
    for note in sheet.notes:
        context.log.warning(note)
    _per_week_metadata(context, BLOOD_PRESSURE, table, storage, "blood_pressure")
    return dg.MaterializeResult(
        metadata={
            **_summary(table, storage, "blood_pressure"),
            "sheet": google.location("sheet", SETTINGS.bp_sheet),
            "sheet_rows": sheet.frame.height,
            "blank_rows": sheet.blank_rows,
            "rows_undated": undated.height,
            "notes": "\n".join(sheet.notes),
            "preview": markdown_table(split.kept.filter(pl.col("week").is_in(weeks)).drop("week")),
            "quarantine_preview": markdown_table(
                split.quarantine.filter(pl.col("week").is_in(weeks)).select(n.ROW, n.ERROR)
            ),
        },
        check_results=[_accounted(BLOOD_PRESSURE, table)],
    )


@dg.multi_asset(
    name="health_mi_band",
    specs=[
        dg.AssetSpec(HEART_RATE, deps=[RAW_MI_BAND], group_name=GROUP, owners=OWNERS, tags=TAGS,
                     code_version=code_version(1),
                     metadata={COLUMN_SCHEMA: column_schema(schemas.heart_rate(*_ANY_WEEK), checks=False)},
                     automation_condition=WHEN_SOURCE_CHANGES, kinds={"polars", "parquet"},
                     description="One row per local day: mean of avg_hr, lowest min_hr, highest max_hr of the "
                     "day's valid heart_rate records (heart_rate/year=YYYY/week=WW/data.parquet)."),
        dg.AssetSpec(SLEEP, deps=[RAW_MI_BAND], group_name=GROUP, owners=OWNERS, tags=TAGS,
                     code_version=code_version(1),
                     metadata={COLUMN_SCHEMA: column_schema(schemas.sleep(*_ANY_WEEK, SETTINGS.min_sleep_minutes),
                                                            checks=False)},
                     automation_condition=WHEN_SOURCE_CHANGES, kinds={"polars", "parquet"},
                     description="One row per local date on which sleep ended: the sessions of at least the "
                     "minimum length summed, stages in minutes (sleep/year=YYYY/week=WW/data.parquet). Shorter "
                     "sessions and records without data are left out and counted."),
    ],
    check_specs=[
        dg.AssetCheckSpec(ROWS_ACCOUNTED, asset=HEART_RATE, blocking=True, partitions_def=weekly_partitions,
                          description="records read = records kept + records quarantined, every week"),
        dg.AssetCheckSpec(ROWS_ACCOUNTED, asset=SLEEP, blocking=True, partitions_def=weekly_partitions,
                          description="records read = kept + quarantined + left out (short, no data), every week"),
    ],
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def health_mi_band(context: dg.AssetExecutionContext, google: GoogleSource, storage: BlobStorage):
    """Read the Mi Band exports once; normalise heart rate and sleep per local day."""
    weeks = context.partition_keys
    today = local_today()
    export, records = read_mi_band(google, today)
    hr = n.normalise_heart_rate(records, today)
    sl = n.normalise_sleep(records, today, SETTINGS.min_sleep_minutes)
    unreadable = export.unreadable.with_columns(week=pl.lit(None, pl.String)).select(hr.quarantine.columns)
    undated = pl.concat([hr.quarantine, sl.quarantine, unreadable]).filter(pl.col("week").is_null()).drop("week")
    store.write_undated(storage, "mi_band", undated)
    for note in export.notes:
        context.log.warning(note)
    export_meta = {
        "files": export.files,
        "export_rows": export.rows_read,
        "other_keys_ignored": dg.MetadataValue.json(export.other_keys),
        "duplicates_merged": export.duplicates,
        "revisions_superseded": export.superseded,
        "rows_undated": undated.height,
        "notes": "\n".join(export.notes),
        "folder": google.location("folder", SETTINGS.mi_band_folder),
    }

    hr_table = write_layer(
        storage, "heart_rate", weeks, records.filter(pl.col("key") == "heart_rate"), hr.kept, hr.quarantine,
        kept_input=pl.col("records").sum(),
    )
    left_out = pl.concat([sl.short_sessions, sl.no_data]).group_by("week").agg(pl.col("count").sum())
    sl_table = write_layer(
        storage, "sleep", weeks, records.filter(pl.col("key") == "sleep"), sl.kept, sl.quarantine,
        kept_input=pl.col("sessions").sum(), left_out=left_out,
    )
    _per_week_metadata(context, HEART_RATE, hr_table, storage, "heart_rate")
    _per_week_metadata(context, SLEEP, sl_table, storage, "sleep")
    yield dg.MaterializeResult(
        asset_key=HEART_RATE,
        metadata={**_summary(hr_table, storage, "heart_rate"), **export_meta,
                  "preview": markdown_table(hr.kept.filter(pl.col("week").is_in(weeks)).drop("week"))},
        check_results=[_accounted(HEART_RATE, hr_table)],
    )
    yield dg.MaterializeResult(
        asset_key=SLEEP,
        metadata={
            **_summary(sl_table, storage, "sleep"), **export_meta,
            "min_sleep_minutes": SETTINGS.min_sleep_minutes,
            "short_sessions_left_out": int(sl.short_sessions.filter(pl.col("week").is_in(weeks))["count"].sum()),
            "no_data_left_out": int(sl.no_data.filter(pl.col("week").is_in(weeks))["count"].sum()),
            "preview": markdown_table(sl.kept.filter(pl.col("week").is_in(weeks)).drop("week")),
        },
        check_results=[_accounted(SLEEP, sl_table)],
    )


# --- daily metrics -----------------------------------------------------------------------------

@dg.asset(
    key=DAILY,
    metadata={COLUMN_SCHEMA: column_schema(schemas.daily(*_ANY_WEEK), checks=False)},
    deps=[BLOOD_PRESSURE, HEART_RATE, SLEEP],
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=GROUP, owners=OWNERS, tags=TAGS,
    code_version=code_version(1),
    automation_condition=WHEN_INPUTS_CHANGE,
    kinds={"polars", "parquet"},
)
def health_daily_metrics(context: dg.AssetExecutionContext, storage: BlobStorage) -> dg.MaterializeResult:
    """One row per local date any source covers (outer join): blood pressure mean/max and count,
    heart rate, sleep minutes by stage and score, a has_* flag per source and missing_sources
    naming the sources without data that day (health_daily_metrics/year=YYYY/week=WW/data.parquet)."""
    weeks = context.partition_keys
    bp = store.read_weeks(storage, "blood_pressure", weeks, n.BP_SCHEMA)
    hr = store.read_weeks(storage, "heart_rate", weeks, n.HR_SCHEMA)
    sl = store.read_weeks(storage, "sleep", weeks, n.SLEEP_SCHEMA)
    daily = n.daily_metrics(bp, hr, sl).with_columns(week=pl.col("date").dt.truncate("1w").dt.strftime("%Y-%m-%d"))
    per_week = store.split_by_week(daily, weeks)
    for wk, frame in per_week.items():
        store.write_week(storage, "health_daily_metrics", wk, frame)
        context.add_asset_metadata({ROW_COUNT: frame.height, URI: storage.location(
            store.CONTAINER, store.week_blob("health_daily_metrics", wk))}, partition_key=wk)
    complete = daily.filter(pl.col("missing_sources") == "")
    return dg.MaterializeResult(
        metadata={
            "weeks": len(weeks),
            "days": daily.height,
            "complete_days": complete.height,
            "days_without_blood_pressure": daily.filter(~pl.col("has_blood_pressure")).height,
            "days_without_heart_rate": daily.filter(~pl.col("has_heart_rate")).height,
            "days_without_sleep": daily.filter(~pl.col("has_sleep")).height,
            "preview": markdown_table(daily.drop("week").select(
                "date", "bp_readings", "systolic_mean", "diastolic_mean", "avg_hr", "sleep_minutes",
                "sleep_score", "missing_sources")),
        }
    )
