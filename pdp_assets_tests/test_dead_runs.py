"""A run whose process died stays STARTED in Dagster for ever unless something notices: these
kill real processes mid-run and check that the run is marked failed, and only then."""

import os
import signal
import socket
import subprocess
import sys
import time

import dagster as dg
import pytest

from pdp_assets.defs.runs import dead_run_sensor
from pdp_assets.lib.dead_runs import fail_dead_runs, HOST_TAG, PID_TAG

# A job that blocks in its step, executed in process by a child, with the tags pdp ingest gives.
SLOW_RUN = """
import time, dagster as dg
from pdp_assets.lib.dead_runs import this_process_tags

@dg.op
def wait():
    time.sleep(120)

@dg.job
def slow_job():
    wait()

slow_job.execute_in_process(instance=dg.DagsterInstance.get(), tags=this_process_tags())
"""


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.get() as instance:
        yield instance


def start_slow_run() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SLOW_RUN], env=os.environ.copy(), start_new_session=True)


def kill_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait(10)


def wait_for_started(instance, timeout=60) -> dg.DagsterRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        if runs:
            return runs[0]
        time.sleep(0.2)
    raise AssertionError("the child's run never started")


def test_a_killed_process_run_is_marked_failed_and_a_live_one_is_not(home):
    child = start_slow_run()
    try:
        run = wait_for_started(home)
        assert run.tags[PID_TAG] == str(child.pid)
        assert fail_dead_runs(home) == []  # alive: left alone
        assert home.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        os.killpg(child.pid, signal.SIGKILL)  # the run's process and its compute-log tail
        child.wait(10)
    finally:
        kill_group(child)
    assert home.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED  # what Dagster alone leaves

    with dg.build_sensor_context(instance=home) as context:
        result = dead_run_sensor(context)
    assert run.run_id in result.skip_message
    assert home.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert fail_dead_runs(home) == []  # once


def test_a_reused_pid_or_another_host_does_not_fool_it(home):
    child = start_slow_run()
    try:
        run = wait_for_started(home)
        time.sleep(1)
        later = subprocess.Popen(["sleep", "60"])  # alive, but younger than the run: not its process
        try:
            home.add_run_tags(run.run_id, {PID_TAG: str(later.pid)})
            os.killpg(child.pid, signal.SIGKILL)
            home.add_run_tags(run.run_id, {HOST_TAG: "another-host"})
            assert fail_dead_runs(home) == []  # another host's run: this host cannot tell
            home.add_run_tags(run.run_id, {HOST_TAG: socket.gethostname()})
            assert fail_dead_runs(home) == [run.run_id]
        finally:
            later.kill()
    finally:
        kill_group(child)
