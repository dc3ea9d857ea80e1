"""warehouse_lab_deletions checks itself: after the deletes it reads the tables back on a new
connection, and its `pairs_gone` check fails if any requested pair is still there."""

import datetime as dt

import dagster as dg

from pdp_assets.defs.warehouse import deletions
from pdp_assets.defs.warehouse.assets import build_load_asset
from pdp_assets.defs.warehouse.deletions import build_deletion_asset, PAIRS_GONE
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.deletions import record_request
from pdp_assets.lib.lab_results.intake import ingest_upload, partition_key
from pdp_assets_tests.conftest import csv_bytes
from pdp_assets_tests.warehouse.conftest import query, WEEK1


def _request(cfg, lab, storage, warehouse, instance) -> tuple[str, dict]:
    """A1 and A2 loaded into the warehouse; a request to delete A1; the lab side honoured."""
    resources = {"storage": storage, "warehouse": warehouse}
    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,5", "A2,2024-01-03,NEG,0"))
    ingest_upload(storage, partition_key("a.csv", storage.info(lake.LANDING, "a.csv").etag), today=dt.date(2024, 6, 1))
    lake.rebuild_weeks(storage, [WEEK1])
    assert dg.materialize([build_load_asset(cfg, lab)], partition_key=WEEK1, instance=instance,
                          resources=resources).success
    storage.write(lake.DELETION_REQUESTS, "del.csv", b"sample_id,test_date\nA1,2024-01-01\n")
    key = partition_key("del.csv", storage.info(lake.DELETION_REQUESTS, "del.csv").etag)
    record_request(storage, key)
    instance.add_dynamic_partitions("lab_deletion_requests", [key])
    return key, resources


def _check(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == PAIRS_GONE]
    return evaluation


def test_pairs_gone_passes_when_the_warehouse_no_longer_has_them(cfg, lab, storage, warehouse, instance):
    key, resources = _request(cfg, lab, storage, warehouse, instance)
    result = dg.materialize([build_deletion_asset(cfg)], partition_key=key, instance=instance, resources=resources)
    check = _check(result)
    assert check.passed and check.metadata["pairs_left"].value == 0
    assert query(warehouse, "SELECT SAMPLE_ID FROM LAB_RESULTS") == [("A2",)]


def test_pairs_gone_fails_when_a_delete_removed_nothing(cfg, lab, storage, warehouse, instance, monkeypatch):
    key, resources = _request(cfg, lab, storage, warehouse, instance)
    real = deletions.delete_pairs
    # A DELETE that silently matches nothing (what a type or quoting mismatch would do).
    monkeypatch.setattr(deletions, "delete_pairs", lambda cur, table, pairs, delete=True: real(cur, table, pairs, delete=False))
    result = dg.materialize([build_deletion_asset(cfg)], partition_key=key, instance=instance, resources=resources,
                            raise_on_error=False)
    check = _check(result)
    assert not check.passed
    assert check.metadata["pairs_left"].value == 1
    assert check.metadata["left_by_table"].value == {"LAB_RESULTS": 1}
