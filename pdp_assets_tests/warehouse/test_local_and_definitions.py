"""The local warehouse (fakesnow in process, files under PDP_HOME) keeps its data between runs;
the warehouse Definitions load beside the lab ones; the benchmark runs."""

import dagster as dg

from benchmarks.warehouse import bench_warehouse
from pdp_assets.definitions import source_definitions
from pdp_assets.defs.warehouse.assets import build_load_asset
from pdp_assets.lib.resources.warehouse import LocalWarehouse
from pdp_assets_tests.warehouse.conftest import lab_frame, query, WEEK1, WEEK2, write_week


def test_the_local_warehouse_survives_between_runs(cfg, lab, storage, tmp_path, instance):
    write_week(storage, WEEK1, lab_frame(WEEK1, 20))
    write_week(storage, WEEK2, lab_frame(WEEK2, 10))
    for week in (WEEK1, WEEK2):  # each run gets its own resource instance, as separate processes would
        warehouse = LocalWarehouse(db_path=str(tmp_path / "pdp" / "warehouse"))
        assert dg.materialize([build_load_asset(cfg, lab)], partition_key=week, instance=instance,
                              resources={"storage": storage, "warehouse": warehouse}).success
    again = LocalWarehouse(db_path=str(tmp_path / "pdp" / "warehouse"))
    assert query(again, "SELECT COUNT(*) FROM LAB_RESULTS") == [(30,)]
    assert query(again, "SELECT STATUS, COUNT(*) FROM PDP_LOAD_DRIVE GROUP BY 1") == [("SUCCEEDED", 2)]
    assert (tmp_path / "pdp" / "warehouse" / "PDP.db").exists()


def test_definitions_load_with_the_lab_ones(storage, tmp_path):
    defs = dg.Definitions.merge(source_definitions("lab_results"), source_definitions("warehouse"), dg.Definitions(
        resources={"storage": storage, "warehouse": LocalWarehouse(db_path=str(tmp_path / "wh"))}))
    graph = defs.resolve_asset_graph()
    key = dg.AssetKey("warehouse_lab_results")
    assert graph.get(key).parent_keys == {dg.AssetKey("lab_results")}
    assert graph.get(dg.AssetKey("warehouse_lab_deletions")).parent_keys == {dg.AssetKey("lab_deletions")}
    assert dg.AssetCheckKey(key, "audit_counts") in defs.resolve_asset_graph().asset_check_keys
    job = defs.resolve_job_def("warehouse_lab_results_job")
    assert job.tags["dagster/retry_on_asset_or_op_failure"] == "false"
    assert [n.name for n in job.graph.nodes][0] == "warehouse_lab_results"


def test_bench_prints_rows_per_second():
    lines: list[str] = []
    bench_warehouse(2_000, lines.append)
    assert "rows/s" in lines[1] and lines[-1].startswith("  split: stage")
