"""Pure, vectorised Polars functions: read the sources into frames, give every record its week,
apply the rules (a reason per failing row, never a silent drop), shape the daily tables.

Sheet rows and Mi Band records arrive as strings. A rule is a (failing?, reason) pair of Polars
expressions; a row's reasons are joined with "; ", and a row with no reason is kept.
"""

import datetime as dt
import hashlib
import io
import re
from dataclasses import dataclass, field

import polars as pl

from pdp_assets.lib.partitions import FIRST_MONDAY
from pdp_assets.lib.quarantine import ERROR, ROW, SOURCE


BP_COLUMNS = ["date", "time", "systolic", "diastolic", "pulse"]
BP_LIMITS = {"systolic": (60, 260), "diastolic": (30, 160), "pulse": (25, 230)}
DATE_FORMATS = ["%Y-%m-%d", "%d.%m.%Y"]  # and D/M/YYYY or M/D/YYYY, in the order the sheet shows (_slash_dates)
TIME_FORMATS = ["%H:%M", "%H:%M:%S", "%I:%M %p", "%I:%M:%S %p"]  # 12-hour: Google's en-US formatted values
_SLASH = r"^(\d{1,2})/(\d{1,2})/(\d{4})$"
HEADER_ALIASES = {"sys": "systolic", "dia": "diastolic", "bpm": "pulse", "hr": "pulse", "heartrate": "pulse"}

MI_COLUMNS = ["key", "time", "value"]
MI_KEYS = ["heart_rate", "sleep"]
HR_FIELDS = ["avg_hr", "min_hr", "max_hr"]
HR_LIMITS = (25, 230)
STAGES = ["sleep_deep_duration", "sleep_light_duration", "sleep_rem_duration", "sleep_awake_duration"]
SLEEP_FIELDS = ["total_duration", *STAGES, "sleep_score", "has_data"]
MAX_SLEEP_MINUTES = 24 * 60

BP_SCHEMA = {
    "date": pl.Date, "measured_at": pl.Datetime("us", "UTC"),
    "systolic": pl.Int64, "diastolic": pl.Int64, "pulse": pl.Int64, ROW: pl.Int64,
}
HR_SCHEMA = {"date": pl.Date, "avg_hr": pl.Float64, "min_hr": pl.Float64, "max_hr": pl.Float64, "records": pl.UInt32}
SLEEP_SCHEMA = {
    "date": pl.Date, "sessions": pl.UInt32, "total_minutes": pl.Float64, "deep_minutes": pl.Float64,
    "light_minutes": pl.Float64, "rem_minutes": pl.Float64, "awake_minutes": pl.Float64,
    "sleep_score": pl.Float64, "fell_asleep_at": pl.Datetime("us", "UTC"), "woke_at": pl.Datetime("us", "UTC"),
}
DAILY_SCHEMA = {
    "date": pl.Date, "bp_readings": pl.UInt32, "systolic_mean": pl.Float64, "diastolic_mean": pl.Float64,
    "pulse_mean": pl.Float64, "systolic_max": pl.Int64, "diastolic_max": pl.Int64,
    "avg_hr": pl.Float64, "min_hr": pl.Float64, "max_hr": pl.Float64,
    "sleep_minutes": pl.Float64, "deep_minutes": pl.Float64, "light_minutes": pl.Float64,
    "rem_minutes": pl.Float64, "awake_minutes": pl.Float64, "sleep_score": pl.Float64,
    "has_blood_pressure": pl.Boolean, "has_heart_rate": pl.Boolean, "has_sleep": pl.Boolean,
    "missing_sources": pl.String,
}


# --- shared helpers ----------------------------------------------------------------------------

def _reasons(rules: list[tuple[pl.Expr, pl.Expr | str]]) -> pl.Expr:
    """Every failing rule's reason, joined with "; " ("" when the row passes)."""
    parts = [pl.when(fails.fill_null(False)).then(reason if isinstance(reason, pl.Expr) else pl.lit(reason))
             for fails, reason in rules]
    return pl.concat_list(parts).list.drop_nulls().list.join("; ")


def _week_of(day: pl.Expr) -> pl.Expr:
    """The partition key (Monday, ISO week) of a date."""
    return day.dt.truncate("1w").dt.strftime("%Y-%m-%d")


def _in_partitions(day: pl.Expr, today: dt.date) -> pl.Expr:
    # Partitions run from ISO 2020-W01 to the current week; later dates are typos.
    return day.is_between(FIRST_MONDAY, today)


def _outside(day: pl.Expr, what: str, today: dt.date) -> pl.Expr:
    return pl.format(f"{what} {{}} is outside {FIRST_MONDAY} .. {today}", day.dt.strftime("%Y-%m-%d"))


def _short(text: pl.Expr, width: int = 60) -> pl.Expr:
    return pl.when(text.str.len_chars() > width).then(text.str.slice(0, width) + pl.lit("...")).otherwise(text)


def week_versions(frame: pl.DataFrame, columns: list[str], weeks: list[str]) -> dict[str, str]:
    """A content hash per week over ``columns`` (row order ignored); an empty week has one too."""
    parts = frame.select("week", *columns).partition_by("week", as_dict=True) if frame.height else {}
    by_week = {k[0]: v.drop("week") for k, v in parts.items()}
    versions = {}
    for wk in weeks:
        rows = by_week.get(wk)
        text = rows.sort(columns, nulls_last=True).write_csv() if rows is not None else ""
        versions[wk] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return versions


# --- blood pressure: the Google Sheet ------------------------------------------------------------

def header_name(cell: str) -> str:
    """" Systolic (mmHg)", "SYS", "sys_" -> "systolic": case, spaces, units and aliases tolerated."""
    key = re.sub(r"\(.*?\)|\[.*?\]", "", cell).lower()
    key = re.sub(r"[\s_\-.]+", "", key)
    return HEADER_ALIASES.get(key, key)


@dataclass
class SheetRows:
    frame: pl.DataFrame  # row_number (the sheet's row) + BP_COLUMNS as strings, null when empty
    notes: list[str] = field(default_factory=list)
    blank_rows: int = 0  # empty lines between readings: not readings, only counted


def sheet_rows(values: list[list[str]]) -> SheetRows:
    """The sheet's cells (header first) as a frame of strings."""
    empty = pl.DataFrame(schema={ROW: pl.Int64, **{c: pl.String for c in BP_COLUMNS}})
    if not values or not any(str(c).strip() for c in values[0]):
        return SheetRows(empty, ["the sheet is empty (no header row)"])
    header = [header_name(str(c)) for c in values[0]]
    body = values[1:]
    notes = []
    missing = [c for c in BP_COLUMNS if c not in header]
    if missing:
        notes.append(f"the sheet has no {', '.join(missing)} column: its rows are quarantined")
    extra = [values[0][i] for i, h in enumerate(header) if h not in BP_COLUMNS and h]
    if extra:
        notes.append(f"columns ignored: {', '.join(map(str, extra))}")
    # The API leaves out trailing empty cells, so rows are ragged: take each column by position.
    columns = {}
    for c in BP_COLUMNS:
        j = header.index(c) if c in header else None
        columns[c] = [str(r[j]) if j is not None and j < len(r) else None for r in body]
    frame = pl.DataFrame(columns, schema={c: pl.String for c in BP_COLUMNS}).with_columns(
        pl.col(BP_COLUMNS).str.strip_chars().replace("", None)
    )
    frame = frame.with_row_index(ROW, offset=2).with_columns(pl.col(ROW).cast(pl.Int64))  # row 1 is the header
    blank = pl.all_horizontal(pl.col(BP_COLUMNS).is_null())
    # A row with values only outside the five columns is blank for us; count it, do not keep it.
    blank_rows = frame.filter(blank).height
    return SheetRows(frame.filter(~blank).select(ROW, *BP_COLUMNS), notes, blank_rows)


def _parsed_date(col: str) -> pl.Expr:
    return pl.coalesce([pl.col(col).str.to_date(f, strict=False) for f in DATE_FORMATS])


def _slash_dates(dates: pl.Series, order: str = "") -> tuple[pl.Series, pl.Series]:
    """Dates written with slashes, read in the order the sheet itself shows: a first number over 12
    anywhere in the column makes it day/month, a second one month/day. A row whose own numbers
    say it (27/11, 11/27) is read so whatever the others; one that could be either (11/05) takes
    the column's order (or ``order``, "dmy" or "mdy", when given), and when the column shows none
    or both it is left unread and flagged."""
    parts = dates.str.extract_groups(_SLASH).struct.unnest().cast(pl.Int32, strict=False)
    first, second = pl.col("1"), pl.col("2")
    day_first, month_first = bool((parts["1"] > 12).any()), bool((parts["2"] > 12).any())
    order = order or ("dmy" if day_first and not month_first else "mdy" if month_first and not day_first else None)
    read = parts.with_columns(
        dmy=(first > 12) | (first == second) | pl.lit(order == "dmy"),
        mdy=(second > 12) | pl.lit(order == "mdy"),
    ).select(
        pl.when(pl.col("dmy")).then(pl.concat_str("3", "2", "1", separator="-"))
        .when(pl.col("mdy")).then(pl.concat_str("3", "1", "2", separator="-"))
        .str.to_date("%Y-%m-%d", strict=False).alias("day"),
        (first.is_not_null() & ~pl.col("dmy") & ~pl.col("mdy")).alias("ambiguous"),
    )
    return read["day"], read["ambiguous"]


def _parsed_time(col: str) -> pl.Expr:
    return pl.coalesce([pl.col(col).str.to_time(f, strict=False) for f in TIME_FORMATS])


def with_bp_weeks(rows: pl.DataFrame, today: dt.date, date_order: str = "") -> pl.DataFrame:
    """Adds ``day`` (the reading's local date; null when unusable, ``date_ambiguous`` when a
    slashed date could be either order) and ``week``."""
    slashed, ambiguous = _slash_dates(rows.get_column("date").str.strip_chars(), date_order)
    return rows.with_columns(day=pl.coalesce(_parsed_date("date"), slashed), date_ambiguous=ambiguous).with_columns(
        week=pl.when(_in_partitions(pl.col("day"), today)).then(_week_of(pl.col("day")))
    )


@dataclass
class Split:
    kept: pl.DataFrame
    quarantine: pl.DataFrame  # the row as read + pipeline_error, source_file, row_number, week (null: undated)


def normalise_blood_pressure(rows: pl.DataFrame, tz: str, today: dt.date, source: str) -> Split:
    """One row per valid reading with its UTC instant; bad rows quarantined with every reason.

    ``rows`` come from :func:`with_bp_weeks`. The sheet's date and time are the wall clock of
    ``tz``; ``date`` stays that local date."""
    f = rows.with_columns(
        clock=_parsed_time("time"),
        **{f"_{c}": pl.col(c).cast(pl.Float64, strict=False) for c in BP_LIMITS},
    )
    f = f.with_columns(local=pl.col("day").dt.combine(pl.col("clock")))
    f = f.with_columns(
        measured_at=pl.col("local").dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    rules = [
        (pl.col("date").is_null(), "date is missing"),
        (pl.col("date_ambiguous"),
         pl.format("date '{}' could be day/month or month/day, and the sheet's other dates do not say which", "date")),
        (pl.col("date").is_not_null() & pl.col("day").is_null() & ~pl.col("date_ambiguous"),
         pl.format("date '{}' is not a date (YYYY-MM-DD, DD.MM.YYYY, DD/MM/YYYY or MM/DD/YYYY)", "date")),
        (pl.col("day").is_not_null() & pl.col("week").is_null(), _outside(pl.col("day"), "date", today)),
        (pl.col("time").is_null(), "time is missing"),
        (pl.col("time").is_not_null() & pl.col("clock").is_null(), pl.format("time '{}' is not a time (HH:MM, HH:MM:SS or 8:05 AM)", "time")),
        (pl.col("local").is_not_null() & pl.col("measured_at").is_null(),
         pl.format(f"{{}} {{}} does not exist in {tz} (clock change)", "date", "time")),
    ]
    for c, (low, high) in BP_LIMITS.items():
        x = pl.col(f"_{c}")
        rules += [
            (pl.col(c).is_null(), f"{c} is missing"),
            (pl.col(c).is_not_null() & x.is_null(), pl.format(f"{c} '{{}}' is not a number", c)),
            (x.is_not_null() & (x != x.floor()), pl.format(f"{c} {{}} is not a whole number", c)),
            (x.is_not_null() & ~x.is_between(low, high), pl.format(f"{c} {{}} is outside {low}-{high}", c)),
        ]
    rules.append((pl.col("_diastolic") >= pl.col("_systolic"),
                  pl.format("diastolic {} is not below systolic {}", "diastolic", "systolic")))
    f = f.with_columns(**{ERROR: _reasons(rules)})

    # Among otherwise valid rows: the same reading typed twice, or two readings at one instant.
    values = ["_systolic", "_diastolic", "_pulse"]
    valid = pl.col(ERROR) == ""
    first = pl.col(ROW).min().over(["measured_at", *values, valid])
    clash = pl.struct(values).n_unique().over(["measured_at", valid]) > 1
    f = f.with_columns(
        pl.when(valid & (pl.col(ROW) != first)).then(pl.format("same reading as sheet row {}", first))
        .when(valid & clash).then(pl.lit("another reading with different values has the same date and time"))
        .otherwise(pl.col(ERROR)).alias(ERROR)
    )
    kept = f.filter(pl.col(ERROR) == "").select(
        "week", pl.col("day").alias("date"), "measured_at",
        *[pl.col(f"_{c}").cast(pl.Int64).alias(c) for c in BP_LIMITS], ROW,
    ).sort("measured_at", ROW)
    quarantine = f.filter(pl.col(ERROR) != "").select(
        "week", ROW, *BP_COLUMNS, ERROR, pl.lit(source).alias(SOURCE)
    ).sort(ROW)
    return Split(kept, quarantine)


# --- Mi Band: export CSVs in a Drive folder ---------------------------------------------------

@dataclass
class MiBandRows:
    frame: pl.DataFrame  # source_file, row_number, key, time, value: heart_rate and sleep only, once each
    unreadable: pl.DataFrame  # rows of files without key/time/value columns, with pipeline_error
    rows_read: int = 0
    other_keys: dict[str, int] = field(default_factory=dict)  # ignored, counted
    duplicates: int = 0  # the same record in several (overlapping) exports: kept once, counted
    superseded: int = 0  # an earlier revision or another tag of a record (same Key and Time)
    notes: list[str] = field(default_factory=list)
    files: int = 0


MI_OPTIONAL = ["updatetime", "tag"]  # a revision has a later UpdateTime; a record may repeat under another Tag
TAG_PREFERENCE = ["daily_report"]  # the tag kept when one record comes under several (then by name)
_MI_EMPTY = {SOURCE: pl.String, ROW: pl.Int64, **{c: pl.String for c in MI_COLUMNS + MI_OPTIONAL}}


def _one_per_record(rows: pl.DataFrame) -> pl.DataFrame:
    """Per (Key, Time), the rows of its latest UpdateTime under one Tag (the preferred one, else
    the first by name): earlier revisions and re-tags go. Rows that still differ (no revision
    says which is meant) and rows without a valid Time stay, for the rules to judge."""
    tag = pl.col("tag").fill_null("").str.strip_chars().str.to_lowercase()
    record = ["key", "time"]
    f = rows.with_columns(
        _updated=pl.col("updatetime").str.strip_chars().cast(pl.Int64, strict=False).fill_null(-1),
        _tag=pl.when(tag.is_in(TAG_PREFERENCE)).then(pl.lit("")).otherwise(tag),  # "" sorts first
        _dated=pl.col("time").cast(pl.Int64, strict=False).is_not_null(),
    )
    latest = f.filter(~pl.col("_dated") | (pl.col("_updated") == pl.col("_updated").max().over(record)))
    chosen = latest.filter(~pl.col("_dated") | (pl.col("_tag") == pl.col("_tag").min().over(record)))
    return chosen.drop("_updated", "_tag", "_dated")


def mi_band_rows(files: list[tuple[str, bytes]]) -> MiBandRows:
    """Every export file's rows; columns matched case-insensitively, other columns ignored."""
    frames, unreadable, notes = [], [], []
    for name, data in files:
        try:
            raw = pl.read_csv(io.BytesIO(data), infer_schema=False, raise_if_empty=False, encoding="utf8-lossy")
        except pl.exceptions.PolarsError as e:
            notes.append(f"{name}: not readable as CSV, skipped ({str(e).splitlines()[0]})")
            continue
        raw = raw.rename({c: c.strip().lower() for c in raw.columns}, strict=False)
        raw = raw.with_row_index(ROW, offset=2).with_columns(pl.col(ROW).cast(pl.Int64), pl.lit(name).alias(SOURCE))
        missing = [c for c in MI_COLUMNS if c not in raw.columns]
        absent = [c for c in MI_COLUMNS + MI_OPTIONAL if c not in raw.columns]
        raw = raw.with_columns(pl.lit(None, pl.String).alias(c) for c in absent).select(list(_MI_EMPTY))
        if missing:
            notes.append(f"{name}: no {', '.join(missing)} column: its {raw.height} rows are quarantined")
            unreadable.append(raw.with_columns(pl.lit(f"the file has no {', '.join(missing)} column").alias(ERROR)))
        else:
            frames.append(raw)
    rows = pl.concat(frames) if frames else pl.DataFrame(schema=_MI_EMPTY)
    bad = pl.concat(unreadable) if unreadable else pl.DataFrame(schema={**_MI_EMPTY, ERROR: pl.String})
    rows = rows.with_columns(pl.col("key").str.strip_chars().str.to_lowercase(), pl.col("time").str.strip_chars())
    known = pl.col("key").is_in(MI_KEYS)
    others = rows.filter(~known)["key"].fill_null("(empty)").value_counts(sort=True)
    rows = rows.filter(known)
    first = rows.select(pl.struct(MI_COLUMNS + MI_OPTIONAL).is_first_distinct()).to_series()
    distinct = rows.filter(first)
    latest = _one_per_record(distinct)
    return MiBandRows(
        frame=latest,
        unreadable=bad,
        rows_read=sum(f.height for f in frames) + bad.height,
        other_keys=dict(others.iter_rows()),
        duplicates=rows.height - distinct.height,
        superseded=distinct.height - latest.height,
        notes=notes,
        files=len(files),
    )


def _json_field(name: str) -> pl.Expr:
    return pl.col("value").str.json_path_match(f"$.{name}")


def with_mi_band_weeks(rows: pl.DataFrame, tz: str, today: dt.date) -> pl.DataFrame:
    """Adds ``start`` (UTC), ``end`` (UTC), ``day`` and ``week``. A heart-rate record belongs to
    the local date of its Time; a sleep session to the local date on which it ends (Time +
    total_duration minutes), so a night across midnight counts for the morning it ends."""
    seconds = pl.col("time").cast(pl.Int64, strict=False)
    total = _json_field("total_duration").cast(pl.Float64, strict=False)
    f = rows.with_columns(start=pl.from_epoch(seconds, time_unit="s").dt.replace_time_zone("UTC"))
    f = f.with_columns(
        end=pl.when((pl.col("key") == "sleep") & total.is_not_null() & (total >= 0))
        .then(pl.col("start") + pl.duration(seconds=(total * 60).round().cast(pl.Int64)))
        .otherwise(pl.col("start"))
    )
    f = f.with_columns(day=pl.col("end").dt.convert_time_zone(tz).dt.date())
    return f.with_columns(week=pl.when(_in_partitions(pl.col("day"), today)).then(_week_of(pl.col("day"))))


def _time_rules(today: dt.date) -> list:
    return [
        (pl.col("time").is_null(), "Time is missing"),
        (pl.col("time").is_not_null() & pl.col("start").is_null(),
         pl.format("Time '{}' is not a Unix time in seconds", "time")),
        (pl.col("day").is_not_null() & pl.col("week").is_null(), _outside(pl.col("day"), "date", today)),
        (~pl.col("value").str.json_path_match("$").str.starts_with("{").fill_null(False),
         pl.format("Value is not a JSON object: '{}'", _short(pl.col("value").fill_null("")))),
    ]


def _number_rules(fields: list[str], required: list[str]) -> tuple[dict[str, pl.Expr], list]:
    """Each field as Float64, and rules for missing and non-numeric values."""
    parsed, rules = {}, []
    for name in fields:
        text = _json_field(name)
        parsed[name] = text.cast(pl.Float64, strict=False)
        if name in required:
            rules.append((pl.col("value").str.json_path_match("$").str.starts_with("{") & text.is_null(),
                          f"{name} is missing"))
        rules.append((text.is_not_null() & parsed[name].is_null(), pl.format(f"{name} '{{}}' is not a number", text)))
    return parsed, rules


_QUARANTINE_COLUMNS = ["week", SOURCE, ROW, *MI_COLUMNS, ERROR]


def normalise_heart_rate(records: pl.DataFrame, today: dt.date) -> Split:
    """One row per local day: the mean of avg_hr, the lowest min_hr and the highest max_hr of the
    day's valid records. ``records`` come from :func:`with_mi_band_weeks`."""
    hr = records.filter(pl.col("key") == "heart_rate")
    parsed, rules = _number_rules(HR_FIELDS, HR_FIELDS)
    f = hr.with_columns(**{f"_{k}": v for k, v in parsed.items()})
    low, high = HR_LIMITS
    rules = _time_rules(today) + rules
    for name in HR_FIELDS:
        rules.append((~pl.col(f"_{name}").is_between(low, high), pl.format(f"{name} {{}} is outside {low}-{high}", f"_{name}")))
    rules.append((~((pl.col("_min_hr") <= pl.col("_avg_hr")) & (pl.col("_avg_hr") <= pl.col("_max_hr"))),
                  pl.format("not min_hr {} <= avg_hr {} <= max_hr {}", "_min_hr", "_avg_hr", "_max_hr")))
    f = f.with_columns(**{ERROR: _reasons(rules)})
    kept = (
        f.filter(pl.col(ERROR) == "")
        .group_by("week", pl.col("day").alias("date"))
        .agg(
            pl.col("_avg_hr").mean().round(1).alias("avg_hr"),
            pl.col("_min_hr").min().alias("min_hr"),
            pl.col("_max_hr").max().alias("max_hr"),
            pl.len().alias("records"),
        )
        .sort("date")
    )
    return Split(kept, f.filter(pl.col(ERROR) != "").select(_QUARANTINE_COLUMNS).sort(SOURCE, ROW))


@dataclass
class SleepSplit(Split):
    short_sessions: pl.DataFrame = None  # week, count: sessions under the minimum, left out
    no_data: pl.DataFrame = None  # week, count: records with has_data false, left out


def normalise_sleep(records: pl.DataFrame, today: dt.date, min_minutes: int) -> SleepSplit:
    """One row per local date on which sleep ended: the day's sessions of at least
    ``min_minutes`` summed (the score is the longest session's). Shorter sessions and records
    without data are left out and counted; impossible ones are quarantined."""
    sl = records.filter(pl.col("key") == "sleep")
    parsed, rules = _number_rules(SLEEP_FIELDS[:-1], ["total_duration"])
    f = sl.with_columns(
        **{f"_{k}": v for k, v in parsed.items()},
        # Only an explicit false means no data: aggregated daily_report records have no has_data key.
        _has_data=_json_field("has_data").str.to_lowercase().is_in(["false", "0"]).not_().fill_null(True),
    )
    stage_sum = pl.sum_horizontal(pl.col(f"_{s}").fill_null(0) for s in STAGES)
    rules = _time_rules(today) + rules
    rules += [(pl.col(f"_{s}") < 0, pl.format(f"{s} {{}} is negative", f"_{s}")) for s in ["total_duration", *STAGES]]
    rules += [
        (stage_sum > pl.col("_total_duration"),
         pl.format("sleep stages sum to {} minutes, more than total_duration {}", stage_sum, "_total_duration")),
        (pl.col("_total_duration") > MAX_SLEEP_MINUTES,
         pl.format(f"total_duration {{}} is more than {MAX_SLEEP_MINUTES} minutes", "_total_duration")),
        (~pl.col("_sleep_score").is_between(0, 100), pl.format("sleep_score {} is outside 0-100", "_sleep_score")),
    ]
    f = f.with_columns(**{ERROR: _reasons(rules)})
    ok = f.filter(pl.col(ERROR) == "")
    no_data = ~pl.col("_has_data")
    short = pl.col("_has_data") & (pl.col("_total_duration") < min_minutes)
    kept = (
        ok.filter(~no_data & ~short)
        .sort("_total_duration", descending=True)
        .group_by("week", pl.col("day").alias("date"))
        .agg(
            pl.len().alias("sessions"),
            pl.col("_total_duration").sum().alias("total_minutes"),
            *[pl.col(f"_{s}").fill_null(0).sum().alias(s.removeprefix("sleep_").replace("_duration", "_minutes"))
              for s in STAGES],
            pl.col("_sleep_score").first().alias("sleep_score"),  # of the longest session
            pl.col("start").min().alias("fell_asleep_at"),
            pl.col("end").max().alias("woke_at"),
        )
        .sort("date")
    )
    return SleepSplit(
        kept,
        f.filter(pl.col(ERROR) != "").select(_QUARANTINE_COLUMNS).sort(SOURCE, ROW),
        short_sessions=ok.filter(short).group_by("week").len("count"),
        no_data=ok.filter(no_data).group_by("week").len("count"),
    )


# --- daily metrics ----------------------------------------------------------------------------

SOURCES = {"has_blood_pressure": "blood_pressure", "has_heart_rate": "heart_rate", "has_sleep": "sleep"}


def daily_metrics(bp: pl.DataFrame, hr: pl.DataFrame, sleep: pl.DataFrame) -> pl.DataFrame:
    """One row per local date that any source covers (an outer join), with a flag per source
    and ``missing_sources`` naming the sources without data that day."""
    bp_day = bp.group_by("date").agg(
        pl.len().alias("bp_readings"),
        pl.col("systolic").mean().round(1).alias("systolic_mean"),
        pl.col("diastolic").mean().round(1).alias("diastolic_mean"),
        pl.col("pulse").mean().round(1).alias("pulse_mean"),
        pl.col("systolic").max().alias("systolic_max"),
        pl.col("diastolic").max().alias("diastolic_max"),
    ).with_columns(has_blood_pressure=pl.lit(True))
    hr_day = hr.select("date", "avg_hr", "min_hr", "max_hr", has_heart_rate=pl.lit(True))
    sleep_day = sleep.select(
        "date", pl.col("total_minutes").alias("sleep_minutes"), "deep_minutes", "light_minutes",
        "rem_minutes", "awake_minutes", "sleep_score", has_sleep=pl.lit(True),
    )
    joined = bp_day.join(hr_day, on="date", how="full", coalesce=True).join(
        sleep_day, on="date", how="full", coalesce=True
    )
    flags = list(SOURCES)
    joined = joined.with_columns(pl.col(flags).fill_null(False))
    missing = pl.concat_list([pl.when(~pl.col(f)).then(pl.lit(s)) for f, s in SOURCES.items()])
    return (
        joined.with_columns(missing_sources=missing.list.drop_nulls().list.join(","))
        .select(list(DAILY_SCHEMA))
        .cast(DAILY_SCHEMA)
        .sort("date")
    )
