"""`pdp ingest` killed with SIGKILL inside each of its runs, then run again until it has nothing
left to do: the lake and the export end exactly as the files say (computed here from the files,
not by the pipeline), the landing zone is empty, and no run is left STARTED."""

import io
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.resources.storage import LocalBlobStorage
from pdp_assets.ops.home import dagster_home

pytestmark = pytest.mark.slow

PDP = str(Path(sys.executable).with_name("pdp"))
ROWS = 120_000  # per upload: a run's steps take long enough to be killed inside one


def upload(prefix: str, rows: int, seed: int) -> tuple[bytes, set[str]]:
    rng = random.Random(seed)
    lines = [f"{prefix}{i:07d},2024-01-{1 + rng.randrange(14):02d},{rng.choice(['POS', 'NEG', 'N/A'])},"
             f"{rng.randrange(10**6)}" for i in range(rows)]
    return ("sample_id,test_date,result,viral_load\n" + "\n".join(lines) + "\n").encode(), {
        line.split(",")[0] for line in lines}


def deletion(data: bytes, every: int) -> tuple[bytes, set[str]]:
    rows = data.decode().splitlines()[1::every]
    return ("sample_id,test_date\n" + "".join(",".join(r.split(",")[:2]) + "\n" for r in rows)).encode(), {
        r.split(",")[0] for r in rows}


def lake_state(storage: LocalBlobStorage) -> tuple[set[str], int]:
    ids = set(lake.read_lake(storage)["sample_id"])
    export = storage.read(lake.DATA, lake.EXPORT_BLOB) if storage.exists(lake.DATA, lake.EXPORT_BLOB) else b""
    return ids, len(pl.read_csv(io.BytesIO(export))) if export else 0


def run_started(instance: dg.DagsterInstance, job: str, nth: int):
    runs = instance.get_runs(dg.RunsFilter(job_name=job), ascending=True)
    return runs[nth - 1] if len(runs) >= nth and runs[nth - 1].status == dg.DagsterRunStatus.STARTED else None


@pytest.mark.parametrize("job, nth", [
    ("lab_intake_job", 1),   # the first upload
    ("lab_intake_job", 2),   # a later upload
    ("lab_deletion_job", 1),
    ("lab_lake_job", 1),     # the lake rebuild and the export
])
def test_killed_inside_a_run_then_rerun_ends_exactly_as_the_files_say(pdp_env, job, nth):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_STORAGE_")}
    dagster_home()  # the instance pdp ingest uses, read here while it runs
    instance = dg.DagsterInstance.get()
    storage = LocalBlobStorage(root=env["PDP_HOME"])
    first, first_ids = upload("A", ROWS, 1)
    second, second_ids = upload("B", ROWS // 2, 2)
    request, erased = deletion(first, 50)
    storage.write(lake.LANDING, "first.csv", first)
    storage.write(lake.LANDING, "second.csv", second)
    storage.write(lake.DELETION_REQUESTS, "request.csv", request)
    expected = (first_ids | second_ids) - erased

    process = subprocess.Popen([PDP, "ingest"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # its group: it and anything it started die together
    try:
        deadline = time.monotonic() + 180
        killed = None
        while killed is None and process.poll() is None and time.monotonic() < deadline:
            killed = run_started(instance, job, nth)
            time.sleep(0.05)
        assert killed is not None, f"pdp ingest never ran {job} #{nth} (exit {process.poll()})"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    outputs = []
    for _ in range(4):  # each rerun picks up what the last left
        out = subprocess.run([PDP, "ingest"], env=env, capture_output=True, text=True, timeout=300)
        outputs.append(out.stdout + out.stderr)
        assert out.returncode == 0, outputs[-1]
        if "running" not in out.stdout:
            break
    else:
        pytest.fail("pdp ingest still had work after 4 reruns:\n" + "\n---\n".join(outputs))

    assert lake_state(storage) == (expected, len(expected)), "\n---\n".join(outputs)
    assert storage.list_blobs(lake.LANDING) == [] and storage.list_blobs(lake.DELETION_REQUESTS) == []
    assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])) == []
