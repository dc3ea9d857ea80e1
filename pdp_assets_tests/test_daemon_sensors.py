"""Sensor-driven runs under the daemon, as users get them: `dagster dev` (webserver + daemon) on a
temporary instance; a lab CSV dropped into the landing container is picked up by
lab_landing_sensor, ingested by a launched lab_intake_job run, and the automation sensor's run
of lab_results (its AutomationCondition) puts it in the lake; a deletion request takes the same
road out. Once with
local folders, once with a real Azurite blob server (PDP_STORAGE=azure in dagster dev's env).

Run status comes from the webserver's GraphQL API. Each wait is bounded and fails with the runs
and the sensors' latest ticks. The time from upload (and from deletion request) to the lake
partition updated is printed (pytest -s) and written to test-output/sensor_latency_<storage>.json.
"""

import datetime as dt
import io
import json
import statistics
import time

import polars as pl
import pytest

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.partitions import week_key
from pdp_assets.lib.resources.storage import AzureBlobStorage, BlobStorage, LocalBlobStorage
from pdp_assets_tests.conftest import csv_bytes, OUTPUT
from pdp_assets_tests.dev_server import (
    DevServer, describe_runs, runs, sensor_ticks, start_dev_server, stop_dev_server, wait_until,
)
from pdp_assets_tests.servers import start_azurite, stop

pytestmark = pytest.mark.slow

WAIT = 180  # seconds, per step; the sensors tick every 15 s and a run takes a few seconds
SENSORS = ("lab_landing_sensor", "lab_deletion_sensor", "lab_erasure_sensor", "automation_sensor")
ASSET_JOB = "__ASSET_JOB"  # what the automation sensor's backfills run

# Two ISO weeks across a year boundary (2024-12-30 is 2025-W01), and one row the rules reject.
UPLOAD = csv_bytes(
    "A1,2024-12-30,POS,5",
    "A2,2024-12-31,NEG,0",
    "A3,2024-12-27,POS,12",
    "B1,2024-12-31,Positive,1",
)
WEEK_A = week_key(dt.date(2024, 12, 30))  # 2024-12-30 -> year=2025/week=01
WEEK_B = week_key(dt.date(2024, 12, 27))  # 2024-12-23 -> year=2024/week=52
DELETION = b"sample_id,test_date\nA2,2024-12-31\n"


@pytest.fixture(scope="module", params=["local", "azure"])
def lab_server(request, tmp_path_factory):
    """(server, storage, label): dagster dev with its daemon, and a BlobStorage on the same
    containers it uses (local folders under its PDP_HOME, or a fresh Azurite of its own)."""
    label = request.param
    tmp = tmp_path_factory.mktemp(f"d{label[0]}")  # short: dagster dev's gRPC sockets live under it
    azurite = server = None
    try:
        env = {}
        if label == "azure":
            azurite, connection_string = start_azurite(tmp)
            env = {"PDP_STORAGE": "azure", "AZURE_STORAGE_CONNECTION_STRING": connection_string}
        server = start_dev_server(tmp, env)
        if label == "azure":
            storage: BlobStorage = AzureBlobStorage(connection_string=connection_string)
        else:
            storage = LocalBlobStorage(root=str(server.home))
        yield server, storage, label
    finally:
        try:
            if server is not None:
                stop_dev_server(server)
        finally:
            stop(azurite)


def lake_ids(storage: BlobStorage, week: str) -> list[str]:
    name = lake.lake_blob(week)
    if not storage.exists(lake.DATA, name):
        return []
    try:
        return sorted(pl.read_parquet(io.BytesIO(storage.read(lake.DATA, name)))["sample_id"])
    except (FileNotFoundError, pl.exceptions.PolarsError):  # replaced or removed between calls
        return []


def partition(run: dict) -> str:
    return run["tags"].get("dagster/partition", "")


def no_failed_run(server: DevServer) -> None:
    """Fail at once, with the runs and dagster dev's output, if any run failed."""
    failed = [r for r in runs(server) if r["status"] in ("FAILURE", "CANCELED")]
    assert not failed, (f"{failed[0]['jobName']} run {failed[0]['runId']} ended {failed[0]['status']}\n"
                        f"{describe_runs(server, SENSORS)}\ndagster dev output:\n{server.log(6000)}")


def succeeded(server: DevServer, job: str, where) -> dict | None:
    """The run of ``job`` that ``where(run)`` picks, once it succeeded; a failed one fails the test."""
    for run in runs(server, job):
        if where(run):
            assert run["status"] not in ("FAILURE", "CANCELED"), (
                f"{job} run {run['runId']} ended {run['status']}\n{describe_runs(server, SENSORS)}\n"
                f"dagster dev output:\n{server.log(6000)}"
            )
            if run["status"] == "SUCCESS":
                return run
    return None


def lake_rebuild(server: DevServer, after: float, weeks: tuple[str, str]) -> dict | None:
    """The automation sensor's lake run covering ``weeks`` created after ``after``, once it
    succeeded (a run of one week carries that week as its partition, a range its two ends; an
    erasure's intake may stage more of the upload's weeks, so a wider run counts)."""
    def wanted(r):
        tags = r["tags"]
        ends = (tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end"))
        if "dagster/partition" in tags:
            ends = (tags["dagster/partition"],) * 2
        return (r["creationTime"] >= after and "lab_results" in r["assets"] and ends[0] is not None
                and ends[0] <= weeks[0] and weeks[1] <= ends[1])
    return succeeded(server, ASSET_JOB, wanted)


def tick_interval(server: DevServer, sensor: str) -> float:
    """The median time between the sensor's latest ticks: how often the daemon evaluates it."""
    stamps = sorted(t["timestamp"] for t in sensor_ticks(server, sensor))
    return round(statistics.median(b - a for a, b in zip(stamps, stamps[1:])), 1)


def test_uploads_and_deletions_reach_the_lake_through_the_daemon(lab_server):
    server, storage, label = lab_server
    describe = lambda: describe_runs(server, SENSORS)  # noqa: E731
    assert runs(server) == [], "a fresh instance has no runs"

    # --- an upload ------------------------------------------------------------------------
    uploaded = time.time()
    storage.write(lake.LANDING, "daemon_lab.csv", UPLOAD)
    (listed,) = storage.list_blobs(lake.LANDING)  # as the sensor sees it

    def lake_has_upload():
        no_failed_run(server)
        return lake_ids(storage, WEEK_A) == ["A1", "A2"] and lake_ids(storage, WEEK_B) == ["A3"]

    wait_until(lake_has_upload, WAIT, lambda: f"lake weeks not written\n{describe()}", server, every=0.5)
    to_lake = time.time() - uploaded

    intake = wait_until(
        lambda: succeeded(server, "lab_intake_job", lambda r: partition(r).startswith("daemon_lab.csv@")),
        WAIT, lambda: f"no successful intake run\n{describe()}", server,
    )
    assert intake["tags"]["dagster/sensor_name"] == "lab_landing_sensor"
    assert intake["tags"]["dagster/partition"] == f"daemon_lab.csv@{lake.upload_id('daemon_lab.csv', listed.etag)}"
    # The automation sensor reacts to the weeks the intake recorded, which are stored while the
    # intake run is still finishing: its lake run may be created before the intake run ends, never
    # before it starts; one run over both weeks.
    lake_run = wait_until(lambda: lake_rebuild(server, intake["startTime"], (WEEK_B, WEEK_A)),
                          WAIT, lambda: f"no successful lake run after the intake\n{describe()}", server)
    to_lake_run = lake_run["endTime"] - uploaded

    # the landing blob is gone (after its outputs were written), the bad row waits in quarantine
    assert storage.list_blobs(lake.LANDING) == []
    (quarantined,) = storage.list_blobs(lake.QUARANTINE)
    bad = pl.read_csv(io.BytesIO(storage.read(lake.QUARANTINE, quarantined.name)), infer_schema=False)
    assert bad["sample_id"].to_list() == ["B1"] and bad["pipeline_error"][0]
    assert len(runs(server, "lab_intake_job")) == 1, "the upload was ingested once"

    # --- a deletion request ---------------------------------------------------------------
    requested = time.time()
    storage.write(lake.DELETION_REQUESTS, "daemon_delete.csv", DELETION)
    wait_until(lambda: no_failed_run(server) or lake_ids(storage, WEEK_A) == ["A1"], WAIT,
               lambda: f"A2 still in the lake\n{describe()}", server, every=0.5)
    deletion_to_lake = time.time() - requested

    deletion = wait_until(
        lambda: succeeded(server, "lab_deletion_job", lambda r: partition(r).startswith("daemon_delete.csv@")),
        WAIT, lambda: f"no successful deletion run\n{describe()}", server,
    )
    assert deletion["tags"]["dagster/sensor_name"] == "lab_deletion_sensor"
    second_lake = wait_until(lambda: lake_rebuild(server, deletion["startTime"], (WEEK_A, WEEK_A)),
                             WAIT, lambda: f"no successful lake run after the deletion\n{describe()}", server)
    deletion_to_lake_run = second_lake["endTime"] - requested
    assert lake_ids(storage, WEEK_B) == ["A3"]  # the other week is untouched
    export = pl.read_csv(io.BytesIO(storage.read(lake.DATA, lake.EXPORT_BLOB)), infer_schema=False)
    assert sorted(export["sample_id"]) == ["A1", "A3"]
    # The upload's own copies are rewritten without A2 by an intake run of the erasure sensor.
    erasure = wait_until(
        lambda: succeeded(server, "lab_intake_job", lambda r: r["tags"].get("dagster/sensor_name") == "lab_erasure_sensor"),
        WAIT, lambda: f"no successful erasure run\n{describe()}", server,
    )
    assert erasure["tags"]["dagster/partition"] == intake["tags"]["dagster/partition"]
    raw = {b.name: storage.read(lake.ARCHIVE, b.name) for b in storage.list_blobs(lake.ARCHIVE, "raw/")}
    assert raw and not [n for n, data in raw.items() if b"A2," in data]
    # each file ran once, the upload once more to erase; the rest is the automation sensor's
    assert len(runs(server, "lab_intake_job")) == 2 and len(runs(server, "lab_deletion_job")) == 1, describe()
    assert {r["jobName"] for r in runs(server)} == {"lab_intake_job", "lab_deletion_job", ASSET_JOB}, describe()

    figures = {
        "storage": label,
        "upload_to_intake_run_created_s": round(intake["creationTime"] - uploaded, 1),
        "upload_to_intake_run_succeeded_s": round(intake["endTime"] - uploaded, 1),
        "upload_to_lake_partition_updated_s": round(to_lake, 1),
        "upload_to_lake_run_succeeded_s": round(to_lake_run, 1),
        "deletion_request_to_lake_partition_updated_s": round(deletion_to_lake, 1),
        "deletion_request_to_lake_run_succeeded_s": round(deletion_to_lake_run, 1),
        # where the upload's time went
        "intake_queued_s": round(intake["startTime"] - intake["creationTime"], 1),
        "intake_run_s": round(intake["endTime"] - intake["startTime"], 1),
        "automation_pickup_s": round(lake_run["creationTime"] - intake["endTime"], 1),
        "lake_run_s": round(lake_run["endTime"] - lake_run["startTime"], 1),
        "landing_sensor_tick_interval_s": tick_interval(server, "lab_landing_sensor"),
        "sensor_minimum_interval_s": 15,
        "measured_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    (OUTPUT / f"sensor_latency_{label}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\n[{label}] " + ", ".join(f"{k}={v}" for k, v in figures.items() if k.endswith("_s")))
