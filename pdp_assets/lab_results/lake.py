"""Where lab results are stored, and the operations on the lake: rebuild a week, export, delete.

Layout (containers keep the seed's names, plus ``archive``):
- ``landing-zone/<name>.csv``                      partner uploads, removed once processed
- ``archive/raw/<upload_id>/<name>``               every upload's bytes as received (+ ``.json`` facts)
- ``archive/valid/year=YYYY/week=WW/<landed>__<upload_id>.parquet``  its valid rows, by ISO week
- ``quarantine/<stem>__<upload_id>.csv``           its invalid rows, as uploaded, with reasons
- ``data/year=YYYY/week=WW/data.parquet``          the lake: one row per sample_id
- ``data/final_cdc_export.csv``                    every lake record, newest test first
- ``logs/execution_*.csv``, ``logs/lake_*.csv``, ``logs/deletion_*.csv``

A lake week is a pure function of its archived valid rows: the rows of every upload, oldest
upload first, the later upload winning per sample_id. So a week can always be rebuilt (after a
crash, a rule change or a deletion) and rebuilding twice gives the same file.
"""

import datetime as dt
import hashlib
import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath

import polars as pl

from pdp_assets.lab_results.schemas import LAKE_SCHEMA
from pdp_assets.partitions import week_key_from_path, week_path
from pdp_assets.resources.storage import BlobStorage

LANDING = "landing-zone"
QUARANTINE = "quarantine"
DATA = "data"
LOGS = "logs"
DELETION_REQUESTS = "deletion-requests"
ARCHIVE = "archive"

EXPORT_BLOB = "final_cdc_export.csv"
LAKE_COLUMNS = list(LAKE_SCHEMA)


def upload_id(name: str, etag: str) -> str:
    """A stable id for one version of one landing blob."""
    return hashlib.sha256(f"{name}\n{etag}".encode()).hexdigest()[:16]


def raw_blob(uid: str, name: str) -> str:
    return f"raw/{uid}/{PurePosixPath(name).name}"


def raw_facts_blob(uid: str) -> str:
    return f"raw/{uid}.json"


def content_index_blob(sha256: str) -> str:
    return f"by-content/{sha256}.json"


def slice_prefix(week_key: str) -> str:
    return f"valid/{week_path(week_key)}/"


def slice_blob(week_key: str, landed_at: dt.datetime, uid: str) -> str:
    # Names sort in arrival order, so "later upload wins" is "last file wins".
    return f"{slice_prefix(week_key)}{landed_at.strftime('%Y%m%dT%H%M%S%fZ')}__{uid}.parquet"


def quarantine_blob(name: str, uid: str) -> str:
    return f"{PurePosixPath(name).stem}__{uid}.csv"


def lake_blob(week_key: str) -> str:
    return f"{week_path(week_key)}/data.parquet"


def to_parquet(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="zstd", statistics=True)
    return buf.getvalue()


def to_csv(frame: pl.DataFrame) -> bytes:
    return frame.write_csv().encode()


def read_json(storage: BlobStorage, container: str, name: str):
    return json.loads(storage.read(container, name)) if storage.exists(container, name) else None


def write_json(storage: BlobStorage, container: str, name: str, value) -> None:
    storage.write(container, name, json.dumps(value, indent=2, default=str).encode())


def stored_week(storage: BlobStorage, week_key: str) -> pl.DataFrame | None:
    """The lake file of a week, or None when the lake has no file for it."""
    name = lake_blob(week_key)
    return pl.read_parquet(storage.read(DATA, name)) if storage.exists(DATA, name) else None


def read_lake_week(storage: BlobStorage, week_key: str) -> pl.DataFrame:
    stored = stored_week(storage, week_key)
    return pl.DataFrame(schema=LAKE_SCHEMA) if stored is None else stored


def lake_weeks(storage: BlobStorage) -> list[str]:
    """Partition keys of the weeks the lake holds."""
    return sorted(
        week_key_from_path(b.name.rsplit("/", 1)[0])
        for b in storage.list_blobs(DATA, "year=")
        if b.name.endswith("/data.parquet")
    )


@dataclass
class WeekChange:
    week: str
    rows: int
    inserted: int
    updated: int
    removed: int
    uploads: int


def per_week(fn, weeks):
    """Apply fn to each week on a few threads: weeks touch disjoint blobs, and Parquet encoding
    and blob I/O release the GIL, so this overlaps I/O waits with work."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(fn, weeks))


def staged_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """One upload's valid rows of one week as staged: one row per sample_id (its last), sorted,
    so a week with a single upload is already its own lake partition."""
    return rows.select(LAKE_COLUMNS).unique(subset="sample_id", keep="last", maintain_order=True).sort("sample_id")


def _strictly_increasing(ids: pl.Series) -> bool:
    return ids.null_count() == 0 and bool((ids.slice(1) > ids.slice(0, len(ids) - 1)).all())


def build_week(slices: list[pl.DataFrame]) -> pl.DataFrame:
    """The lake rows of a week from its slices, oldest first: last row per sample_id wins."""
    if not slices:
        return pl.DataFrame(schema=LAKE_SCHEMA)
    if len(slices) == 1 and _strictly_increasing(slices[0]["sample_id"]):
        return slices[0].select(LAKE_COLUMNS)  # staged by staged_rows: already the answer
    return (
        pl.concat([s.select(LAKE_COLUMNS) for s in slices])
        .unique(subset="sample_id", keep="last", maintain_order=True)
        .sort("sample_id")
    )


def rebuild_week(storage: BlobStorage, week_key: str) -> WeekChange:
    """Rewrite one lake partition from the archive; atomic, and a no-op when nothing changed.

    Two rebuilds of a week may overlap (a sensor's lake run and a backfill launched from the UI):
    each checks after its write that the week's slices are still the ones it read, and rebuilds
    again if not, so the last write always holds every slice and none is lost to a stale one."""
    old = current = stored_week(storage, week_key)
    while True:
        listed = storage.list_blobs(ARCHIVE, slice_prefix(week_key))
        new = build_week([pl.read_parquet(storage.read(ARCHIVE, b.name)) for b in listed])
        if not (new.equals(current) if current is not None else new.height == 0):
            if new.height:
                storage.write(DATA, lake_blob(week_key), to_parquet(new))
            else:
                storage.delete(DATA, lake_blob(week_key))
        if storage.list_blobs(ARCHIVE, slice_prefix(week_key)) == listed:
            return _change(week_key, new, old, len(listed))
        # The slices moved on (another upload, a deletion): build again, against what is there now.
        current = stored_week(storage, week_key)


def _change(week_key: str, new: pl.DataFrame, old: pl.DataFrame | None, uploads: int) -> WeekChange:
    """What a rebuild did to the week: ``new`` against ``old``, the week before it (None: none)."""
    inserted = updated = removed = 0
    if old is None:
        inserted = new.height  # a new week: nothing to compare with
    elif not new.equals(old):
        joined = new.join(old, on="sample_id", how="full", suffix="_old", coalesce=False)
        inserted = joined.filter(pl.col("sample_id_old").is_null()).height
        removed = joined.filter(pl.col("sample_id").is_null()).height
        both = joined.filter(pl.col("sample_id").is_not_null() & pl.col("sample_id_old").is_not_null())
        updated = both.filter(
            pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}_old")) for c in LAKE_COLUMNS[1:])
        ).height
    return WeekChange(week_key, new.height, inserted, updated, removed, uploads)


def read_lake(storage: BlobStorage) -> pl.DataFrame:
    frames = [read_lake_week(storage, w) for w in lake_weeks(storage)]
    return pl.concat(frames) if frames else pl.DataFrame(schema=LAKE_SCHEMA)


_FORMULA_START = ("=", "+", "-", "@")


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix a quote to text cells a spreadsheet would run as a formula (CSV injection)."""
    text = [c for c, t in frame.schema.items() if t == pl.String]
    return frame.with_columns(
        pl.when(pl.any_horizontal(pl.col(c).str.starts_with(p) for p in _FORMULA_START))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c in text
    )


def write_export(storage: BlobStorage) -> int:
    """``data/final_cdc_export.csv``: every lake record, newest test first."""
    lake = read_lake(storage).sort(["test_date", "sample_id"], descending=[True, False])
    storage.write(DATA, EXPORT_BLOB, to_csv(neutralise_formulas(lake)))
    return lake.height
