"""A lab deletion request also deletes the records from the warehouse, and the log says so."""

import datetime as dt

import dagster as dg
import polars as pl

from pdp_assets.defs.warehouse.assets import build_load_asset
from pdp_assets.defs.warehouse.deletions import build_deletion_asset
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.deletions import delete_records
from pdp_assets.lib.lab_results.intake import ingest_upload, partition_key
from pdp_assets_tests.conftest import csv_bytes
from pdp_assets_tests.warehouse.conftest import query, WEEK1


def test_lab_deletions_reach_the_warehouse(cfg, lab, storage, warehouse, instance):
    resources = {"storage": storage, "warehouse": warehouse}
    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,5", "A2,2024-01-03,NEG,0", "A3,2024-01-04,POS,9"))
    info = storage.info(lake.LANDING, "a.csv")
    ingest_upload(storage, partition_key("a.csv", info.etag), today=dt.date(2024, 6, 1))
    lake.rebuild_weeks(storage, [WEEK1])
    assert dg.materialize([build_load_asset(cfg, lab)], partition_key=WEEK1, instance=instance,
                          resources=resources).success
    # A failed later load left A3 in the stage: deletions must reach it there too.
    query(warehouse, "INSERT INTO LAB_RESULTS_STAGE (SAMPLE_ID, TEST_DATE, PDP_LOAD_ID) VALUES ('A3', '2024-01-04', 'x')")

    storage.write(lake.DELETION_REQUESTS, "del.csv", b"sample_id,test_date\nA1,2024-01-01\nA3,2024-01-04\nZZ9,2024-01-02\n")
    key = partition_key("del.csv", storage.info(lake.DELETION_REQUESTS, "del.csv").etag)
    delete_records(storage, key)  # what lab_deletions does
    instance.add_dynamic_partitions("lab_deletion_requests", [key])
    result = dg.materialize([build_deletion_asset(cfg)], partition_key=key, instance=instance, resources=resources)

    assert query(warehouse, "SELECT SAMPLE_ID FROM LAB_RESULTS ORDER BY 1") == [("A2",)]
    assert query(warehouse, "SELECT COUNT(*) FROM LAB_RESULTS_STAGE") == [(0,)]
    (log_blob,) = storage.list_blobs(lake.LOGS, "warehouse_deletion_")
    log = pl.read_csv(storage.read(lake.LOGS, log_blob.name), infer_schema=False)
    status = {(s, t): st for s, t, st in log.select("sample_id", "table", "status").rows()}
    assert status == {("A1", "LAB_RESULTS"): "deleted", ("A3", "LAB_RESULTS"): "deleted",
                      ("ZZ9", "LAB_RESULTS"): "not_found", ("A1", "LAB_RESULTS_STAGE"): "not_found",
                      ("A3", "LAB_RESULTS_STAGE"): "deleted", ("ZZ9", "LAB_RESULTS_STAGE"): "not_found"}
    assert set(log["request"]) == {key}
    [mat] = result.asset_materializations_for_node("warehouse_lab_deletions")
    assert mat.metadata["rows_deleted"].value == 3

    # Re-running the request deletes nothing more and says so.
    dg.materialize([build_deletion_asset(cfg)], partition_key=key, instance=instance, resources=resources)
    assert query(warehouse, "SELECT COUNT(*) FROM LAB_RESULTS") == [(1,)]
