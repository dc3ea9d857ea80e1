"""The whole `dg dev` dies in the middle of a run (a host restart, an OOM kill) and is started again
on the same instance: the run left STARTED is found and marked failed, run again, and the upload
reaches the lake and the export without a person. The expectation is the uploaded file itself."""

import io
import random
import signal
import time

import dagster as dg
import polars as pl
import psutil
import pytest

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.resources.storage import LocalBlobStorage
from pdp_assets_tests.dev_server import describe_runs, runs, start_dev_server, stop_dev_server, wait_until

pytestmark = pytest.mark.slow

ROWS = 150_000  # enough that a run's steps take a few seconds, to be killed inside one
WAIT = 300


def upload(rows: int, seed: int) -> tuple[bytes, set[str]]:
    rng = random.Random(seed)
    ids = [f"K{seed}-{i:07d}" for i in range(rows)]
    lines = [f"{s},2024-01-0{1 + rng.randrange(7)},{rng.choice(['POS', 'NEG', 'N/A'])},{rng.randrange(10**6)}"
             for s in ids]
    return ("sample_id,test_date,result,viral_load\n" + "\n".join(lines) + "\n").encode(), set(ids)


def kill_everything(pid: int) -> None:
    """SIGKILL dg dev and every process under it at once, as a power cut would."""
    root = psutil.Process(pid)
    for process in [*root.children(recursive=True), root]:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs([root], timeout=10)


def lake_and_export_ids(storage: LocalBlobStorage) -> tuple[set[str], int]:
    ids: set[str] = set()
    for blob in storage.list_blobs(lake.DATA):
        if blob.name.endswith("data.parquet"):
            ids |= set(pl.read_parquet(io.BytesIO(storage.read(lake.DATA, blob.name)))["sample_id"])
    export = storage.read(lake.DATA, lake.EXPORT_BLOB) if storage.exists(lake.DATA, lake.EXPORT_BLOB) else b""
    return ids, max(export.count(b"\n") - 1, 0)


def test_a_run_killed_with_its_daemon_is_run_again_after_a_restart(tmp_path_factory, monkeypatch):
    tmp = tmp_path_factory.mktemp("dc")
    server = start_dev_server(tmp)
    storage = LocalBlobStorage(root=str(server.home))
    data, expected = upload(ROWS, 1)
    try:
        storage.write(lake.LANDING, "big.csv", data)
        killed = wait_until(lambda: next((r for r in runs(server) if r["status"] == "STARTED"), None), WAIT,
                            lambda: describe_runs(server), server, every=0.1)
        kill_everything(server.process.pid)
    finally:
        stop_dev_server(server, check=False)

    monkeypatch.setenv("DAGSTER_HOME", str(server.dagster_home))
    with dg.DagsterInstance.get() as instance:
        left = instance.get_run_by_id(killed["runId"])
        assert left.status == dg.DagsterRunStatus.STARTED, "the kill must land inside the run"

    server = start_dev_server(tmp)
    try:
        def complete():
            every = runs(server)
            busy = [r for r in every if r["status"] in ("QUEUED", "STARTING", "STARTED", "NOT_STARTED")]
            return not busy and not storage.list_blobs(lake.LANDING) and lake_and_export_ids(storage) == (
                expected, len(expected)) and every
        every = wait_until(complete, WAIT, lambda: describe_runs(server), server, every=2)
        status = {r["runId"]: r for r in every}
        assert status[killed["runId"]]["status"] == "FAILURE"
        # Run again: by run retries (a lake run) or by the landing sensor (an intake run).
        same = [r for r in every if r["jobName"] == killed["jobName"] and r["runId"] != killed["runId"]
                and r["tags"].get("dagster/partition") == killed["tags"].get("dagster/partition")
                and r["creationTime"] > killed["creationTime"]]
        assert any(r["status"] == "SUCCESS" for r in same), describe_runs(server)
    finally:
        stop_dev_server(server)
