"""Backfills of a whole year of weeks, launched the way users do: the UI's GraphQL mutation
``launchPartitionBackfill`` against a real ``dagster dev`` (webserver + daemon), for the lab lake
(``lab_results`` + ``lab_cdc_export``) and the health metrics (the four materialized health
assets). Both use ``BackfillPolicy.single_run()``, so each 52-week backfill is ONE run over the
range; the test waits (bounded) for the daemon to finish each backfill, then checks the run, the
partitions Dagster records, and the lake and metrics files of every week.

Data is prepared before the server starts, as a user's instance would hold it: a partner file
already ingested by the intake (its valid rows staged by week in the archive, the lake still
empty) and the health demo data (a Google sheet and Mi Band exports as local files). Nothing is
observed or materialized beforehand, so no sensor or automation launches a run of its own.

A second, quick test holds every range-capable asset to ``BackfillPolicy.single_run()``.
"""

import datetime as dt
import io
import time

import dagster as dg
import polars as pl
import pytest

from pdp_assets.lib.health import demo as health_demo, store as health_store
from pdp_assets.lib.lab_results import intake, lake
from pdp_assets.lib.lab_results.demo import lab_results_csv
from pdp_assets.lib.resources.storage import LocalBlobStorage
from pdp_assets_tests.dev_server import DevServer, start_dev_server, stop_dev_server, wait_until

# ISO year 2025: 52 weeks, Monday 2024-12-30 (2025-W01) to Monday 2025-12-22 (2025-W52).
FIRST_WEEK = dt.date(2024, 12, 30)
WEEKS = [(FIRST_WEEK + dt.timedelta(weeks=i)).isoformat() for i in range(52)]
LAST_DAY = FIRST_WEEK + dt.timedelta(days=52 * 7 - 1)  # Sunday 2025-12-28
LAB_ASSETS = ["lab_results", "lab_cdc_export"]
HEALTH_ASSETS = ["health_blood_pressure", "health_heart_rate", "health_sleep", "health_daily_metrics"]
WAIT = 300  # seconds for a backfill: the daemon looks at backfills every 30 s, a run takes some more
DONE = {"COMPLETED", "COMPLETED_SUCCESS"}
FAILED = {"FAILED", "COMPLETED_FAILED", "CANCELED", "CANCELING", "FAILING"}

LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId launchedRunIds }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

BACKFILL = """
query ($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill {
      id status numPartitions isAssetBackfill
      assetSelection { path }
      error { message }
      runs(limit: 100) { runId status tags { key value } }
    }
    ... on Error { message }
  }
}
"""

PARTITION_STATS = """
query ($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode { partitionStats { numMaterialized numPartitions numFailed numMaterializing } }
    ... on Error { message }
  }
}
"""

CHECKS = """
query ($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode { assetChecksOrError { __typename ... on AssetChecks { checks { name blocking } } } }
  }
}
"""

CHECK_EXECUTIONS = """
query ($assetKey: AssetKeyInput!, $checkName: String!) {
  assetCheckExecutions(assetKey: $assetKey, checkName: $checkName, limit: 10) {
    runId status partition
  }
}
"""


def prepare(home) -> int:
    """A partner file ingested (rows staged by week, no lake yet) and the health demo data for the
    year; returns the number of valid lab rows."""
    storage = LocalBlobStorage(root=str(home))
    name = "partner_2025.csv"
    storage.write(lake.LANDING, name, lab_results_csv(5_200, FIRST_WEEK, 52 * 7, seed=3))
    key = intake.partition_key(name, storage.info(lake.LANDING, name).etag)
    report = intake.ingest_upload(storage, key, dt.datetime.now(dt.timezone.utc).date())
    assert report.rows_valid > 5_000 and report.weeks == WEEKS, report
    assert lake.lake_weeks(storage) == []  # only the backfill builds the lake
    health_demo.write_demo_data(home / "google", days=52 * 7, end=LAST_DAY)
    return report.rows_valid


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """dagster dev (webserver + daemon) on the prepared instance; yields (server, valid lab rows).
    Stopped by its process group id at teardown, even when the test failed."""
    tmp = tmp_path_factory.mktemp("bf")  # short: dagster dev's gRPC sockets live under it
    rows_valid = prepare(tmp / "pdp")
    dev = start_dev_server(tmp)  # stops itself if it does not come up
    try:
        yield dev, rows_valid
    finally:
        stop_dev_server(dev)


def launch_backfill(server: DevServer, assets: list[str], weeks: list[str]) -> str:
    """What the UI's "Materialize selected" -> backfill dialog sends for a partition selection."""
    params = {
        "assetSelection": [{"path": [a]} for a in assets],
        "partitionNames": weeks,
        "title": f"{assets[0]}: ISO 2025",
    }
    result = server.graphql(LAUNCH_BACKFILL, {"backfillParams": params})["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    return result["backfillId"]


def backfill(server: DevServer, backfill_id: str) -> dict:
    data = server.graphql(BACKFILL, {"backfillId": backfill_id})["partitionBackfillOrError"]
    assert data["__typename"] == "PartitionBackfill", data
    for run in data["runs"]:
        run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
    return data


def describe(server: DevServer, ids: dict[str, str]) -> str:
    lines = []
    for name, backfill_id in ids.items():
        try:
            b = backfill(server, backfill_id)
            runs = [(r["runId"][:8], r["status"]) for r in b["runs"]]
            lines.append(f"{name} backfill {backfill_id}: {b['status']} runs={runs} error={b['error']}")
        except Exception as e:  # noqa: BLE001 - a description must not hide the real failure
            lines.append(f"{name} backfill {backfill_id}: ({e})")
    return "\n".join(lines) + f"\ndagster dev output:\n{server.log(6000)}"


def partition_stats(server: DevServer, asset: str) -> dict:
    node = server.graphql(PARTITION_STATS, {"assetKey": {"path": [asset]}})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    return node["partitionStats"]


def check_outcomes(server: DevServer, asset: str, run_id: str) -> dict[str, str]:
    """Each check of ``asset``: the status of its execution in run ``run_id`` (MISSING if none)."""
    key = {"path": [asset]}
    node = server.graphql(CHECKS, {"assetKey": key})["assetNodeOrError"]
    outcomes = {}
    for check in node["assetChecksOrError"]["checks"]:
        executions = server.graphql(CHECK_EXECUTIONS, {"assetKey": key, "checkName": check["name"]})
        statuses = [e["status"] for e in executions["assetCheckExecutions"] if e["runId"] == run_id]
        outcomes[check["name"]] = statuses[0] if statuses else "MISSING"
    return outcomes


@pytest.mark.slow
def test_a_year_of_weeks_backfills_in_one_run_for_the_lab_lake_and_health_metrics(server):
    dev, rows_valid = server
    launched = time.monotonic()
    ids = {"lab": launch_backfill(dev, LAB_ASSETS, WEEKS), "health": launch_backfill(dev, HEALTH_ASSETS, WEEKS)}

    finished: dict[str, float] = {}

    def all_done():
        for name, backfill_id in ids.items():
            status = backfill(dev, backfill_id)["status"]
            assert status not in FAILED, f"{name} backfill ended {status}\n{describe(dev, ids)}"
            if status in DONE and name not in finished:
                finished[name] = time.monotonic() - launched
        return len(finished) == len(ids)

    wait_until(all_done, WAIT, lambda: f"backfills not done\n{describe(dev, ids)}", dev, every=2)
    print(f"\nbackfills of 52 weeks, launch to completed: "
          + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in finished.items()))

    checked: dict[str, set[str]] = {}
    for name, assets in (("lab", LAB_ASSETS), ("health", HEALTH_ASSETS)):
        b = backfill(dev, ids[name])
        assert b["isAssetBackfill"] and b["numPartitions"] == 52, b
        assert sorted("/".join(a["path"]) for a in b["assetSelection"]) == sorted(assets), b
        # single_run(): the whole year is ONE run over the range, not 52 runs
        (run,) = b["runs"]
        assert run["status"] == "SUCCESS", describe(dev, ids)
        assert run["tags"]["dagster/backfill"] == ids[name]
        assert (run["tags"]["dagster/asset_partition_range_start"],
                run["tags"]["dagster/asset_partition_range_end"]) == (WEEKS[0], WEEKS[-1]), run["tags"]
        assert "dagster/partition" not in run["tags"]
        for asset in assets:  # every week recorded as materialized, per partition
            stats = partition_stats(dev, asset)
            assert stats["numMaterialized"] == 52 and stats["numFailed"] == 0, (asset, stats)
            # its checks (the blocking gates too) ran once over the range in that run, and passed
            outcomes = check_outcomes(dev, asset, run["runId"])
            assert outcomes and set(outcomes.values()) == {"SUCCEEDED"}, (asset, outcomes)
            checked[asset] = set(outcomes)
    assert {"lake_schema", "unique_sample_id", "dates_inside_week"} <= checked["lab_results"], checked
    assert all("pandera_schema" in checked[a] for a in HEALTH_ASSETS), checked

    # The lake: every week of the year, every valid row once, and the export holding them all.
    storage = LocalBlobStorage(root=str(dev.home))
    assert lake.lake_weeks(storage) == WEEKS
    assert sum(lake.read_lake_week(storage, wk).height for wk in WEEKS) == rows_valid
    export = pl.read_csv(io.BytesIO(storage.read(lake.DATA, lake.EXPORT_BLOB)), infer_schema=False)
    assert export.height == rows_valid and export["sample_id"].n_unique() == rows_valid

    # Health: daily metrics for every day with data (the demo leaves 12 days out), in its week.
    days = []
    for wk in WEEKS:
        frame = health_store.read_week(storage, "health_daily_metrics", wk, {})
        if frame.height:
            monday = dt.date.fromisoformat(wk)
            assert frame["date"].is_between(monday, monday + dt.timedelta(days=6)).all(), wk
            days += frame["date"].to_list()
    assert len(days) == len(set(days)), "one row per day"
    assert 52 * 7 - 12 - 10 <= len(days) <= 52 * 7 - 12, len(days)  # a few days have no valid reading at all
    assert all(FIRST_WEEK <= d <= LAST_DAY for d in days)
    for layer in ("blood_pressure", "heart_rate", "sleep"):
        stored = [wk for wk in WEEKS if storage.exists(health_store.CONTAINER, health_store.week_blob(layer, wk))]
        assert len(stored) >= 50, (layer, len(stored))  # all but the (at most two) weeks of the gap


def test_every_asset_that_can_process_a_range_has_the_single_run_backfill_policy(pdp_env):
    """Weekly assets that handle ``context.partition_keys`` run a backfill as one run. The warehouse
    loads are the exception by design: one drive-table window (one MERGE) per week and run."""
    from pdp_assets.definitions import build_definitions

    graph = build_definitions().resolve_asset_graph()
    single, per_week = set(), set()
    for assets_def in graph.assets_defs:
        if not assets_def.keys:
            continue  # asset checks: they run with their asset
        if not assets_def.is_executable or not assets_def.is_materializable:
            continue  # observable sources: observed over a range by health_observe_job, not backfilled
        if not isinstance(assets_def.partitions_def, dg.TimeWindowPartitionsDefinition):
            continue  # per-upload and per-request (dynamic) partitions: one file per run by design
        groups = set(assets_def.group_names_by_key.values())
        policy = assets_def.backfill_policy
        if groups == {"warehouse"}:
            assert policy is None or policy.max_partitions_per_run == 1, assets_def.node_def.name
            per_week.add(assets_def.node_def.name)
        else:
            assert policy == dg.BackfillPolicy.single_run(), (assets_def.node_def.name, policy)
            single.add(assets_def.node_def.name)
    assert {"lab_results", "lab_cdc_export", "health_blood_pressure", "health_mi_band", "health_daily_metrics",
            "retail_bronze", "retail_silver_transactions"} <= single
    assert {"warehouse_lab_results", "warehouse_health_daily_metrics"} <= per_week
