"""Record a deletion request: the records it names join the erasure list, and every copy of them
is found.

A deletion request changes no file of another asset. It adds its (sample_id, test_date) pairs to
the erasure list (``archive/deletions/``), which every path that writes rows consults: the lake
rebuild leaves erased records out of each week it writes (and so the export), an intake never
stages, quarantines or archives an erased record, and the warehouse deletes them from its target.
The uploads holding a record are re-run through intake (lab_erasure_sensor), which rewrites their
archived copy, staged rows and quarantine without it. Every copy is matched on the parsed pair,
exactly as validation reads it, so ``2026-12-7`` is the same record as ``2026-12-07``.

The deletion log names each pair, every copy that held it, and the pairs found nowhere. A
malformed request erases nothing, stays in the deletion-requests container, and the log says why.
"""

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from pdp_assets.lib.lab_results import actions, lake
from pdp_assets.lib.lab_results.intake import split_partition_key
from pdp_assets.lib.lab_results.validation import as_utf8, read_upload, record_keys
from pdp_assets.lib.partitions import week_key
from pdp_assets.lib.resources.storage import BlobStorage


class MalformedRequest(ValueError):
    pass


@dataclass
class DeletionReport:
    request: str
    requested: int = 0
    found: int = 0
    not_found: list[str] = field(default_factory=list)  # "<sample_id> <test_date>" of pairs found nowhere
    found_in: dict[str, list[str]] = field(default_factory=dict)  # copy (container/blob) -> sample_ids
    found_pairs: set[tuple[str, str]] = field(default_factory=set)  # (sample_id, test_date) stored anywhere
    uploads: list[str] = field(default_factory=list)  # upload partitions whose intake erases them
    weeks: list[str] = field(default_factory=list)
    rejected: str = ""
    cancelled: str = ""  # an operator withdrew the request before the run took it
    requested_by: str = ""


def parse_request(data: bytes) -> pl.DataFrame:
    """(sample_id, test_date) pairs; raises MalformedRequest with every problem found."""
    try:
        raw, problems, _ = read_upload(data)
    except ValueError as e:
        raise MalformedRequest(str(e)) from None
    raw = raw.rename({c: c.strip().lower() for c in raw.columns})
    missing = [c for c in ("sample_id", "test_date") if c not in raw.columns]
    if missing:
        raise MalformedRequest(f"missing column(s) {', '.join(missing)}; found {', '.join(raw.columns) or 'none'}")
    pairs = raw.select(pl.col("sample_id", "test_date").str.strip_chars()).with_columns(
        parsed=pl.col("test_date").str.to_date("%Y-%m-%d", strict=False)
    )
    bad = pairs.with_row_index("row", offset=1).filter(
        pl.col("sample_id").fill_null("").eq("") | pl.col("parsed").is_null()
    )
    reasons = [f"row {r}: sample_id {s!r}, test_date {d!r}" for r, s, d in bad.select("row", "sample_id", "test_date").iter_rows()]
    reasons += [f"row {i + 1}: {p}" for i, p in problems.items()]
    if reasons:
        raise MalformedRequest("rows without a sample_id or a YYYY-MM-DD test_date: " + "; ".join(reasons[:20]))
    if pairs.height == 0:
        raise MalformedRequest("the request lists no records")
    return pairs.select("sample_id", pl.col("parsed").alias("test_date")).unique(maintain_order=True)


def _upload_of(storage: BlobStorage, container: str, blob: str) -> str | None:
    """The upload partition whose intake wrote this copy (raw/<uid>/<name>): its name is the one in
    the upload's facts (a stored name may be shortened)."""
    if container == lake.ARCHIVE and blob.startswith("raw/"):
        uid = blob.split("/", 2)[1]
        facts = lake.read_json(storage, lake.ARCHIVE, lake.raw_facts_blob(uid))
        return f"{facts['source_file']}@{uid}" if facts else None
    return None


def _found_pairs(keys: pl.DataFrame, targets: pl.DataFrame) -> set[tuple[str, str]]:
    hit = keys.filter(lake.is_erased(keys, targets))
    return {(s, str(d)) for s, d in hit.select("sample_id", "test_date").iter_rows()}


def locate(storage: BlobStorage, targets: pl.DataFrame) -> tuple[dict[str, set], list[str]]:
    """Where the target records are stored: copy -> the (sample_id, test_date) pairs it holds, and
    the uploads whose intake wrote the archived ones. Reads only."""
    copies: dict[str, set] = {}
    weeks = sorted({week_key(d) for d in targets["test_date"]})
    for wk in weeks:
        for blob in storage.list_blobs(lake.ARCHIVE, lake.slice_prefix(wk)):
            copies[f"{lake.ARCHIVE}/{blob.name}"] = _found_pairs(pl.read_parquet(storage.read(lake.ARCHIVE, blob.name)), targets)
        copies[f"{lake.DATA}/{lake.lake_blob(wk)}"] = _found_pairs(lake.read_lake_week(storage, wk), targets)
    # Raw uploads and quarantine files hold rows as typed, invalid ones too: a byte search for the
    # ids first, so only files that mention one are parsed.
    needles = [s.encode() for s in targets["sample_id"]]
    candidates = [(lake.ARCHIVE, b.name) for b in storage.list_blobs(lake.ARCHIVE, "raw/") if not b.name.endswith(".json")]
    candidates += [(lake.QUARANTINE, b.name) for b in storage.list_blobs(lake.QUARANTINE)]
    uploads = set()
    for container, blob in candidates:
        data = as_utf8(storage.read(container, blob))
        if not any(n in data for n in needles):
            continue
        try:
            frame, _, _ = read_upload(data)
        except ValueError:  # a rejected binary upload: no rows were ever read from it
            continue
        keys = record_keys(lake.restore_formulas(frame) if container == lake.QUARANTINE else frame)
        found = _found_pairs(keys, targets) if keys is not None else set()
        copies[f"{container}/{blob}"] = found
        if found and (upload := _upload_of(storage, container, blob)):
            uploads.add(upload)
    for path in [p for p, found in copies.items() if not found]:
        del copies[path]
    if any(p.startswith(f"{lake.DATA}/") for p in copies):
        copies[f"{lake.DATA}/{lake.EXPORT_BLOB}"] = set().union(*(f for p, f in copies.items() if p.startswith(f"{lake.DATA}/")))
    return copies, sorted(uploads)


def requested_pairs(storage: BlobStorage, key: str) -> pl.DataFrame:
    """The (sample_id, test_date) pairs a deletion request named, as the lab recorded them: what
    every other store of these records must delete too. A rejected request names none. Raises
    LookupError before the lab has recorded the request."""
    _, uid = split_partition_key(key)
    if not storage.exists(lake.ARCHIVE, lake.erasure_blob(uid)):
        raise LookupError(f"deletion request {key} is not recorded yet: materialize lab_deletions for it first")
    return pl.read_parquet(storage.read(lake.ARCHIVE, lake.erasure_blob(uid)))


def holding_uploads(storage: BlobStorage) -> dict[str, list[str]]:
    """Deletion request id -> the uploads that held its records when it was recorded."""
    return {b.name.removeprefix(lake.ERASURES).removesuffix(".json"): lake.read_json(storage, lake.ARCHIVE, b.name)["uploads"]
            for b in storage.list_blobs(lake.ARCHIVE, lake.ERASURES) if b.name.endswith(".json")}


def uploads_to_erase(storage: BlobStorage) -> dict[str, list[str]]:
    """Upload partition -> the recorded deletion requests its intake has not applied yet (its
    archived copies still hold their records). Derived from the archive alone, so a run that died
    leaves its upload here until one succeeds."""
    pending: dict[str, list[str]] = {}
    for request, uploads in sorted(holding_uploads(storage).items()):
        for upload in uploads:
            facts = lake.read_json(storage, lake.ARCHIVE, lake.raw_facts_blob(split_partition_key(upload)[1]))
            if facts is not None and request not in facts.get("erasures", []):
                pending.setdefault(upload, []).append(request)
    return pending


def record_request(storage: BlobStorage, key: str) -> DeletionReport:
    name, uid = split_partition_key(key)
    report = DeletionReport(request=key, requested_by=actions.filed_by(storage, actions.FILE_REQUEST, name))
    info = storage.info(lake.DELETION_REQUESTS, name)
    if info is None:
        withdrawn = actions.withdrawal(storage, lake.DELETION_REQUESTS, uid)
        if withdrawn is None and storage.exists(lake.ARCHIVE, lake.erasure_blob(uid)):  # recorded by a run that died after it
            return _recorded(storage, key, requested_pairs(storage, key), report)
        if withdrawn is None:
            raise FileNotFoundError(f"no deletion request {storage.location(lake.DELETION_REQUESTS, name)}")
    else:
        withdrawn = actions.take_for_run(storage, lake.DELETION_REQUESTS, name, info.etag)
    if withdrawn:
        report.cancelled = actions.describe_withdrawal(withdrawn)
        _record_no_pairs(storage, key)
        return report
    try:
        targets = parse_request(storage.read(lake.DELETION_REQUESTS, name))
    except MalformedRequest as e:
        report.rejected = str(e)
        _record_no_pairs(storage, key)
        _write_log(storage, report, uid, pl.DataFrame())
        # The request stays where it is, for a person to fix or cancel: the run lets go of it.
        actions.release(storage, lake.DELETION_REQUESTS, uid)
        return report
    # Recorded first: from here on no write brings the records back, and others read it.
    storage.write(lake.ARCHIVE, lake.erasure_blob(uid), lake.to_parquet(targets))
    report = _recorded(storage, key, targets, report)
    storage.delete(lake.DELETION_REQUESTS, name, etag=info.etag)
    return report


def _record_no_pairs(storage: BlobStorage, key: str) -> None:
    """A request that deletes nothing (rejected or cancelled), recorded so that the stores after the
    lab (the warehouse) see it as done, with nothing to delete."""
    uid = split_partition_key(key)[1]
    storage.write(lake.ARCHIVE, lake.erasure_blob(uid), lake.to_parquet(pl.DataFrame(schema=lake.ERASED)))
    lake.write_json(storage, lake.ARCHIVE, f"{lake.ERASURES}{uid}.json", {"request": key, "uploads": []})


def _recorded(storage: BlobStorage, key: str, targets: pl.DataFrame, report: DeletionReport) -> DeletionReport:
    uid = split_partition_key(key)[1]
    copies, uploads = locate(storage, targets)
    lake.write_json(storage, lake.ARCHIVE, f"{lake.ERASURES}{uid}.json", {"request": key, "uploads": uploads})
    report.requested = targets.height
    report.found_in = {path: sorted({s for s, _ in pairs}) for path, pairs in copies.items()}
    report.found_pairs = set().union(*copies.values()) if copies else set()
    report.uploads = uploads
    report.weeks = sorted({week_key(d) for d in targets["test_date"]})
    # Found means this pair is stored somewhere: a sample_id stored under another test_date is not it.
    report.not_found = [f"{s} {d}" for s, d in targets.iter_rows() if (s, str(d)) not in report.found_pairs]
    report.found = targets.height - len(report.not_found)
    _write_log(storage, report, uid, targets)
    return report


def _write_log(storage: BlobStorage, report: DeletionReport, uid: str, targets: pl.DataFrame) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    if report.rejected:
        rows = [{"sample_id": "", "test_date": "", "status": "rejected", "removed_from": "", "reason": report.rejected}]
    else:
        rows = [
            {
                "sample_id": sid,
                "test_date": str(d),
                "status": "deleted" if (sid, str(d)) in report.found_pairs else "not_found",
                "removed_from": "; ".join(b for b, ids in report.found_in.items() if sid in ids)
                if (sid, str(d)) in report.found_pairs else "",
                "reason": "",
            }
            for sid, d in targets.iter_rows()
        ]
    log = pl.DataFrame(rows).with_columns(request=pl.lit(report.request), requested_by=pl.lit(report.requested_by),
                                          logged_at=pl.lit(now.isoformat()))
    storage.write(lake.LOGS, f"deletion_{now.strftime('%Y%m%dT%H%M%S')}_{uid}.csv", lake.to_csv(lake.neutralise_formulas(log)))
