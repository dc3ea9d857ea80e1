"""What the console's pages do, without Streamlit: storage access limited to the containers the
console needs, upload checks, deletion previews, logs and the daily health metrics.

Everything goes through the project's own modules (the storage resource chosen in
``pdp_assets.defs.resources``, ``lab_results.intake``/``lake``/``deletions``, ``health.store``), so
the console and the pipelines can never disagree about where or how data is stored.
"""

import datetime as dt
import functools
import os
import threading
import time
from typing import Optional

import polars as pl

from pdp_assets.lib.health import store as health_store
from pdp_assets.lib.health.normalise import DAILY_SCHEMA, SOURCES
from pdp_assets.lib.lab_results import actions, lake
from pdp_assets.lib.lab_results.deletions import parse_request
from pdp_assets.lib.lab_results.intake import safe_blob_name
from pdp_assets.lib.partitions import week_key, week_key_from_path
from pdp_assets.lib.resources.storage import BlobStorage
from pdp_assets.ops.admin.settings import max_upload_mb
from pdp_assets.ops.home import storage as home_storage

DAILY = "health_daily_metrics"

# The console reads these containers; writes uploads, deletion requests and its action records
# (logs); deletes a waiting upload or request an operator withdraws, and a quarantine file once
# its rows are re-ingested or discarded. The archive and the lake are never touched.
READABLE = {lake.LANDING, lake.QUARANTINE, lake.DELETION_REQUESTS, lake.DATA, lake.LOGS,
            health_store.CONTAINER}
ALLOWED = {method: READABLE for method in ("list_blobs", "info", "read", "exists", "location")} | {
    "write": {lake.LANDING, lake.DELETION_REQUESTS, lake.LOGS},
    "create": {lake.LANDING, lake.LOGS},
    "delete": {lake.LANDING, lake.DELETION_REQUESTS, lake.QUARANTINE, lake.LOGS},
}


class ScopedStorage:
    """The project's storage resource, limited to the containers above: a bug or a crafted name
    in the console cannot reach any other container. Duck-types BlobStorage for the lab modules."""

    def __init__(self, storage: BlobStorage):
        self._storage = storage

    def __getattr__(self, attr: str):
        if attr not in ALLOWED:
            raise AttributeError(attr)
        method = getattr(self._storage, attr)

        def guarded(container: str, *args, **kwargs):
            if container not in ALLOWED[attr]:
                raise PermissionError(f"the admin console does not {attr} in the {container!r} container")
            return method(container, *args, **kwargs)

        return guarded


# The variables pdp_assets.defs.resources reads to choose and configure the storage.
_STORAGE_ENV = ("PDP_HOME", "PDP_ENV", "PDP_STORAGE", "AZURE_STORAGE_CONNECTION_STRING",
                "AZURE_STORAGE_ACCOUNT_URL")


class SignInThrottle:
    """Failed sign-ins, counted for every session of the console at once (a new session does not
    start afresh): after FREE failures in a row, the next attempt waits FIRST_WAIT seconds from the
    last failure, and each further one twice as long as the one before, up to MAX_WAIT."""

    FREE, FIRST_WAIT, MAX_WAIT = 3, 5.0, 60.0

    def __init__(self, clock=time.monotonic):
        self._clock, self._lock = clock, threading.Lock()
        self._failures, self._last = 0, 0.0

    def wait(self) -> float:
        """Seconds before the next attempt is heard (0: now)."""
        with self._lock:
            if self._failures < self.FREE:
                return 0.0
            delay = min(self.FIRST_WAIT * 2.0 ** (self._failures - self.FREE), self.MAX_WAIT)
            return max(0.0, self._last + delay - self._clock())

    def failed(self) -> None:
        with self._lock:
            self._failures, self._last = self._failures + 1, self._clock()

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0


def operator(signed_in_as: Optional[str]) -> str:
    """Who acts in the console: the name given at sign-in, else the user running it."""
    return signed_in_as or f"{actions.os_user()} (console, no sign-in)"


def storage() -> ScopedStorage:
    """The storage the assets use (local folders under $PDP_HOME, or Azure), scoped."""
    return _storage(tuple(os.environ.get(k) for k in _STORAGE_ENV))


@functools.lru_cache(maxsize=4)
def _storage(config: tuple) -> ScopedStorage:
    # Once per configuration, not on every page run.
    return ScopedStorage(home_storage())


# --- uploads ------------------------------------------------------------------------------------


def upload_problem(name: str, size: int, limit_mb: Optional[int] = None) -> Optional[str]:
    """Why an uploaded file is refused, in words for the person who sent it; None if it is fine."""
    limit_mb = max_upload_mb() if limit_mb is None else limit_mb
    if not name or "/" in name or "\\" in name or "\x00" in name or name in (".", ".."):
        return (f"{name!r}: a file name may not contain a path separator (/ or \\); "
                "rename the file and try again")
    if not name.lower().endswith(".csv"):
        return f"{name}: only .csv files are accepted"
    if size == 0:
        return f"{name}: the file is empty"
    if size > limit_mb * 1024 * 1024:
        return (f"{name}: {size / 1024 / 1024:.1f} MB is more than the {limit_mb} MB limit "
                "(PDP_ADMIN_MAX_UPLOAD_MB); split the file and upload the parts")
    return None


def upload(store: ScopedStorage, name: str, data: bytes, by: str) -> str:
    """Put a checked CSV into the landing zone under the same safe name `pdp upload` uses."""
    problem = upload_problem(name, len(data))
    if problem:
        raise ValueError(problem)
    blob = safe_blob_name(name)
    store.write(lake.LANDING, blob, data)
    actions.record(store, actions.UPLOAD, blob, by, details=f"{name}, {len(data)} bytes")
    return blob


def pending(store: ScopedStorage, container: str) -> list:
    """CSV files waiting in a drop container (what the lab sensors would pick up)."""
    return [b for b in store.list_blobs(container) if "/" not in b.name and b.name.lower().endswith(".csv")]


def waiting_table(store: ScopedStorage, container: str) -> pl.DataFrame:
    """The files waiting in a drop container, newest first, with who sent them."""
    files = sorted(pending(store, container), key=lambda b: b.last_modified, reverse=True)
    return pl.DataFrame({
        "file": [b.name for b in files],
        "bytes": [b.size for b in files],
        "arrived": [b.last_modified.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") for b in files],
        "by": [actions.filed_by(store, actions.FILED[container], b.name) for b in files],
    }, schema={"file": pl.String, "bytes": pl.Int64, "arrived": pl.String, "by": pl.String})


# --- deletion requests --------------------------------------------------------------------------


def pairs_csv(frame: pl.DataFrame) -> bytes:
    """Typed (sample_id, test_date) pairs as a request file; blank rows of the editor dropped."""
    frame = frame.select(pl.col("sample_id", "test_date").cast(pl.String))
    blank = pl.all_horizontal(pl.col("sample_id", "test_date").fill_null("").str.strip_chars() == "")
    return lake.to_csv(frame.filter(~blank))


def deletion_preview(store: ScopedStorage, data: bytes) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(requested pairs, matching lake records, matching quarantined rows) for a request.

    Raises MalformedRequest exactly as filing it with `pdp delete-request` would. The deletion
    itself also removes the raw archived copies; they are the same records, not listed again."""
    pairs = parse_request(data)
    weeks = sorted({week_key(d) for d in pairs["test_date"]})
    stored = pl.concat([lake.read_lake_week(store, w) for w in weeks])  # parse_request: at least one pair
    in_lake = stored.join(pairs, on=["sample_id", "test_date"], how="semi").sort("test_date", "sample_id")
    wanted = pairs.with_columns(pl.col("test_date").cast(pl.String))
    quarantined = []
    for blob in store.list_blobs(lake.QUARANTINE):
        frame = lake.restore_formulas(pl.read_csv(store.read(lake.QUARANTINE, blob.name), infer_schema=False))
        if {"sample_id", "test_date"} <= set(frame.columns):  # rows are kept as typed: compare stripped
            keys = frame.with_columns(pl.col("sample_id", "test_date").str.strip_chars())
            hit = keys.join(wanted, on=["sample_id", "test_date"], how="semi")
            quarantined.append(hit.select("sample_id", "test_date", quarantine_file=pl.lit(blob.name)))
    schema = {"sample_id": pl.String, "test_date": pl.String, "quarantine_file": pl.String}
    return pairs, in_lake, pl.concat(quarantined) if quarantined else pl.DataFrame(schema=schema)


def unmatched_pairs(pairs: pl.DataFrame, in_lake: pl.DataFrame, quarantined: pl.DataFrame) -> pl.DataFrame:
    """The requested pairs matched by no lake record and no quarantined row: by the whole pair,
    since a sample_id found under another test_date is not the record asked for."""
    as_text = pl.col("test_date").cast(pl.String)
    found = pl.concat([in_lake.select("sample_id", as_text), quarantined.select("sample_id", as_text)])
    return pairs.with_columns(as_text).join(found, on=["sample_id", "test_date"], how="anti")


def file_deletion_request(store: ScopedStorage, data: bytes, by: str, name: str = "deletion_request.csv") -> str:
    """File a request (checked first, as `pdp delete-request` does); the deletion sensor runs it."""
    pairs = parse_request(data)  # raises MalformedRequest: nothing is filed
    blob = safe_blob_name(name)
    store.write(lake.DELETION_REQUESTS, blob, data)
    actions.record(store, actions.FILE_REQUEST, blob, by, details=f"{pairs.height} record(s)")
    return blob



# --- logs ---------------------------------------------------------------------------------------

LOG_KINDS = {"execution": "uploads processed", "lake": "lake weeks rebuilt", "deletion": "deletion requests",
             "action": "what operators did, who and why"}


def recent_logs(store: ScopedStorage, kind: str, files: int = 20) -> pl.DataFrame:
    """The newest ``files`` logs of one kind (``logs/<kind>_*.csv``), as one table, newest first."""
    blobs = sorted(
        (b for b in store.list_blobs(lake.LOGS, f"{kind}_") if b.name.endswith(".csv")),
        key=lambda b: b.last_modified, reverse=True,
    )[:files]
    frames = [
        pl.read_csv(store.read(lake.LOGS, b.name), infer_schema=False).with_columns(log_file=pl.lit(b.name))
        for b in blobs
    ]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


# --- health dashboard ---------------------------------------------------------------------------


def health_weeks(store: ScopedStorage) -> list[str]:
    """Partition keys of the weeks health_daily_metrics has stored."""
    return sorted(
        week_key_from_path(b.name[len(DAILY) + 1:].rsplit("/", 1)[0])
        for b in store.list_blobs(health_store.CONTAINER, f"{DAILY}/")
        if b.name.endswith("/data.parquet")
    )


def daily_health(store: ScopedStorage, start: dt.date, end: dt.date) -> pl.DataFrame:
    """One row per calendar day from start to end: the stored daily metrics (None where a source
    had no data) and ``missing_sources`` naming what is missing, all three on days with no row."""
    weeks = [w for w in health_weeks(store) if week_key(start) <= w <= week_key(end)]
    stored = health_store.read_weeks(store, DAILY, weeks, DAILY_SCHEMA)
    days = pl.DataFrame({"date": pl.date_range(start, end, eager=True)})
    every_source = ",".join(SOURCES.values())
    return days.join(stored, on="date", how="left").with_columns(
        pl.col(list(SOURCES)).fill_null(False),
        pl.col("missing_sources").fill_null(every_source),
    )
