"""Lab results as assets: per-upload intake (archive, valid rows, quarantine), the weekly lake,
the CDC export, and deletion requests."""

import datetime as dt

import dagster as dg
import pandera.polars as pa
import polars as pl

from pdp_assets.lib.automation import WHEN_INPUTS_CHANGE
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.deletions import record_request
from pdp_assets.lib.lab_results.intake import ingest_upload, split_partition_key
from pdp_assets.lib.lab_results.schemas import LabResult
from pdp_assets.lib.metadata import (
    COLUMN_SCHEMA, column_schema, markdown_table, pandera_check_result, profile, record_weeks, ROW_COUNT, URI,
)
from pdp_assets.lib.partitions import deletion_partitions, upload_partitions, week_path, weekly_partitions
from pdp_assets.lib.resources.storage import BlobStorage

GROUP = "lab_results"
IDENTIFIERS = ("sample_id",)  # never shown in metadata, which the event log keeps for ever
PROFILE_ROWS = 10_000  # the export's metadata describes its newest records, not the whole file
OWNERS = ["team:lab-data"]  # who to ask about these assets; the tag selects them across groups
TAGS = {"domain": GROUP}

RAW_UPLOADS = dg.AssetKey("lab_raw_uploads")
VALID_ROWS = dg.AssetKey("lab_valid_rows")
QUARANTINE = dg.AssetKey("lab_quarantine")
STAGED_WEEKS = dg.AssetKey("lab_staged_weeks")

# Check names
READABLE_CSV = "readable_csv"
ROWS_ACCOUNTED = "rows_accounted"
VALID_ROWS_SCHEMA = "valid_rows_schema"
QUARANTINE_EXPLAINED = "every_row_has_a_reason"
REQUEST_ACCOUNTED = "every_id_accounted"

_VALID_ROW_SCHEMA = LabResult.to_schema().update_column("sample_id", unique=False)
_QUARANTINE_SCHEMA = pa.DataFrameSchema(
    {
        "pipeline_error": pa.Column(str, pa.Check.str_length(min_value=1)),
        "source_file": pa.Column(str, pa.Check.str_length(min_value=1)),
        "row_number": pa.Column(pl.Int64, pa.Check.ge(0)),
    }
)


def _today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def staged(weeks: list[str], **metadata) -> list[dg.AssetMaterialization]:
    """What a run records on lab_staged_weeks: the lake weeks whose inputs it changed."""
    return [dg.AssetMaterialization(STAGED_WEEKS, partition=w, metadata=metadata)
            for w in weeks if weekly_partitions.has_partition_key(w)]


# The weeks an upload or a deletion request touches are known only once it is read, so no static
# partition mapping links them to the lake: the runs record each touched week here, and
# lab_results, downstream of this asset week by week, is rebuilt for exactly those weeks.
lab_staged_weeks = dg.AssetSpec(
    STAGED_WEEKS,
    partitions_def=weekly_partitions,
    deps=[dg.AssetDep(VALID_ROWS, partition_mapping=dg.AllPartitionMapping()),
          dg.AssetDep("lab_deletions", partition_mapping=dg.AllPartitionMapping())],
    group_name=GROUP, owners=OWNERS, tags=TAGS,
    description="What each lake week is rebuilt from: the valid rows every upload staged for it "
    "(archive/valid/year=YYYY/week=WW/) and the deletion requests naming its records. Each intake and "
    "deletion run records the weeks it changed here.",
    kinds={"parquet"},
)


@dg.multi_asset(
    name="lab_intake",
    specs=[
        dg.AssetSpec(
            RAW_UPLOADS,
            group_name=GROUP, owners=OWNERS, tags=TAGS,
            description="Every landing-zone CSV exactly as received, archived by upload (archive/raw/).",
            kinds={"csv"},
        ),
        dg.AssetSpec(
            VALID_ROWS,
            deps=[RAW_UPLOADS],
            group_name=GROUP, owners=OWNERS, tags=TAGS,
            description="The valid, typed rows of each upload, staged by ISO week (archive/valid/) for the lake.",
            kinds={"parquet", "polars"},
            metadata={COLUMN_SCHEMA: column_schema(LabResult)},
        ),
        dg.AssetSpec(
            QUARANTINE,
            deps=[RAW_UPLOADS],
            group_name=GROUP, owners=OWNERS, tags=TAGS,
            description="Rows of each upload that failed validation, as uploaded, with pipeline_error, "
            "source_file and row_number, for a person to fix and re-ingest.",
            kinds={"csv"},
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(READABLE_CSV, asset=RAW_UPLOADS, partitions_def=upload_partitions,
                          description="The upload could be read as a CSV (a binary file cannot)"),
        dg.AssetCheckSpec(ROWS_ACCOUNTED, asset=VALID_ROWS, blocking=True, partitions_def=upload_partitions,
                          description="rows read = rows valid + rows quarantined"),
        dg.AssetCheckSpec(VALID_ROWS_SCHEMA, asset=VALID_ROWS, blocking=True, partitions_def=upload_partitions,
                          description="Staged rows match the lake's Pandera schema"),
        dg.AssetCheckSpec(QUARANTINE_EXPLAINED, asset=QUARANTINE, partitions_def=upload_partitions,
                          description="Every quarantined row carries a reason, its file and its row number"),
    ],
    partitions_def=upload_partitions,
    code_version="1",
)
def lab_intake(context: dg.AssetExecutionContext, storage: BlobStorage):
    """Archive one landing upload, validate it, stage its valid rows by week, quarantine the rest."""
    report = ingest_upload(storage, context.partition_key, today=_today())
    for note in report.notes:
        context.log.warning(f"{report.source_file}: {note}")
    context.log.info(
        f"{report.source_file}: read {report.rows_read}, valid {report.rows_valid}, "
        f"quarantined {report.rows_quarantined}, weeks {len(report.weeks)}"
    )
    version = dg.DataVersion(report.sha256[:16])
    counts = {"rows_read": report.rows_read, "rows_valid": report.rows_valid, "rows_quarantined": report.rows_quarantined}
    yield dg.MaterializeResult(
        asset_key=RAW_UPLOADS,
        data_version=version,
        metadata={
            ROW_COUNT: report.rows_read,
            URI: storage.location(lake.ARCHIVE, lake.raw_blob(split_partition_key(context.partition_key)[1], report.source_file)),
            "source_file": report.source_file,
            "sha256": report.sha256,
            "landed_at": report.landed_at,
            "duplicate_of": report.duplicate_of or "",
            "landing_removed": report.landing_removed,
        },
        check_results=[
            dg.AssetCheckResult(
                asset_key=RAW_UPLOADS,
                check_name=READABLE_CSV,
                passed=not (report.validation and report.validation.rejected),
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"notes": "\n".join(report.notes)},
            )
        ],
    )
    result = report.validation
    valid = result.valid if result else pl.DataFrame(schema=lake.LAKE_SCHEMA)
    quarantine = result.quarantine if result else pl.DataFrame()
    gates = [
        dg.AssetCheckResult(
            asset_key=VALID_ROWS,
            check_name=ROWS_ACCOUNTED,
            passed=report.rows_read == report.rows_valid + report.rows_quarantined,
            metadata=counts,
        ),
        pandera_check_result(
            _VALID_ROW_SCHEMA, valid.select(lake.LAKE_COLUMNS), IDENTIFIERS, asset_key=VALID_ROWS,
            check_name=VALID_ROWS_SCHEMA,
        ),
    ]
    yield dg.MaterializeResult(
        asset_key=VALID_ROWS,
        data_version=version,
        metadata={ROW_COUNT: report.rows_valid, URI: storage.location(lake.ARCHIVE, "valid/"), **counts, "weeks": dg.MetadataValue.json(report.weeks),
                  "notes": "\n".join(report.notes)},
        check_results=gates,
    )
    if all(g.passed for g in gates):  # the blocking checks keep the lake from rebuilding on bad rows
        yield from staged(report.weeks, upload=context.partition_key)
    quarantine_check = (
        pandera_check_result(_QUARANTINE_SCHEMA, quarantine, IDENTIFIERS, asset_key=QUARANTINE,
                             check_name=QUARANTINE_EXPLAINED)
        if quarantine.height
        else dg.AssetCheckResult(
            asset_key=QUARANTINE, check_name=QUARANTINE_EXPLAINED, passed=True, metadata={"rows_checked": 0}
        )
    )
    yield dg.MaterializeResult(
        asset_key=QUARANTINE,
        data_version=version,
        metadata={
            ROW_COUNT: report.rows_quarantined,
            URI: storage.location(lake.QUARANTINE, report.quarantine_blob or ""),
            "reasons": markdown_table(quarantine.group_by("pipeline_error").len("rows").sort("rows", descending=True)
                                      if quarantine.height else quarantine, 20),
        },
        check_results=[quarantine_check],
    )


@dg.asset(
    partitions_def=deletion_partitions,
    group_name=GROUP, owners=OWNERS, tags=TAGS,
    code_version="1",
    kinds={"csv"},
    check_specs=[dg.AssetCheckSpec(REQUEST_ACCOUNTED, asset="lab_deletions", partitions_def=deletion_partitions,
                                   description="Every requested id was deleted or reported as not found; the request was well formed")],
)
def lab_deletions(context: dg.AssetExecutionContext, storage: BlobStorage) -> dg.MaterializeResult:
    """A deletion request: its (sample_id, test_date) pairs join the erasure list, which the lake
    rebuild, every intake and the warehouse apply; where the records are stored is recorded."""
    report = record_request(storage, context.partition_key)
    for event in staged(report.weeks, deletion_request=context.partition_key):
        context.log_event(event)
    if report.rejected:
        context.log.error(f"deletion request rejected, kept for a person to fix: {report.rejected}")
    elif report.cancelled:
        context.log.warning(f"deletion request {report.cancelled}: nothing deleted")
    else:
        context.log.info(f"erasing {report.found} of {report.requested} from {len(report.found_in)} copies;"
                         f" {len(report.not_found)} not found (listed in the deletion log)")
    return dg.MaterializeResult(
        metadata={
            ROW_COUNT: report.requested,
            URI: storage.location(lake.ARCHIVE, lake.erasure_blob(split_partition_key(context.partition_key)[1])),
            "requested": report.requested,
            "deleted": report.found,
            "not_found": len(report.not_found),  # which ones: the deletion log (metadata is kept for ever)
            "found_in": dg.MetadataValue.json(sorted(report.found_in)),
            "uploads_to_rewrite": dg.MetadataValue.json(report.uploads),
            "weeks": dg.MetadataValue.json(report.weeks),
            "rejected": report.rejected,
            "cancelled": report.cancelled,
            "requested_by": report.requested_by,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=REQUEST_ACCOUNTED,
                passed=not report.rejected and report.found + len(report.not_found) == report.requested,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"rejected": report.rejected},
            )
        ],
    )


@dg.asset(
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[lab_staged_weeks],
    group_name=GROUP, owners=OWNERS, tags=TAGS,
    code_version="1",
    kinds={"parquet", "polars"},
    metadata={COLUMN_SCHEMA: column_schema(LabResult)},
    automation_condition=WHEN_INPUTS_CHANGE,
    pool="lab_lake",  # rebuilds rewrite week files: dagster.yaml runs one at a time
)
def lab_results(context: dg.AssetExecutionContext, storage: BlobStorage) -> dg.MaterializeResult:
    """The lab-results lake: data/year=YYYY/week=WW/data.parquet, one row per sample_id, the latest
    upload winning. Each week is rebuilt from its archived valid rows, so any range can be
    backfilled in one run and a rebuild is always safe."""
    weeks = context.partition_keys
    changes: list[lake.WeekChange] = []
    for start in range(0, len(weeks), 52):  # a year of weeks per batch: progress, bounded memory
        changes += lake.rebuild_weeks(storage, weeks[start : start + 52])
        context.log.info(f"rebuilt {len(changes)}/{len(weeks)} weeks")
    table = pl.DataFrame(changes).with_columns(path=pl.col("week").map_elements(week_path, return_dtype=pl.String))
    record_weeks(context, table.select("week", "rows", "inserted", "updated", "removed",
                                       uri=pl.col("week").map_elements(lambda w: storage.location(lake.DATA, lake.lake_blob(w)),
                                                                       return_dtype=pl.String)))
    changed = table.filter((pl.col("inserted") + pl.col("updated") + pl.col("removed")) > 0)
    if changed.height:
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        storage.write(lake.LOGS, f"lake_{now}.csv", lake.to_csv(changed.with_columns(run_id=pl.lit(context.run.run_id))))
    return dg.MaterializeResult(
        metadata={
            "weeks": len(weeks),
            "weeks_changed": changed.height,
            "rows_in_weeks": int(table["rows"].sum()),
            "inserted_in_weeks": int(table["inserted"].sum()),
            "updated_in_weeks": int(table["updated"].sum()),
            "removed_in_weeks": int(table["removed"].sum()),
            "changed_weeks": markdown_table(changed.select("path", "rows", "inserted", "updated", "removed"), 25),
        }
    )


@dg.asset(
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[lab_results],
    group_name=GROUP, owners=OWNERS, tags=TAGS,
    code_version="1",
    kinds={"csv"},
    metadata={COLUMN_SCHEMA: column_schema(LabResult)},
    automation_condition=WHEN_INPUTS_CHANGE,
    pool="lab_lake",
)
def lab_cdc_export(context: dg.AssetExecutionContext, storage: BlobStorage) -> dg.MaterializeResult:
    """data/final_cdc_export.csv: every lake record, newest test first, safe to open in a
    spreadsheet. Materializing any week range refreshes the whole file (it spans all weeks)."""
    rows = lake.write_export(storage)
    newest = pl.read_csv(storage.read(lake.DATA, lake.EXPORT_BLOB), n_rows=PROFILE_ROWS,
                         schema_overrides={"test_date": pl.Date, "viral_load": pl.Int64})
    return dg.MaterializeResult(
        metadata={
            ROW_COUNT: rows,
            URI: storage.location(lake.DATA, lake.EXPORT_BLOB),
            "profile": profile(newest, f"The newest {newest.height:,} records"),
        }
    )
