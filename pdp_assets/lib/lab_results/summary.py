"""One readable record of what the lab runs did over a stretch of time (one `pdp ingest`, the last
day on the console's Runs page): uploads processed, rows quarantined, lake rows inserted, updated
and removed per week, and per deletion request what was deleted and what was not found. Built from
the logs the runs write (execution_*, lake_*, deletion_*), so runs launched by the daemon, the UI
or `pdp ingest` all count."""

import datetime as dt
from dataclasses import dataclass

import polars as pl

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.resources.storage import BlobStorage


@dataclass
class RunsSummary:
    uploads: pl.DataFrame  # one row per upload processed (the execution log)
    weeks: pl.DataFrame  # week, rows, inserted, updated, removed: the latest rebuild of each week changed
    deletions: pl.DataFrame  # request, requested_by, deleted, not_found (sample_id test_date lists)

    @property
    def totals(self) -> dict[str, int]:
        def total(frame: pl.DataFrame, column: str) -> int:
            return int(frame[column].cast(pl.Int64).sum()) if frame.height else 0

        return {
            "files processed": self.uploads.height,
            "rows quarantined": total(self.uploads, "rows_quarantined"),
            "rows inserted": total(self.weeks, "inserted"),
            "rows updated": total(self.weeks, "updated"),
            "rows removed": total(self.weeks, "removed"),
            "records deleted": total(self.deletions, "deleted_count"),
        }

    def lines(self) -> list[str]:
        """The summary as the last lines `pdp ingest` prints."""
        out = ["summary: " + ", ".join(f"{n} {what}" for what, n in self.totals.items())]
        for r in self.uploads.iter_rows(named=True):
            extra = f", duplicate of {r['duplicate_of']}" if r["duplicate_of"] else ""
            out.append(f"  upload {r['source_file']}: read {r['rows_read']}, valid {r['rows_valid']}, "
                       f"quarantined {r['rows_quarantined']}{extra}")
        for r in self.weeks.iter_rows(named=True):
            out.append(f"  week {r['week']}: {r['rows']} rows, inserted {r['inserted']}, updated {r['updated']}, "
                       f"removed {r['removed']}")
        for r in self.deletions.iter_rows(named=True):
            out.append(f"  deletion request {r['request']} (by {r['requested_by']}): deleted {r['deleted'] or 'none'};"
                       f" not found {r['not_found'] or 'none'}")
        return out


def _logs(storage: BlobStorage, kind: str, since: dt.datetime) -> pl.DataFrame:
    blobs = sorted((b for b in storage.list_blobs(lake.LOGS, f"{kind}_") if b.name.endswith(".csv")
                    and b.last_modified >= since), key=lambda b: b.last_modified)
    frames = [pl.read_csv(storage.read(lake.LOGS, b.name), infer_schema=False) for b in blobs]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def summarise(storage: BlobStorage, since: dt.datetime) -> RunsSummary:
    """What the lab runs logged from ``since`` (an aware datetime) on."""
    uploads = _logs(storage, "execution", since)
    if not uploads.height:
        uploads = pl.DataFrame(schema={c: pl.String for c in ("source_file", "rows_read", "rows_valid",
                                                              "rows_quarantined", "duplicate_of")})
    weeks = _logs(storage, "lake", since)
    week_columns = ["week", "rows", "inserted", "updated", "removed"]
    # A week rebuilt twice: its last rebuild has its rows; what changed adds up.
    weeks = (weeks.with_columns(pl.col(week_columns[1:]).cast(pl.Int64)).group_by("week", maintain_order=True)
             .agg(pl.col("rows").last(), pl.col("inserted", "updated", "removed").sum()).sort("week")
             if weeks.height else pl.DataFrame(schema={c: pl.Int64 if c != "week" else pl.String for c in week_columns}))
    deletions = _logs(storage, "deletion", since)
    if deletions.height:
        pair = pl.concat_str("sample_id", "test_date", separator=" ")
        deletions = deletions.filter(pl.col("status") != "rejected").group_by("request", maintain_order=True).agg(
            pl.col("requested_by").first() if "requested_by" in deletions.columns else pl.lit("").alias("requested_by"),
            pl.col("status").eq("deleted").sum().alias("deleted_count"),
            pair.filter(pl.col("status") == "deleted").str.join(", ").alias("deleted"),
            pair.filter(pl.col("status") == "not_found").str.join(", ").alias("not_found"),
        )
    else:
        deletions = pl.DataFrame(schema={"request": pl.String, "requested_by": pl.String, "deleted_count": pl.UInt32,
                                         "deleted": pl.String, "not_found": pl.String})
    return RunsSummary(uploads, weeks, deletions)
