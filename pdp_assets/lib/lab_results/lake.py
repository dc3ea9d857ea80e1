"""Where lab results are stored, and the operations on the lake: rebuild a week, export, delete.

Layout (containers keep the seed's names, plus ``archive``):
- ``landing-zone/<name>.csv``                      partner uploads, removed once processed
- ``archive/raw/<upload_id>/<name>``               every upload's bytes as received (+ ``.json`` facts)
- ``archive/valid/year=YYYY/week=WW/<landed>__<upload_id>.parquet``  its valid rows, by ISO week
- ``archive/deletions/<request_id>.parquet``       the erasure list: pairs a deletion request named
- ``quarantine/<stem>__<upload_id>.csv``           its invalid rows, as uploaded, with reasons
- ``data/year=YYYY/week=WW/data.parquet``          the lake: one row per sample_id
- ``data/final_cdc_export.csv``                    every lake record, newest test first
- ``logs/execution_*.csv``, ``logs/lake_*.csv``, ``logs/deletion_*.csv``

A lake week is a pure function of its archived valid rows and the erasure list: the rows of
every upload, oldest upload first, the later upload winning per sample_id, less every erased
(sample_id, test_date). So a week can always be rebuilt (after a crash, a rule change or a
deletion), rebuilding twice gives the same file, and no rebuild brings an erased record back.
"""

import datetime as dt
import hashlib
import io
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Sequence

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pdp_assets.lib.partitions import week_key as week_key_of, week_key_from_path, week_path
from pdp_assets.lib.resources.storage import BlobInfo, BlobStorage

LANDING = "landing-zone"
QUARANTINE = "quarantine"
DATA = "data"
LOGS = "logs"
DELETION_REQUESTS = "deletion-requests"
ARCHIVE = "archive"

EXPORT_BLOB = "final_cdc_export.csv"
# One row of the lake, as stored (the Pandera model LabResult states its rules).
LAKE_SCHEMA = {"sample_id": pl.String, "test_date": pl.Date, "result": pl.String, "viral_load": pl.Int64}
LAKE_COLUMNS = list(LAKE_SCHEMA)


def upload_id(name: str, etag: str) -> str:
    """A stable id for one version of one landing blob."""
    return hashlib.sha256(f"{name}\n{etag}".encode()).hexdigest()[:16]


NAME_BYTES = 255  # the longest file name a local disk takes


def fitted(stem: str, suffix: str) -> str:
    """``stem + suffix`` as a stored name: when over NAME_BYTES, the stem is cut and told apart by
    a hash of the whole of it (names that fit are unchanged)."""
    if len((stem + suffix).encode()) <= NAME_BYTES:
        return stem + suffix
    digest = hashlib.sha256(stem.encode()).hexdigest()[:12]
    cut = stem.encode()[: NAME_BYTES - len(suffix.encode()) - len(digest) - 1].decode(errors="ignore")
    return f"{cut}~{digest}{suffix}"


def raw_blob(uid: str, name: str) -> str:
    path = PurePosixPath(name)
    return f"raw/{uid}/{fitted(path.stem, path.suffix)}"


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
    return fitted(PurePosixPath(name).stem, f"__{uid}.csv")


def lake_blob(week_key: str) -> str:
    return f"{week_path(week_key)}/data.parquet"


ERASURES = "deletions/"
ERASED = {"sample_id": pl.String, "test_date": pl.Date}  # one erased record


def erasure_blob(request_id: str) -> str:
    return f"{ERASURES}{request_id}.parquet"


def erased_pairs(storage: BlobStorage) -> pl.DataFrame:
    """Every (sample_id, test_date) a deletion request has erased: what no write may bring back."""
    frames = [pl.read_parquet(storage.read(ARCHIVE, b.name)) for b in storage.list_blobs(ARCHIVE, ERASURES)
              if b.name.endswith(".parquet")]
    return pl.concat(frames).unique() if frames else pl.DataFrame(schema=ERASED)


def is_erased(frame: pl.DataFrame, erased: pl.DataFrame) -> pl.Series:
    """Row mask of ``frame`` (sample_id, test_date typed as in the lake) rows that are erased."""
    if not erased.height:
        return pl.Series([False] * frame.height, dtype=pl.Boolean)
    return frame.select("sample_id", "test_date").join(
        erased.with_columns(hit=pl.lit(True)), on=["sample_id", "test_date"], how="left", maintain_order="left"
    )["hit"].fill_null(False)


# Key and value in the footer of a slice written by staging: the file is a lake week as it is.
_STAGED = ("pdp_assets.staged", "one row per sample_id, sorted by sample_id")


def to_parquet(frame: pl.DataFrame, staged: bool = False) -> bytes:
    buf = io.BytesIO()
    # zstd level 1, not Polars' default 3: faster to encode the many small weekly slices, for
    # files of the same size.
    frame.write_parquet(
        buf, compression="zstd", compression_level=1, statistics=True, metadata=dict([_STAGED]) if staged else None
    )
    return buf.getvalue()


def to_csv(frame: pl.DataFrame) -> bytes:
    return frame.write_csv().encode()


def read_json(storage: BlobStorage, container: str, name: str):
    return json.loads(storage.read(container, name)) if storage.exists(container, name) else None


def write_json(storage: BlobStorage, container: str, name: str, value) -> None:
    storage.write(container, name, json.dumps(value, indent=2, default=str).encode())


def _stored_bytes(storage: BlobStorage, week_key: str) -> bytes | None:
    """The lake file of a week, or None when the lake has no file for it."""
    try:
        return storage.read(DATA, lake_blob(week_key))
    except FileNotFoundError:
        return None


def _frame(data: bytes | None) -> pl.DataFrame:
    return pl.DataFrame(schema=LAKE_SCHEMA) if data is None else pl.read_parquet(data)


def read_lake_week(storage: BlobStorage, week_key: str) -> pl.DataFrame:
    return _frame(_stored_bytes(storage, week_key))


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

    @property
    def touched(self) -> bool:
        return bool(self.inserted or self.updated or self.removed)


def per_week(fn, weeks, threads: int = 4):
    """Apply fn to each week, on ``threads`` threads: weeks touch disjoint blobs, and Parquet
    encoding and network I/O release the GIL, so this overlaps waits with work."""
    if threads == 1:
        return list(map(fn, weeks))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(fn, weeks))


def staged_weeks(valid: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """One upload's valid rows as staged, by week key: one row per sample_id (its last), sorted by
    sample_id, so a week with a single upload is already its own lake partition.

    One sort for the whole upload, not one per week (free when validate_upload sorted it):
    repeats of an id are then neighbours, and the last of each is the row before a new id."""
    rows = valid.sort("sample_id", maintain_order=True)
    last = rows.filter(pl.col("sample_id").ne_missing(pl.col("sample_id").shift(-1)))
    by_week = last.select(LAKE_COLUMNS).with_columns(week=pl.col("test_date").dt.truncate("1w"))
    parts = by_week.partition_by("week", as_dict=True, include_key=False, maintain_order=True)
    return {week_key_of(monday): frame for (monday,), frame in parts.items()}


def _footer(data: bytes) -> pq.FileMetaData:
    return pq.read_metadata(pa.BufferReader(data))


def parquet_rows(data: bytes) -> int:
    """Rows in a Parquet file, from its footer alone."""
    return _footer(data).num_rows


def build_week(slices: list[bytes], erased: pl.DataFrame | None = None) -> bytes | None:
    """The lake file of a week from its slices (Parquet, oldest first): last row per sample_id
    wins, erased records left out. None when the week has no rows."""
    if not slices:
        return None
    erased = erased if erased is not None and erased.height else None
    if len(slices) == 1 and erased is None:
        footer = _footer(slices[0])
        if (footer.metadata or {}).get(_STAGED[0].encode()) == _STAGED[1].encode():
            return slices[0] if footer.num_rows else None  # already the answer: no decoding at all
    rows = (
        pl.concat([pl.read_parquet(s).select(LAKE_COLUMNS) for s in slices])
        .unique(subset="sample_id", keep="last", maintain_order=True)
        .sort("sample_id")
    )
    if erased is not None:
        rows = rows.filter(~is_erased(rows, erased))
    return to_parquet(rows) if rows.height else None


def rebuild_weeks(storage: BlobStorage, weeks: Sequence[str]) -> list[WeekChange]:
    """Rewrite lake partitions from the archive: each atomically, all durable as one batch, and
    no write for a week whose rows did not change. What changed, week by week.

    Two rebuilds of a week may overlap (a sensor's lake run and a backfill launched from the UI):
    each checks after its writes that the week's slices are still the ones it read, and rebuilds
    again the weeks where not, so the last write always holds every slice, none lost to a stale one."""

    def each(fn, weeks):  # the blob calls are most of the work: as many at once as the store likes
        return per_week(fn, weeks, threads=storage.parallel_requests)

    def slices(wk: str) -> list[BlobInfo]:
        return storage.list_blobs(ARCHIVE, slice_prefix(wk))

    erased = erased_pairs(storage)
    erased = erased.with_columns(week=pl.col("test_date").dt.truncate("1w")).partition_by(
        "week", as_dict=True, include_key=False)
    erased_in = {week_key_of(monday): pairs for (monday,), pairs in erased.items()}

    old = dict(zip(weeks, each(lambda wk: _stored_bytes(storage, wk), weeks)))
    current, changes, todo = dict(old), {}, list(weeks)
    while todo:
        listed = dict(zip(todo, each(slices, todo)))
        read = dict(zip(todo, each(lambda wk: [storage.read(ARCHIVE, b.name) for b in listed[wk]], todo)))
        new = dict(zip(todo, per_week(lambda wk: build_week(read[wk], erased_in.get(wk)), todo)))  # decoding, encoding: no GIL
        changes.update({wk: _change(wk, new[wk], old[wk], len(listed[wk])) for wk in todo})
        # Written unless the file is the same, or (against the file first read) the rows are.
        changed = [wk for wk in todo if new[wk] != current[wk] and (current[wk] is not old[wk] or changes[wk].touched)]
        storage.write_many(DATA, {lake_blob(wk): new[wk] for wk in changed if new[wk] is not None})
        for wk in changed:
            if new[wk] is None:
                storage.delete(DATA, lake_blob(wk))
        # Weeks whose slices moved on (another upload, a deletion): build again, against what is there now.
        todo = [wk for wk, now in zip(todo, each(slices, todo)) if now != listed[wk]]
        current.update({wk: _stored_bytes(storage, wk) for wk in todo})
    return [changes[wk] for wk in weeks]


def _change(week_key: str, new: bytes | None, old: bytes | None, uploads: int) -> WeekChange:
    """What a rebuild did to the week: its file ``new`` against ``old``, the file before (None: none)."""
    rows = parquet_rows(new) if new is not None else 0
    inserted = updated = removed = 0
    if old is None:
        inserted = rows  # a new week: nothing to compare with, nothing to decode
    elif new != old:
        joined = _frame(new).join(_frame(old), on="sample_id", how="full", suffix="_old", coalesce=False)
        inserted = joined.filter(pl.col("sample_id_old").is_null()).height
        removed = joined.filter(pl.col("sample_id").is_null()).height
        both = joined.filter(pl.col("sample_id").is_not_null() & pl.col("sample_id_old").is_not_null())
        updated = both.filter(
            pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}_old")) for c in LAKE_COLUMNS[1:])
        ).height
    return WeekChange(week_key, rows, inserted, updated, removed, uploads)


def read_lake(storage: BlobStorage) -> pl.DataFrame:
    frames = [read_lake_week(storage, w) for w in lake_weeks(storage)]
    return pl.concat(frames) if frames else pl.DataFrame(schema=LAKE_SCHEMA)


# A cell a spreadsheet would run as a formula (CSV injection) starts with one of these. One that
# does, or has quotes before one, gets one more quote, so restore_formulas undoes it exactly.
FORMULA_START = r"[=+\-@\t\r]"
_FORMULA = r"^'*" + FORMULA_START


def runs_as_formula(column: str) -> pl.Expr:
    """True where a spreadsheet would run the cell as a formula."""
    return pl.col(column).fill_null("").str.contains("^" + FORMULA_START)


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix a quote to text cells a spreadsheet would run as a formula (CSV injection)."""
    text = [c for c, t in frame.schema.items() if t == pl.String]
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(_FORMULA)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c in text
    )


def restore_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """The cells as they were before neutralise_formulas: what a person typed, to fix or compare."""
    text = [c for c, t in frame.schema.items() if t == pl.String]
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(r"^''*" + FORMULA_START)).then(pl.col(c).str.slice(1)).otherwise(pl.col(c)).alias(c)
        for c in text
    )


def write_export(storage: BlobStorage) -> int:
    """``data/final_cdc_export.csv``: every lake record, newest test first."""
    lake = read_lake(storage).sort(["test_date", "sample_id"], descending=[True, False])
    storage.write(DATA, EXPORT_BLOB, to_csv(neutralise_formulas(lake)))
    return lake.height
