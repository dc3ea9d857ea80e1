"""Honour a deletion request: remove listed (sample_id, test_date) records from everywhere.

Everywhere is: the archived valid rows (so no rebuild brings them back), the raw archive, the
quarantine, the lake partitions and the CDC export. The deletion log names each id, where it
was removed from, and the ids that were found nowhere. A malformed request removes nothing,
stays in the deletion-requests container, and the log says why.
"""

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.intake import split_partition_key
from pdp_assets.lib.lab_results.validation import read_upload
from pdp_assets.lib.partitions import week_key
from pdp_assets.lib.resources.storage import BlobStorage


PAIRS = {"sample_id": pl.String, "test_date": pl.Date}  # what a request names


class MalformedRequest(ValueError):
    pass


@dataclass
class DeletionReport:
    request: str
    requested: int = 0
    found: int = 0
    not_found: list[str] = field(default_factory=list)  # "<sample_id> <test_date>" of pairs found nowhere
    removed_from: dict[str, list[str]] = field(default_factory=dict)  # blob -> sample_ids
    removed_pairs: set[tuple[str, str]] = field(default_factory=set)  # (sample_id, test_date) removed anywhere
    weeks: list[str] = field(default_factory=list)
    rejected: str = ""


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


def _matches(frame: pl.DataFrame, targets: pl.DataFrame, id_col: str, date_col: str) -> pl.Series:
    """Row mask of frame rows that are one of the targets (values compared as typed, stripped)."""
    keys = frame.select(
        pl.col(id_col).cast(pl.String).str.strip_chars().alias("sample_id"),
        pl.col(date_col).cast(pl.String).str.strip_chars().alias("test_date"),
    )
    wanted = targets.with_columns(pl.col("test_date").cast(pl.String), hit=pl.lit(True))
    return keys.join(wanted, on=["sample_id", "test_date"], how="left", maintain_order="left")["hit"].fill_null(False)


def _scrub(storage, container, name, frame, cols, targets, report, write) -> None:
    """Rewrite one blob without the target rows (delete it if nothing is left)."""
    mask = _matches(frame, targets, *cols)
    removed = frame.filter(mask)
    if removed.height == 0:
        return
    pairs = removed.select(pl.col(c).cast(pl.String).str.strip_chars() for c in cols)
    report.removed_from[f"{container}/{name}"] = sorted(set(pairs.to_series(0).to_list()))
    report.removed_pairs.update(pairs.iter_rows())
    kept = frame.filter(~mask)
    if kept.height:
        storage.write(container, name, write(kept))
    else:
        storage.delete(container, name)


def _csv_columns(frame: pl.DataFrame) -> tuple[str, str] | None:
    lower = {c.strip().lower(): c for c in frame.columns}
    if "sample_id" in lower and "test_date" in lower:
        return lower["sample_id"], lower["test_date"]
    return None


def _request_blob(uid: str) -> str:
    return f"deletions/{uid}.parquet"


def requested_pairs(storage: BlobStorage, key: str) -> pl.DataFrame:
    """The (sample_id, test_date) pairs a deletion request named, as the lab recorded them when it
    honoured it: what every other store of these records must delete too. A rejected request
    names none. Raises LookupError before the lab has recorded the request."""
    _, uid = split_partition_key(key)
    if not storage.exists(lake.ARCHIVE, _request_blob(uid)):
        raise LookupError(f"deletion request {key} is not recorded yet: materialize lab_deletions for it first")
    return pl.read_parquet(storage.read(lake.ARCHIVE, _request_blob(uid)))


def delete_records(storage: BlobStorage, key: str) -> DeletionReport:
    name, uid = split_partition_key(key)
    report = DeletionReport(request=key)
    info = storage.info(lake.DELETION_REQUESTS, name)
    if info is None:
        raise FileNotFoundError(f"no deletion request {storage.location(lake.DELETION_REQUESTS, name)}")
    try:
        targets = parse_request(storage.read(lake.DELETION_REQUESTS, name))
    except MalformedRequest as e:
        report.rejected = str(e)
        storage.write(lake.ARCHIVE, _request_blob(uid), lake.to_parquet(pl.DataFrame(schema=PAIRS)))
        _write_log(storage, report, uid, pl.DataFrame())
        return report  # the request stays where it is, for a person to fix
    report.requested = targets.height
    # Recorded first: a deletion that dies part way is redone from it, and others read it.
    storage.write(lake.ARCHIVE, _request_blob(uid), lake.to_parquet(targets))
    weeks = sorted({week_key(d) for d in targets["test_date"]})

    for wk in weeks:
        for blob in storage.list_blobs(lake.ARCHIVE, lake.slice_prefix(wk)):
            frame = pl.read_parquet(storage.read(lake.ARCHIVE, blob.name))
            _scrub(storage, lake.ARCHIVE, blob.name, frame, ("sample_id", "test_date"), targets, report, lake.to_parquet)
    # Raw uploads and quarantine files hold rows as typed, invalid ones too: look in all of them
    # that mention an id at all (a byte search first, so only candidates are parsed).
    needles = [s.encode() for s in targets["sample_id"]]
    candidates = [(lake.ARCHIVE, b.name) for b in storage.list_blobs(lake.ARCHIVE, "raw/") if not b.name.endswith(".json")]
    candidates += [(lake.QUARANTINE, b.name) for b in storage.list_blobs(lake.QUARANTINE)]
    for container, blob in candidates:
        data = storage.read(container, blob)
        if not any(n in data for n in needles):
            continue
        frame, _, _ = read_upload(data)
        cols = _csv_columns(frame)
        if cols:
            _scrub(storage, container, blob, frame, cols, targets, report, lake.to_csv)

    for wk in weeks:
        before = lake.read_lake_week(storage, wk)
        hit = before.filter(_matches(before, targets, "sample_id", "test_date"))
        if hit.height:
            report.removed_from[f"{lake.DATA}/{lake.lake_blob(wk)}"] = sorted(hit["sample_id"].to_list())
    lake.rebuild_weeks(storage, weeks)
    if any(b.startswith(f"{lake.DATA}/") for b in report.removed_from):
        lake.write_export(storage)
        report.removed_from[f"{lake.DATA}/{lake.EXPORT_BLOB}"] = sorted(
            {i for b, ids in report.removed_from.items() if b.startswith(f"{lake.DATA}/year=") for i in ids}
        )
    report.weeks = weeks

    # Found means this pair was removed: a sample_id stored under another test_date is not it.
    report.not_found = [f"{s} {d}" for s, d in targets.iter_rows() if (s, str(d)) not in report.removed_pairs]
    report.found = targets.height - len(report.not_found)
    _write_log(storage, report, uid, targets)
    storage.delete(lake.DELETION_REQUESTS, name, etag=info.etag)
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
                "status": "deleted" if (sid, str(d)) in report.removed_pairs else "not_found",
                "removed_from": "; ".join(b for b, ids in report.removed_from.items() if sid in ids)
                if (sid, str(d)) in report.removed_pairs else "",
                "reason": "",
            }
            for sid, d in targets.iter_rows()
        ]
    log = pl.DataFrame(rows).with_columns(request=pl.lit(report.request), logged_at=pl.lit(now.isoformat()))
    storage.write(lake.LOGS, f"deletion_{now.strftime('%Y%m%dT%H%M%S')}_{uid}.csv", lake.to_csv(log))
