"""Lab deletion requests reach the warehouse.

``lab_deletions`` records a request in the lab's erasure list. Downstream of it, for the same
request, ``warehouse_lab_deletions`` deletes the same (sample_id, test_date) pairs from the target and stage tables of every load with
``honour_lab_deletions: true``, and writes ``logs/warehouse_deletion_<ts>_<uid>.csv``: one row
per pair and table, saying whether it was deleted there. The local warehouse's file is then
rewritten so the deleted rows' bytes are gone from the disk too.
"""

import datetime as dt

import dagster as dg
import polars as pl

from pdp_assets.defs.warehouse.assets import CONFIG, GROUP, OWNERS, TAGS
from pdp_assets.lib.automation import WHEN_INPUTS_CHANGE
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.deletions import requested_pairs
from pdp_assets.lib.lab_results.intake import split_partition_key
from pdp_assets.lib.metadata import markdown_table
from pdp_assets.lib.partitions import deletion_partitions
from pdp_assets.lib.resources.storage import BlobStorage
from pdp_assets.lib.resources.warehouse import Warehouse
from pdp_assets.lib.warehouse.config import WarehouseConfig
from pdp_assets.lib.warehouse.sql import q, table_columns

CHUNK = 200  # pairs per statement: keeps statements small on any warehouse
PAIRS_GONE = "pairs_gone"  # check: nothing requested is left in the warehouse


def delete_pairs(cur, table: str, pairs: pl.DataFrame, delete: bool = True) -> set[tuple[str, dt.date]]:
    """Delete the pairs from one table; returns the pairs that were there. With ``delete=False``
    only find them."""
    found: set[tuple[str, dt.date]] = set()
    if pairs.height == 0 or not table_columns(cur, table):
        return found
    for start in range(0, pairs.height, CHUNK):
        rows = pairs.slice(start, CHUNK).rows()
        where = " OR ".join([f"({q('SAMPLE_ID')} = %s AND {q('TEST_DATE')} = %s)"] * len(rows))
        params = tuple(v for r in rows for v in r)
        cur.execute(f"SELECT DISTINCT {q('SAMPLE_ID')}, {q('TEST_DATE')} FROM {q(table)} WHERE {where}", params)
        found |= {(s, d) for s, d in cur.fetchall()}
        if delete:
            cur.execute(f"DELETE FROM {q(table)} WHERE {where}", params)
    return found


def build_deletion_asset(cfg: WarehouseConfig) -> dg.AssetsDefinition:
    loads = [load for load in cfg.enabled if load.honour_lab_deletions]

    @dg.asset(
        name="warehouse_lab_deletions",
        partitions_def=deletion_partitions,
        deps=["lab_deletions"],
        automation_condition=WHEN_INPUTS_CHANGE,  # each deletion request, once the lab recorded it
        group_name=GROUP, owners=OWNERS, tags=TAGS,
        kinds={"snowflake", "csv"},
        check_specs=[dg.AssetCheckSpec(PAIRS_GONE, asset="warehouse_lab_deletions", partitions_def=deletion_partitions,
                                       description="Read back after the delete: no requested (sample_id, test_date) "
                                       "pair is left in any target or stage table")],
    )
    def warehouse_lab_deletions(
        context: dg.AssetExecutionContext, storage: BlobStorage, warehouse: Warehouse
    ) -> dg.MaterializeResult:
        """The records of a lab deletion request deleted from the warehouse too (target and stage
        tables of every load with honour_lab_deletions), logged in logs/warehouse_deletion_*.csv."""
        try:
            pairs = requested_pairs(storage, context.partition_key)
        except LookupError as e:
            raise dg.Failure(str(e), allow_retries=False) from e
        rows = []
        with warehouse.connect() as conn:
            cur = conn.cursor()
            for load in loads:
                for table in (load.target_table, load.stage):
                    found = delete_pairs(cur, table, pairs)
                    rows += [{"sample_id": s, "test_date": d.isoformat(), "table": table,
                              "status": "deleted" if (s, d) in found else "not_found"} for s, d in pairs.rows()]
        reclaimed = warehouse.reclaim_deleted()
        context.log.info(f"storage: {reclaimed}")
        with warehouse.connect() as conn:  # read back on a new connection: what others now see
            cur = conn.cursor()
            left = {table: sorted(f"{s} {d}" for s, d in delete_pairs(cur, table, pairs, delete=False))
                    for load in loads for table in (load.target_table, load.stage)}
        now = dt.datetime.now(dt.timezone.utc)
        log = pl.DataFrame(rows, schema={"sample_id": pl.String, "test_date": pl.String, "table": pl.String,
                                         "status": pl.String}).with_columns(
            request=pl.lit(context.partition_key), warehouse=pl.lit(warehouse.describe()),
            logged_at=pl.lit(now.isoformat()))
        _, uid = split_partition_key(context.partition_key)
        name = f"warehouse_deletion_{now.strftime('%Y%m%dT%H%M%S')}_{uid}.csv"
        storage.write(lake.LOGS, name, lake.to_csv(log))
        deleted = log.filter(pl.col("status") == "deleted")
        context.log.info(f"deleted {deleted.height} row(s) from {len(loads)} load(s)' tables for {pairs.height} pair(s)")
        return dg.MaterializeResult(metadata={
            "pairs": pairs.height,
            "rows_deleted": deleted.height,
            "tables": dg.MetadataValue.json([t for load in loads for t in (load.target_table, load.stage)]),
            "log": storage.location(lake.LOGS, name),
            "storage": reclaimed,
            # Which pairs: the log; metadata is kept for ever and never holds an id.
            "deleted_by_table": markdown_table(deleted.group_by("table").len("rows").sort("table"), 25),
        }, check_results=[dg.AssetCheckResult(
            check_name=PAIRS_GONE,
            passed=not any(left.values()),
            metadata={"pairs_left": sum(map(len, left.values())),
                      "left_by_table": dg.MetadataValue.json({t: len(ids) for t, ids in left.items() if ids})},
        )])

    return warehouse_lab_deletions


warehouse_lab_deletions = build_deletion_asset(CONFIG)
