"""The statements a load runs, one function per step, on a DB-API cursor.

Identifiers come only from the validated config or from source column names checked here, and
are always written double-quoted in upper case; values are always bound (``%s``). Rows reach
Snowflake as a Parquet file: ``PUT`` into an internal stage, then ``COPY INTO`` the stage table
(what ``write_pandas`` does underneath, and what fakesnow supports in server mode too).
"""

import datetime as dt
import fnmatch
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.partitions import week_path
from pdp_assets.lib.resources.storage import BlobStorage
from pdp_assets.lib.warehouse.config import IDENT, Load, Source

WINDOW_COL, LOAD_ID_COL, LOADED_AT_COL = "PDP_WINDOW", "PDP_LOAD_ID", "PDP_LOADED_AT"
META_COLUMNS = {WINDOW_COL: "DATE", LOAD_ID_COL: "VARCHAR", LOADED_AT_COL: "TIMESTAMP_TZ"}


class PermanentLoadError(Exception):
    """A problem no retry fixes (bad source data, schema drift, a busy window): fail at once."""


class SchemaDriftError(PermanentLoadError):
    pass


class TransientLoadError(Exception):
    """A problem a retry may fix (timeouts, lock contention, dropped connections)."""


def q(name: str) -> str:
    """A validated identifier, quoted. Never called with anything that failed validation."""
    if not IDENT.fullmatch(name):
        raise PermanentLoadError(f"{name!r} is not a plain Snowflake identifier")
    return f'"{name.upper()}"'


def stage_ref(name: str) -> str:
    """A validated stage name, unquoted (PUT and COPY paths read better, and it is plain)."""
    return q(name).strip('"')


# ----------------------------------------------------------------------------------- source


def source_blobs(storage: BlobStorage, source: Source, window_key: str) -> list[str]:
    monday = dt.date.fromisoformat(window_key)
    iso = monday.isocalendar()
    path = source.path.format(week_path=week_path(window_key), week=window_key,
                              iso_year=f"{iso.year:04d}", iso_week=f"{iso.week:02d}")
    if "*" not in path:
        return [path] if storage.exists(source.container, path) else []
    prefix = path[: path.index("*")]
    return [b.name for b in storage.list_blobs(source.container, prefix) if fnmatch.fnmatch(b.name, path)]


def any_source_blob(storage: BlobStorage, source: Source) -> bool:
    """Whether any week has a file at the source's path (a wrong container or path has none)."""
    pattern = re.sub(r"\{[^}]*\}", "*", source.path)
    prefix = pattern[: pattern.index("*")] if "*" in pattern else pattern
    return any(fnmatch.fnmatch(b.name, pattern) for b in storage.list_blobs(source.container, prefix))


def read_source(storage: BlobStorage, load: Load, window_key: str) -> tuple[pl.DataFrame, list[str]]:
    """The window's rows with upper-case column names, and the blobs they came from. A load that
    honours lab deletions never reads an erased record, even from a lake week not rebuilt yet."""
    source = load.source
    names = source_blobs(storage, source, window_key)
    frames = [pl.read_parquet(storage.read(source.container, n)) for n in names]
    frame = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    bad = [c for c in frame.columns if not IDENT.fullmatch(c)]
    if bad:
        raise PermanentLoadError(f"source column(s) {bad} are not plain Snowflake identifiers; rename them in the source")
    upper = [c.upper() for c in frame.columns]
    if len(set(upper)) != len(upper):
        raise PermanentLoadError(f"source columns {frame.columns} collide once upper-cased, as Snowflake stores them")
    if reserved := set(upper) & set(META_COLUMNS):
        raise PermanentLoadError(f"source column(s) {sorted(reserved)} clash with the load's own columns")
    frame = frame.rename(dict(zip(frame.columns, upper)))
    if load.honour_lab_deletions and frame.height:
        keys = frame.select(sample_id="SAMPLE_ID", test_date="TEST_DATE")
        frame = frame.filter(~lake.is_erased(keys, lake.erased_pairs(storage)))
    return frame, names


def check_keys(frame: pl.DataFrame, load: Load) -> None:
    """Merge keys present, never null, unique: otherwise a MERGE would double or drop rows."""
    if frame.width == 0:
        return
    missing = [k for k in load.merge_keys if k not in frame.columns]
    if missing:
        raise PermanentLoadError(f"merge key(s) {missing} are not columns of the source ({frame.columns})")
    nulls = {k: n for k in load.merge_keys if (n := frame[k].null_count())}
    if nulls:
        raise PermanentLoadError(f"rows with no merge key value: {nulls}")
    dupes = frame.height - frame.select(load.merge_keys).n_unique()
    if dupes:
        raise PermanentLoadError(f"{dupes} source row(s) repeat a merge key {load.merge_keys}; the MERGE would be ambiguous")


# ----------------------------------------------------------------------------------- schema


def snowflake_type(dtype: pl.DataType, column: str) -> str:
    if dtype == pl.String:
        return "VARCHAR"
    if dtype.is_integer():
        return "NUMBER(38,0)"
    if dtype.is_float():
        return "FLOAT"
    if dtype == pl.Boolean:
        return "BOOLEAN"
    if dtype == pl.Date:
        return "DATE"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMP_TZ" if dtype.time_zone else "TIMESTAMP_NTZ"
    if isinstance(dtype, pl.Decimal):
        return f"NUMBER({dtype.precision or 38},{dtype.scale or 0})"
    raise PermanentLoadError(f"source column {column} has type {dtype}, which no warehouse column type is declared for")


# What INFORMATION_SCHEMA.COLUMNS.DATA_TYPE says for each declared type.
_FAMILY = {"VARCHAR": {"TEXT", "VARCHAR"}, "NUMBER": {"NUMBER", "DECIMAL", "INTEGER", "BIGINT"},
           "FLOAT": {"FLOAT", "DOUBLE", "REAL"}, "BOOLEAN": {"BOOLEAN"}, "DATE": {"DATE"},
           "TIMESTAMP_TZ": {"TIMESTAMP_TZ", "TIMESTAMP_LTZ", "TIMESTAMP WITH TIME ZONE"},
           "TIMESTAMP_NTZ": {"TIMESTAMP_NTZ", "TIMESTAMP"}}


def _same_type(declared: str, reported: str) -> bool:
    return reported.upper() in _FAMILY.get(declared.split("(")[0], {declared})


def table_columns(cur, table: str) -> dict[str, str]:
    """Column name -> DATA_TYPE of a table in the current schema; empty if it does not exist."""
    cur.execute(
        "SELECT COLUMN_NAME, DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_SCHEMA = CURRENT_SCHEMA() AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION",
        (table,),
    )
    return {name.upper(): dtype for name, dtype in cur.fetchall()}


@dataclass
class Drift:
    added: dict[str, str] = field(default_factory=dict)  # column -> declared type
    missing: list[str] = field(default_factory=list)
    changed: dict[str, str] = field(default_factory=dict)  # column -> "TEXT -> NUMBER(38,0)"

    def __bool__(self) -> bool:
        return bool(self.added or self.missing or self.changed)

    def describe(self) -> str:
        parts = [f"new column(s) {self.added}" if self.added else "",
                 f"column(s) gone from the source {self.missing}" if self.missing else "",
                 f"changed type(s) {self.changed}" if self.changed else ""]
        return "; ".join(p for p in parts if p)


def schema_drift(frame: pl.DataFrame, target: dict[str, str]) -> Drift:
    drift = Drift()
    for col, dtype in frame.schema.items():
        declared = snowflake_type(dtype, col)
        if col not in target:
            drift.added[col] = declared
        elif not _same_type(declared, target[col]):
            drift.changed[col] = f"{target[col]} -> {declared}"
    drift.missing = [c for c in target if c not in frame.columns and c not in META_COLUMNS]
    return drift


def ensure_tables(cur, load: Load, frame: pl.DataFrame, stage_area: str) -> Drift:
    """Create target and stage from the source's schema on the first load; afterwards apply the
    load's schema-drift policy: ``add`` adds new columns to both tables, ``reject`` refuses.
    Columns gone from the source and changed types are refused under either policy."""
    target = table_columns(cur, load.target_table)
    if not target:
        if frame.width == 0:
            return Drift()  # nothing to learn a schema from yet: the first non-empty week creates it
        cols = ", ".join(f"{q(c)} {snowflake_type(t, c)}" for c, t in frame.schema.items())
        meta = ", ".join(f"{q(c)} {t}" for c, t in META_COLUMNS.items())
        cur.execute(f"CREATE TABLE IF NOT EXISTS {q(load.target_table)} ({cols}, {meta})")
        target = table_columns(cur, load.target_table)
    stage = table_columns(cur, load.stage)
    if not stage:
        cols = ", ".join(f"{q(c)} {snowflake_type(t, c)}" for c, t in frame.schema.items()) if frame.width else ""
        cols = cols or ", ".join(f"{q(c)} {t}" for c, t in target.items() if c not in META_COLUMNS)
        cur.execute(f"CREATE TABLE IF NOT EXISTS {q(load.stage)} ({cols}, {q(WINDOW_COL)} DATE, {q(LOAD_ID_COL)} VARCHAR)")
    if frame.width == 0:
        return Drift()
    drift = schema_drift(frame, target)
    if drift.missing or drift.changed or (drift.added and load.schema_drift == "reject"):
        raise SchemaDriftError(
            f"schema drift in {load.source.container}/{load.source.path} vs {load.target_table}: {drift.describe()}. "
            f"Policy is '{load.schema_drift}': "
            + ("new columns are added, but removed or retyped columns need a person (migrate the table, then re-run)"
               if load.schema_drift == "add" else "set schema_drift: add in loads.yaml, or change the source, then re-run")
        )
    for col, declared in drift.added.items():
        for table in (load.target_table, load.stage):
            if col not in table_columns(cur, table):
                cur.execute(f"ALTER TABLE {q(table)} ADD COLUMN {q(col)} {declared}")
    return drift


# ----------------------------------------------------------------------------------- phases


def stage_window(cur, load: Load, stage_area: str, frame: pl.DataFrame, window_key: str, load_id: str) -> int:
    """Replace this load id's stage rows with the window's rows; returns the staged count."""
    if frame.height == 0 and not table_columns(cur, load.stage):
        return 0  # an empty week before any table exists
    cur.execute(f"DELETE FROM {q(load.stage)} WHERE {q(LOAD_ID_COL)} = %s", (load_id,))
    if frame.height == 0:
        return 0
    tagged = frame.with_columns(
        pl.lit(dt.date.fromisoformat(window_key)).alias(WINDOW_COL), pl.lit(load_id).alias(LOAD_ID_COL)
    )
    location = f"@{stage_ref(stage_area)}/{load.name}/{window_key}"  # load names and keys are validated
    # Same connection as the PUT: a local (fakesnow) stage lives only as long as its connection.
    cur.execute(f"CREATE STAGE IF NOT EXISTS {stage_ref(stage_area)}")
    with tempfile.TemporaryDirectory(prefix="pdp-stage-") as tmp:
        path = Path(tmp) / f"{load_id}.parquet"
        tagged.write_parquet(path)
        if "'" in str(path):
            raise PermanentLoadError(f"temporary path {path} holds a quote; set TMPDIR to a plain folder")
        cur.execute(f"PUT 'file://{path}' {location} OVERWRITE=TRUE AUTO_COMPRESS=FALSE")
    cur.execute(
        f"COPY INTO {q(load.stage)} FROM {location}/{load_id}.parquet FILE_FORMAT = (TYPE = PARQUET) "
        # FORCE: a retried step re-copies the same file name, which Snowflake's load history
        # would skip for 64 days; the DELETE above makes the copy safe to repeat.
        "MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE PURGE = TRUE FORCE = TRUE"
    )
    return count_stage(cur, load, load_id)


def count_stage(cur, load: Load, load_id: str) -> int:
    if not table_columns(cur, load.stage):
        return 0
    cur.execute(f"SELECT COUNT(*) FROM {q(load.stage)} WHERE {q(LOAD_ID_COL)} = %s", (load_id,))
    return int(cur.fetchone()[0])


def count_target(cur, load: Load, load_id: str) -> int:
    """Target rows written or confirmed by this load id."""
    if not table_columns(cur, load.target_table):
        return 0
    cur.execute(f"SELECT COUNT(*) FROM {q(load.target_table)} WHERE {q(LOAD_ID_COL)} = %s", (load_id,))
    return int(cur.fetchone()[0])


def target_rows_not_written(cur, load: Load, window_key: str, load_id: str) -> tuple[int, str]:
    """The window's target rows this load did not write (the source no longer has them): how many,
    and the query that lists them (their keys are records: the drive table never holds them)."""
    if not table_columns(cur, load.target_table):
        return 0, ""
    where = f"WHERE {q(WINDOW_COL)} = %s AND {q(LOAD_ID_COL)} <> %s"
    cur.execute(f"SELECT COUNT(*) FROM {q(load.target_table)} {where}", (dt.date.fromisoformat(window_key), load_id))
    listing = (f"SELECT * FROM {q(load.target_table)} WHERE {q(WINDOW_COL)} = '{window_key}' "
               f"AND {q(LOAD_ID_COL)} <> '{load_id}'")
    return int(cur.fetchone()[0]), listing


def merge_window(cur, load: Load, load_id: str) -> tuple[int, int]:
    """MERGE this load id's stage rows into the target on the merge keys: (inserted, updated).
    Every matched row is stamped with the load id, so re-running a window never duplicates."""
    target = table_columns(cur, load.target_table)
    if not target:
        return 0, 0
    stage = table_columns(cur, load.stage)
    data = [c for c in stage if c not in META_COLUMNS and c in target]
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in load.merge_keys)
    updates = [c for c in data if c not in load.merge_keys] + [WINDOW_COL, LOAD_ID_COL]
    inserts = data + [WINDOW_COL, LOAD_ID_COL]
    cur.execute(
        f"MERGE INTO {q(load.target_table)} t "
        f"USING (SELECT * FROM {q(load.stage)} WHERE {q(LOAD_ID_COL)} = %s) s ON {on} "
        f"WHEN MATCHED THEN UPDATE SET {', '.join(f'{q(c)} = s.{q(c)}' for c in updates)}, "
        f"{q(LOADED_AT_COL)} = CURRENT_TIMESTAMP() "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(q(c) for c in inserts)}, {q(LOADED_AT_COL)}) "
        f"VALUES ({', '.join(f's.{q(c)}' for c in inserts)}, CURRENT_TIMESTAMP())",
        (load_id,),
    )
    row = cur.fetchone() or (0, 0)
    return int(row[0] or 0), int(row[1] or 0)


def clean_stage(cur, load: Load, load_ids: list[str]) -> int:
    if not load_ids or not table_columns(cur, load.stage):
        return 0
    marks = ", ".join(["%s"] * len(load_ids))
    cur.execute(f"DELETE FROM {q(load.stage)} WHERE {q(LOAD_ID_COL)} IN ({marks})", tuple(load_ids))
    return int(cur.rowcount or 0)


def prune_target(cur, load: Load, window_key: str, load_id: str) -> int:
    """Remove the window's target rows this load did not write: rows the source no longer has."""
    if not table_columns(cur, load.target_table):
        return 0
    cur.execute(
        f"DELETE FROM {q(load.target_table)} WHERE {q(WINDOW_COL)} = %s AND {q(LOAD_ID_COL)} <> %s",
        (dt.date.fromisoformat(window_key), load_id),
    )
    return int(cur.rowcount or 0)


def audit_counts(source: int, stage: int, target: int, tolerance_percent: float) -> tuple[bool, float]:
    """(passed, the largest difference from the source count in percent)."""
    base = max(source, 1)
    diff = max(abs(source - stage), abs(source - target)) * 100.0 / base
    return diff <= tolerance_percent + 1e-9, round(diff, 4)
