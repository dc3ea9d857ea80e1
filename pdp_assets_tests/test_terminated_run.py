"""A test run ended by SIGTERM still stops the servers its tests started."""

import os
import signal
import subprocess
import sys
import time

import pytest

from pdp_assets_tests.servers import REPO

# A test holding a real server (started as the suite starts them), waiting to be terminated.
INNER = '''
import os, sys, time
from pathlib import Path
import pytest
from pdp_assets_tests.servers import free_port, start_http_server, stop

@pytest.fixture
def server(tmp_path):
    port = free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    process = start_http_server(argv, f"http://127.0.0.1:{port}/", tmp_path / "http.log")
    try:
        yield process
    finally:
        stop(process)

def test_holds_a_server_until_terminated(server):
    Path(os.environ["SERVER_PID_FILE"]).write_text(str(server.pid))
    time.sleep(300)
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_a_terminated_run_stops_the_servers_its_tests_started(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER)
    pid_file = tmp_path / "server.pid"
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "pdp_assets_tests.conftest", "-q", "-p", "no:cacheprovider",
         str(tmp_path / "test_inner.py")],
        cwd=REPO, env={**os.environ, "SERVER_PID_FILE": str(pid_file)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    server_pid = None
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pid_file.exists(), f"the inner run never started its server:\n{run.communicate(timeout=30)[0]}"
        server_pid = int(pid_file.read_text())
        assert _alive(server_pid)

        run.send_signal(signal.SIGTERM)
        output = run.communicate(timeout=60)[0]
        assert run.returncode != 0  # interrupted, not passed
        deadline = time.monotonic() + 10
        while _alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(server_pid), f"the server outlived the terminated run:\n{output}"
    finally:
        if run.poll() is None:
            run.kill()
        if server_pid is not None and _alive(server_pid):
            os.killpg(server_pid, signal.SIGKILL)  # its own process group (servers.py)
