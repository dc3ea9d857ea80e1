"""A lab deletion request also deletes the records from the warehouse, and the log says so."""

import datetime as dt
import os
import subprocess
import sys

import dagster as dg
import polars as pl

from pdp_assets.defs.warehouse.assets import build_load_asset
from pdp_assets.defs.warehouse.deletions import build_deletion_asset
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.deletions import record_request
from pdp_assets.lib.lab_results.intake import ingest_upload, partition_key
from pdp_assets.lib.resources.warehouse import LocalWarehouse
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
    record_request(storage, key)  # what lab_deletions does
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

    # The lake week still holds A1 (not rebuilt yet): loading the week again does not bring it back.
    assert "A1" in lake.read_lake_week(storage, WEEK1)["sample_id"].to_list()
    assert dg.materialize([build_load_asset(cfg, lab)], partition_key=WEEK1, instance=instance,
                          resources=resources).success
    assert query(warehouse, "SELECT SAMPLE_ID FROM LAB_RESULTS ORDER BY 1") == [("A2",)]


def test_erased_rows_leave_the_local_warehouse_file_and_no_stage_litter(cfg, lab, storage, tmp_path, instance):
    warehouse = LocalWarehouse(db_path=str(tmp_path / "warehouse"))
    resources = {"storage": storage, "warehouse": warehouse}
    storage.write(lake.LANDING, "a.csv", csv_bytes("ERASEME-77,2024-01-01,POS,5", "KEEP-1,2024-01-03,NEG,0"))
    ingest_upload(storage, partition_key("a.csv", storage.info(lake.LANDING, "a.csv").etag), today=dt.date(2024, 6, 1))
    lake.rebuild_weeks(storage, [WEEK1])
    assert dg.materialize([build_load_asset(cfg, lab)], partition_key=WEEK1, instance=instance,
                          resources=resources).success
    db_file = tmp_path / "warehouse" / "PDP.db"
    assert b"ERASEME-77" in db_file.read_bytes()

    storage.write(lake.DELETION_REQUESTS, "del.csv", b"sample_id,test_date\nERASEME-77,2024-01-01\n")
    key = partition_key("del.csv", storage.info(lake.DELETION_REQUESTS, "del.csv").etag)
    record_request(storage, key)
    instance.add_dynamic_partitions("lab_deletion_requests", [key])
    result = dg.materialize([build_deletion_asset(cfg)], partition_key=key, instance=instance, resources=resources)

    assert b"ERASEME-77" not in db_file.read_bytes()  # not only invisible to SQL: gone from the disk
    assert query(warehouse, "SELECT SAMPLE_ID FROM LAB_RESULTS") == [("KEEP-1",)]
    [mat] = result.asset_materializations_for_node("warehouse_lab_deletions")
    assert "rewritten" in mat.metadata["storage"].value
    assert not list((tmp_path / "warehouse").glob("*.compacting"))


def test_the_local_warehouse_leaves_nothing_in_the_temporary_folder(cfg, lab, tmp_path):
    """fakesnow makes a stage folder in TMPDIR on import; a whole load in a fresh process leaves none."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    code = ("from pdp_assets.lib.resources.warehouse import LocalWarehouse\n"
            "from pdp_assets.lib.warehouse.config import load_config\n"
            "from pdp_assets.lib.warehouse import sql\n"
            "import polars as pl, datetime as dt\n"
            "load = next(l for l in load_config().loads if l.name == 'lab_results')\n"
            f"w = LocalWarehouse(db_path={str(tmp_path / 'wh')!r})\n"
            "frame = pl.DataFrame({'SAMPLE_ID': ['A'], 'TEST_DATE': [dt.date(2024, 1, 1)], 'RESULT': ['POS'],"
            " 'VIRAL_LOAD': [1]})\n"
            "with w.connect() as conn:\n"
            "    sql.ensure_tables(conn.cursor(), load, frame, 'PDP_LOADS')\n"
            "    print(sql.stage_window(conn.cursor(), load, 'PDP_LOADS', frame, '2024-01-01', 'L1'))\n")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "TMPDIR": str(scratch)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("1")
    assert list(scratch.iterdir()) == []
