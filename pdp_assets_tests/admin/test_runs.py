"""The Runs page against a real Dagster webserver: it launches an intake run over GraphQL (through
dagster-graphql's client), watches it finish and links to it."""

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from pdp_assets.lib.lab_results import lake
from pdp_assets.ops.admin.dagster_runs import Dagster, DagsterGraphQLClientError, FINISHED
from pdp_assets_tests.admin.test_pages import page_warnings, PARTNER_FILE
from pdp_assets_tests.servers import free_port, group_members, REPO, start_http_server, stop

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 120  # about 5 s on an idle machine
DAGSTER_YAML = """
run_coordinator:
  module: dagster._core.run_coordinator
  class: DefaultRunCoordinator
telemetry:
  enabled: false
"""


@pytest.fixture
def webserver(console_env, monkeypatch):
    """dagster-webserver alone (no daemon) on this test's PDP_HOME and DAGSTER_HOME, with runs
    started as soon as they are launched (no daemon dequeues them here)."""
    home = console_env / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    tmp = Path(tempfile.mkdtemp(prefix="pdp-ws-"))  # short: gRPC sockets live in TMPDIR
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_http_server(
        [str(REPO / ".venv" / "bin" / "dagster-webserver"), "-w", str(REPO / "workspace.yaml"),
         "-h", "127.0.0.1", "-p", str(port)],
        f"{url}/server_info", tmp / "webserver.log", STARTUP_SECONDS, env={**os.environ, "TMPDIR": str(tmp)},
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:  # answering is not loaded: wait for the code location
            try:
                Dagster(url).selector()
                break
            except DagsterGraphQLClientError:
                log = (tmp / "webserver.log").read_text()[-3000:]
                assert time.monotonic() < deadline and process.poll() is None, log
                time.sleep(0.5)
        monkeypatch.setenv("PDP_DAGSTER_URL", url)
        yield url
    finally:
        stop(process)
        shutil.rmtree(tmp, ignore_errors=True)
        assert group_members(process.pid) == []  # the webserver, its code server and run workers


def test_runs_page_launches_an_intake_run_and_watches_it(webserver, open_page, storage):
    storage.write(lake.LANDING, "partner.csv", PARTNER_FILE)
    at = open_page("runs")
    waiting = ["Uploads waiting", "Deletion requests waiting"]
    assert [m.value for m in at.metric if m.label in waiting] == ["1", "0"]
    assert not page_warnings(at)  # Dagster answered; the lab sensors are on by default

    at.button(key="process_uploads").click().run()
    (run_id,) = at.session_state["runs_launched"]
    assert [s.value for s in at.success] == ["Launched 1 run(s); follow them below."]
    dagster, deadline = Dagster(webserver), time.monotonic() + 120
    while (status := dagster.get_run_status(run_id).value) not in FINISHED:
        assert time.monotonic() < deadline, f"run {run_id} still {status}"
        time.sleep(0.5)
    assert status == "SUCCESS"

    at.run()
    runs = at.dataframe[0].value
    (row,) = runs[runs["run"] == f"{webserver}/runs/{run_id}"].to_dict("records")
    assert (row["status"], row["job"], row["launched by"]) == ("SUCCESS", "lab_intake_job", "this page")
    assert row["partition"].startswith("partner.csv@")
    assert [m.value for m in at.metric if m.label in waiting] == ["0", "0"]  # the upload was processed
    assert {m.label: m.value for m in at.metric}["rows quarantined"] == "2"  # its summary card
    assert storage.list_blobs(lake.LANDING) == [] and len(storage.list_blobs(lake.QUARANTINE)) == 1
