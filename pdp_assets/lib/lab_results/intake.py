"""Process one landing-zone upload: archive it, validate it, stage valid rows, quarantine the rest.

Order is what makes it safe: the raw bytes are archived first, every output is written
atomically under a name fixed by the upload, and the landing blob is removed last (and only if
nobody replaced it meanwhile). A run killed at any step is simply run again: it reads the
archive, rewrites the same files, and loses or doubles nothing.
"""

import csv
import datetime as dt
import hashlib
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import polars as pl

from pdp_assets.lib.lab_results import actions, lake
from pdp_assets.lib.quarantine import ERROR, ROW, SOURCE, SURPLUS
from pdp_assets.lib.resources.storage import BlobStorage

if TYPE_CHECKING:  # validation loads Pandera (and through it PySpark): only when an upload is ingested
    from pdp_assets.lib.lab_results.validation import ValidationResult


def partition_key(name: str, etag: str) -> str:
    """The dynamic partition of one version of one landing blob: readable, and unique."""
    return f"{name}@{lake.upload_id(name, etag)}"


def split_partition_key(key: str) -> tuple[str, str]:
    name, _, uid = key.rpartition("@")
    if not name or len(uid) != 16:
        raise ValueError(f"{key!r} is not an upload partition key (<landing blob name>@<16-hex id>)")
    return name, uid


@dataclass
class IntakeReport:
    upload: str
    source_file: str
    sha256: str
    landed_at: str
    rows_read: int = 0
    rows_valid: int = 0
    rows_quarantined: int = 0
    weeks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duplicate_of: Optional[str] = None
    quarantine_blob: Optional[str] = None
    landing_removed: bool = False
    validation: Optional["ValidationResult"] = field(default=None, repr=False)  # None for a duplicate


class UploadNotFound(Exception):
    pass


class Withdrawn(Exception):
    """An operator removed the upload before any run took it."""


def _read(storage: BlobStorage, name: str, uid: str) -> tuple[bytes, dict, bool]:
    """The upload's bytes and facts, from the archive when it was archived already (a re-run),
    else from the landing zone: then the facts lack ``sha256`` (hashed by the caller) and the flag
    says it still has to be archived."""
    facts = lake.read_json(storage, lake.ARCHIVE, lake.raw_facts_blob(uid))
    if facts is not None:
        return storage.read(lake.ARCHIVE, lake.raw_blob(uid, name)), facts, False
    landing = storage.info(lake.LANDING, name)
    if landing is None:
        withdrawn = actions.withdrawal(storage, lake.LANDING, uid)
        if withdrawn:
            raise Withdrawn(withdrawn)
        raise UploadNotFound(
            f"{name!r} is neither in the landing zone ({storage.location(lake.LANDING, name)}) nor in"
            f" the archive as upload {uid}: nothing to process"
        )
    data = storage.read(lake.LANDING, name)
    facts = {
        "upload_id": uid,
        "source_file": name,
        "etag": landing.etag,
        "landed_at": landing.last_modified.astimezone(dt.timezone.utc).isoformat(),
        "bytes": len(data),
    }
    return data, facts, True


def ingest_upload(storage: BlobStorage, key: str, today: dt.date) -> IntakeReport:
    from pdp_assets.lib.lab_results.validation import validate_upload

    name, uid = split_partition_key(key)
    try:
        data, facts, new = _read(storage, name, uid)
        withdrawn = new and actions.take_for_run(storage, lake.LANDING, name, facts["etag"])
    except Withdrawn as e:
        data, facts, withdrawn = b"", {"landed_at": e.args[0]["at"]}, e.args[0]
    if withdrawn:  # nothing of it is stored: the run only says so
        report = IntakeReport(upload=key, source_file=name, sha256=hashlib.sha256(data).hexdigest(),
                              landed_at=facts["landed_at"], landing_removed=True,
                              notes=[f"{actions.describe_withdrawal(withdrawn)}: nothing to do"])
        _write_execution_log(storage, report)
        return report
    # Validation needs only the bytes in memory, so it runs while they are hashed and archived;
    # nothing derived from them is written until the archive is durable. A duplicate (rare) wastes
    # it: the hash says so only once validation has started.
    with ThreadPoolExecutor(max_workers=1) as pool:
        validating = pool.submit(validate_upload, data, name, today)
        if new:
            facts["sha256"] = hashlib.sha256(data).hexdigest()
        report = IntakeReport(upload=key, source_file=name, sha256=facts["sha256"], landed_at=facts["landed_at"])

        index_blob = lake.content_index_blob(facts["sha256"])
        first = lake.read_json(storage, lake.ARCHIVE, index_blob)
        if new and first is not None and first["upload"] != key and not is_reingest(name):
            # The same bytes under another name, or uploaded again: nothing changes. Not for a
            # re-ingest: a person sent those rows back (perhaps unchanged, after a rule change), and
            # skipping them would lose rows whose quarantine file the re-ingest just removed.
            report.duplicate_of = first["upload"]
            report.notes.append(f"same content as upload {first['upload']}: nothing to do")
        else:
            result, erasures = validating.result(), erasure_ids(storage)
            data, erased = without_erased(data, result, lake.erased_pairs(storage))
            if erased:  # what is archived, staged and quarantined never holds an erased record
                result = validate_upload(data, name, today)
                report.notes.append(f"{erased} row(s) of records erased by a deletion request left out")
            if new or erased:
                storage.write(lake.ARCHIVE, lake.raw_blob(uid, name), data)
            if new:
                lake.write_json(storage, lake.ARCHIVE, lake.raw_facts_blob(uid), facts)
            if first is None:
                lake.write_json(storage, lake.ARCHIVE, index_blob, {"upload": key})
            _stage(storage, result, {**facts, "erasures": erasures}, report)

    _write_execution_log(storage, report)
    # Last: the landing blob goes only once every output above is durably written, and only
    # if it still holds the version we read.
    report.landing_removed = storage.delete(lake.LANDING, name, etag=facts["etag"])
    return report


def erasure_ids(storage: BlobStorage) -> list[str]:
    """The deletion requests recorded so far: an intake that read the erasure list after them has
    applied them."""
    return sorted(b.name.removeprefix(lake.ERASURES).removesuffix(".parquet")
                  for b in storage.list_blobs(lake.ARCHIVE, lake.ERASURES) if b.name.endswith(".parquet"))


def without_erased(data: bytes, result: "ValidationResult", erased: pl.DataFrame) -> tuple[bytes, int]:
    """The upload's bytes less its rows of erased records (read as validation read them), and how
    many went. Parsed again only when the validated rows show it holds one."""
    from pdp_assets.lib.lab_results.validation import record_keys, without_records

    keys = record_keys(result.quarantine)
    held = lake.is_erased(result.valid, erased).any() or (keys is not None and lake.is_erased(keys, erased).any())
    return without_records(data, erased) if held else (data, 0)


def _stage(storage: BlobStorage, result: "ValidationResult", facts: dict, report: IntakeReport) -> None:
    uid, name = facts["upload_id"], facts["source_file"]
    report.rows_read, report.rows_valid = result.rows_read, result.rows_valid
    report.rows_quarantined, report.notes, report.validation = result.rows_quarantined, result.notes, result

    landed_at = dt.datetime.fromisoformat(facts["landed_at"])
    weeks = lake.staged_weeks(result.valid)
    encoded = lake.per_week(lambda wk: lake.to_parquet(weeks[wk], staged=True), weeks)
    storage.write_many(lake.ARCHIVE, {lake.slice_blob(wk, landed_at, uid): data for wk, data in zip(weeks, encoded)})
    written = set(weeks)
    # A re-run under changed rules may stage fewer weeks: drop this upload's stale slices.
    for wk in set(facts.get("weeks", [])) - written:
        storage.delete(lake.ARCHIVE, lake.slice_blob(wk, landed_at, uid))
    report.weeks = sorted(written | set(facts.get("weeks", [])))

    qname = lake.quarantine_blob(name, uid)
    # A quarantine file a person has resolved (fixed and re-ingested) stays resolved when the
    # upload is run again: its rows came back as an upload of their own.
    resolved = "weeks" in facts and not storage.exists(lake.QUARANTINE, qname)
    # A file no row could be read from (a binary file) is listed too, as one line saying why: a
    # person sees it and discards it; its bytes stay in the archive.
    held = result.quarantine if not result.rejected else pl.DataFrame(
        {ERROR: result.notes[:1], SOURCE: [name], ROW: [None]}, schema={ERROR: pl.String, SOURCE: pl.String, ROW: pl.Int64})
    if held.height and resolved:
        report.notes.append(f"quarantine {qname} was resolved before: not written again")
    elif held.height:
        # Opened in spreadsheets: no cell runs as a formula (read_quarantine gives the values back).
        storage.write(lake.QUARANTINE, qname, lake.to_csv(lake.neutralise_formulas(held)))
        report.quarantine_blob = qname
    else:
        storage.delete(lake.QUARANTINE, qname)
    lake.write_json(
        storage, lake.ARCHIVE, lake.raw_facts_blob(uid), {**facts, "weeks": sorted(written), "rows_read": result.rows_read}
    )


def _write_execution_log(storage: BlobStorage, report: IntakeReport) -> None:
    row = {
        "logged_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "upload": report.upload,
        "source_file": report.source_file,
        "rows_read": report.rows_read,
        "rows_valid": report.rows_valid,
        "rows_quarantined": report.rows_quarantined,
        "weeks": " ".join(report.weeks),
        "quarantine_file": report.quarantine_blob or "",
        "duplicate_of": report.duplicate_of or "",
        "notes": " | ".join(report.notes),
    }
    # One log per upload, named by arrival: a re-run replaces its own log instead of adding one.
    landed = dt.datetime.fromisoformat(report.landed_at).strftime("%Y%m%dT%H%M%S")
    uid = report.upload.rsplit("@", 1)[1]
    storage.write(lake.LOGS, f"execution_{landed}_{uid}.csv", lake.to_csv(pl.DataFrame([row])))


# --- putting files into the landing zone, and sending fixed quarantine rows back --------------
# Shared by the ``pdp`` command and the admin console, so both name and re-ingest files alike.


DEFAULT_MAX_UPLOAD_MB = 100


def max_upload_mb() -> int:
    """The largest upload the pipeline reads, in MB (``PDP_MAX_UPLOAD_MB``): `pdp upload` refuses a
    bigger file, and intake rejects one whole (its bytes archived) before anything parses it."""
    return int(os.environ.get("PDP_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB))


def safe_blob_name(filename: str, now: dt.datetime | None = None, prefix: str | None = None) -> str:
    """A landing name that cannot escape its container or overwrite a file still waiting:
    ``<prefix, by default the UTC timestamp>_<basename with only [A-Za-z0-9._-]>``."""
    base = Path(filename).name
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(base).stem).strip("._") or "upload"
    prefix = prefix or (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%S%f")
    return f"{prefix}_{stem[:100]}.csv"


# Landing names of re-ingested quarantine rows: <stamp or version>_reingest_<stem>.csv
REINGEST = "reingest_"


def is_reingest(name: str) -> bool:
    return name.partition("_")[2].startswith(REINGEST)


@dataclass
class QuarantineFile:
    name: str
    etag: str  # the version listed; a save based on another version is refused
    rows: int
    reasons: list[tuple[str, int]]  # most common first


def quarantine_files(storage: BlobStorage, top: int = 3) -> list[QuarantineFile]:
    """Every quarantine file with its row count and its ``top`` most common reasons."""
    files = []
    for b in storage.list_blobs(lake.QUARANTINE):
        frame = pl.read_csv(storage.read(lake.QUARANTINE, b.name), infer_schema=False, raise_if_empty=False)
        if ERROR not in frame.columns:  # not written by the pipeline: list it rather than fail the listing
            files.append(QuarantineFile(b.name, b.etag, frame.height, [(f"no {ERROR} column", frame.height)]))
            continue
        reasons = frame[ERROR].str.split("; ").explode().value_counts(sort=True).head(top)
        files.append(QuarantineFile(b.name, b.etag, frame.height, [tuple(r) for r in reasons.iter_rows()]))
    return files


def read_quarantine(storage: BlobStorage, name: str) -> tuple[pl.DataFrame, str]:
    """A quarantine file's rows as typed (all text, formulas as they came) and the etag of the version read."""
    info = storage.info(lake.QUARANTINE, name)
    if info is None:
        raise FileNotFoundError(f"no quarantine file {name!r}")
    # The etag is taken before the read: if the file changes in between, the rows are newer than
    # the etag and a save is refused, never the other way round.
    return lake.restore_formulas(pl.read_csv(storage.read(lake.QUARANTINE, name), infer_schema=False)), info.etag


def as_uploaded(rows: pl.DataFrame) -> bytes:
    """Quarantined rows as a CSV to upload again: a row's SURPLUS fields follow its other fields
    as they arrived, so a row nobody fixed is as ragged as it came."""
    if SURPLUS not in rows.columns or rows[SURPLUS].fill_null("").eq("").all():
        return lake.to_csv(rows.drop(SURPLUS, strict=False))
    header = [c for c in rows.columns if c != SURPLUS]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows.iter_rows(named=True):
        surplus = next(csv.reader([row[SURPLUS]])) if row[SURPLUS] else []
        writer.writerow([row[c] for c in header] + surplus)
    return out.getvalue().encode()


class QuarantineChanged(Exception):
    """The quarantine file is not (or no longer) the version the fixed rows were made from."""


@dataclass
class Reingested:
    landing_blob: str
    rows: int
    removed: bool  # the quarantine file was removed


def reingest(
    storage: BlobStorage, fixed: pl.DataFrame, resolves: str, by: str, etag: Optional[str] = None
) -> Reingested:
    """Send fixed rows back through the landing zone under a new safe name: the same validation
    applies, and rows still invalid come back to quarantine with their new reasons. The
    quarantine file ``resolves`` is removed only after the landing file is durably written.

    With ``etag`` (the version the rows were read from) nothing is written when the file has
    changed or gone since, and it is removed only if it is still that version: two people fixing
    the same file cannot silently replace each other's work."""
    if etag is not None:
        current = storage.info(lake.QUARANTINE, resolves)
        if current is None:
            raise QuarantineChanged(
                f"{resolves} is no longer in quarantine: someone re-ingested it after you opened it. "
                "Nothing was sent; reload the list."
            )
        if current.etag != etag:
            raise QuarantineChanged(
                f"{resolves} was changed after you opened it (another save, or the pipeline ran again). "
                "Nothing was sent; reload it to see the current rows, then apply your fixes again."
            )
    rows = fixed.drop([c for c in (ERROR, SOURCE, ROW) if c in fixed.columns])
    data = as_uploaded(rows)
    fixed_name = f"{REINGEST}{Path(resolves).stem}.csv"
    if etag is None:
        name = safe_blob_name(fixed_name)
        storage.write(lake.LANDING, name, data)
    else:
        # Two saves of one version can both pass the check above at the same instant: the landing
        # name is then the version's own (not the time's), and only the first save can create it.
        name = safe_blob_name(fixed_name, prefix=hashlib.sha256(f"{resolves}\n{etag}".encode()).hexdigest()[:20])
        if not storage.create(lake.LANDING, name, data):
            raise QuarantineChanged(
                f"{resolves} is being re-ingested from this same version by someone else (saved a moment ago). "
                "Nothing was sent; reload it to see what is left, then apply your fixes again."
            )
    actions.record(storage, actions.REINGEST, resolves, by, details=f"{rows.height} row(s) sent back as {name}", id_=name)
    return Reingested(name, rows.height, storage.delete(lake.QUARANTINE, resolves, etag=etag))


def discard_quarantine(storage: BlobStorage, name: str, by: str, reason: str, etag: Optional[str] = None) -> int:
    """Remove a quarantine file without sending its rows back (a wrong upload, rows nobody will fix),
    and record why; its rows stay in the upload's archived copy. The number of rows discarded.
    With ``etag``, only that version: a file changed since it was read is refused."""
    if not reason.strip():
        raise ValueError("give a reason: it is kept in the action log")
    info = storage.info(lake.QUARANTINE, name)
    if info is None:
        raise FileNotFoundError(f"no quarantine file {name!r}")
    if etag is not None and info.etag != etag:
        raise QuarantineChanged(f"{name} was changed after you opened it: nothing was discarded; reload it")
    rows = pl.read_csv(storage.read(lake.QUARANTINE, name), infer_schema=False, raise_if_empty=False).height
    version = f"{Path(name).stem}_{lake.upload_id(name, info.etag)}"
    actions.record(storage, actions.DISCARD_QUARANTINE, name, by, reason.strip(),
                   details=f"{rows} row(s), kept in the upload's archived copy", id_=version)
    if not storage.delete(lake.QUARANTINE, name, etag=info.etag):
        actions.record(storage, actions.DISCARD_QUARANTINE, name, by, reason.strip(),
                       details="not discarded: the file changed meanwhile", id_=version)
        raise QuarantineChanged(f"{name} changed while it was being discarded: nothing was discarded; reload it")
    return rows
