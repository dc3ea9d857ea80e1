"""Start and stop real servers for tests (Azurite, ``dagster dev``) on 127.0.0.1.

Every server runs in its own session, hence its own process group, so :func:`stop` can end it
and everything it spawned by one id. Servers write their output to a log file (never a pipe
nobody reads), and a server that does not come up fails with the tail of that log.

Two facts shape this module:
- ``dagster dev`` maps SIGTERM onto whatever SIGINT does, so if it starts with SIGINT ignored (as
  every background job of a non-interactive shell does) it ignores both. Servers are therefore
  exec'd through a tiny shim that restores the default SIGINT/SIGTERM dispositions first.
- ``dagster dev`` shuts its webserver, daemon and code servers down itself on SIGINT; signalling
  the whole group at once interrupts the children mid-way instead. So :func:`stop` interrupts the
  leader, waits, and only then signals the group (SIGTERM, then SIGKILL) if anything is left.
"""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO / "node_modules" / ".bin" / "azurite-blob"
PDP_BIN = REPO / ".venv" / "bin" / "pdp"

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

# Restore default SIGINT/SIGTERM handling (inherited "ignore" survives exec), then exec argv[1:].
_SHIM = (
    "import os, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)

_running: dict[int, subprocess.Popen] = {}  # pid -> process, for the exit safety net


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(process: subprocess.Popen, chars: int = 4000) -> str:
    path = getattr(process, "log_path", None)
    if path is None or not Path(path).exists():
        return "(no log)"
    text = Path(path).read_text(errors="replace")
    return text[-chars:] or "(empty log)"


def _spawn(
    argv: list[str], log_path: Path, env: Optional[dict] = None, cwd: Optional[Path] = None
) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _SHIM, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,  # own session and process group: pgid == pid
        )
    process.log_path = log_path
    _running[process.pid] = process
    return process


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _fail(process: subprocess.Popen, what: str) -> None:
    exited = process.poll()
    stop(process)
    state = f"exited with code {exited}" if exited is not None else "still not ready"
    raise ServerError(f"{what}: {state}; its output:\n{log_tail(process)}")


def wait_for_port(process: subprocess.Popen, port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not _port_open(port):
        if process.poll() is not None or time.monotonic() > deadline:
            _fail(process, f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")
        time.sleep(0.1)


def wait_for_http(process: subprocess.Popen, url: str, timeout: float, what: str) -> None:
    """Until ``url`` answers with any HTTP status below 500."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
        except (urllib.error.URLError, OSError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            _fail(process, f"{what} did not answer {url} within {timeout:.0f} s")
        time.sleep(0.25)


def start_http_server(
    argv: list[str], url: str, log_path: Path, timeout: float = 60.0, env: Optional[dict] = None,
    cwd: Optional[Path] = None,
) -> subprocess.Popen:
    """Any HTTP server (``argv[0]`` an executable path) in its own process group, returned once
    ``url`` answers; if it does not, it is stopped and the error carries its log. Stop it with
    :func:`stop`."""
    process = _spawn(argv, Path(log_path), env=env, cwd=cwd)
    wait_for_http(process, url, timeout, " ".join(Path(a).name for a in argv[:4]))
    return process


# ---------------------------------------------------------------------------------------------
# Azurite


def azurite_connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    )


def start_azurite(tmp_dir: Path, timeout: float = 30.0) -> tuple[subprocess.Popen, str]:
    """An Azurite blob server with its data in ``tmp_dir``; returns it and its connection string."""
    if not AZURITE_BIN.exists():
        raise ServerError(f"{AZURITE_BIN} is missing: run `make install` (npm ci) first")
    tmp_dir = Path(tmp_dir)
    location = tmp_dir / "azurite"
    location.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # The Python SDK speaks a newer API version than Azurite 3.35 knows: skip that check.
    process = _spawn(
        [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(location),
         "--skipApiVersionCheck", "--disableTelemetry", "--silent"],
        tmp_dir / "azurite.log",
        cwd=location,  # Azurite may drop debug files in its working directory
    )
    wait_for_port(process, port, timeout, "Azurite")
    connection_string = azurite_connection_string(port)

    from azure.storage.blob import BlobServiceClient

    client = BlobServiceClient.from_connection_string(connection_string)
    deadline = time.monotonic() + timeout
    while True:  # listening is not answering: wait for one real call to succeed
        try:
            list(client.list_containers())
            break
        except Exception as e:  # noqa: BLE001 - any failure means "not ready yet"
            if process.poll() is not None or time.monotonic() > deadline:
                _fail(process, f"Azurite did not answer a list_containers call ({e})")
            time.sleep(0.2)
    return process, connection_string


# ---------------------------------------------------------------------------------------------
# dagster dev


def start_postgres(timeout: float = 60.0) -> tuple[subprocess.Popen, int, Path]:
    """A throwaway PostgreSQL server (Debian's postgresql) on 127.0.0.1: returns it, its port and
    its data folder (remove it after :func:`stop`). User ``pdp``, trust auth, database ``pdp``.

    PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` user, in a folder
    of its own under /tmp (pytest's folders are private to root).
    """
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not binaries:
        raise ServerError("PostgreSQL is not installed: run `make debian-packages` (apt-get install postgresql)")
    bin_dir = binaries[-1].parent
    data = Path(tempfile.mkdtemp(prefix="pdp-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        as_user = ["/usr/sbin/runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data / "db"), "-U", "pdp", "-A", "trust"],
                   check=True, capture_output=True)
    port = free_port()
    # -F: no fsync, a test server's data is thrown away.
    server = [str(bin_dir / "postgres"), "-D", str(data / "db"), "-h", "127.0.0.1", "-p", str(port), "-k", str(data), "-F"]
    process = _spawn([*as_user, *server], data / "postgres.log")
    try:
        wait_for_port(process, port, timeout, "PostgreSQL")
        subprocess.run([*as_user, str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "pdp", "pdp"],
                       check=True, capture_output=True)
    except BaseException:  # a server that did not come up properly is not left behind
        stop(process)
        shutil.rmtree(data, ignore_errors=True)
        raise
    return process, port, data


def start_dagster_dev(env: dict, port: int, tmp_dir: Path) -> subprocess.Popen:
    """``pdp ui --port port`` in the project, in its own process group: ``dg dev`` (the webserver
    and the daemon, on the code location ``[tool.dg]`` names) behind the guard that serves it on
    127.0.0.1:port.

    ``env`` must hold DAGSTER_HOME (with a dagster.yaml in it). TMPDIR is set to ``tmp_dir/t``:
    dg dev puts its temporary workspace and gRPC sockets there. Keep ``tmp_dir`` short, a
    Unix socket path has a 107-byte limit. Its output goes to ``tmp_dir/dagster-dev.log``.
    """
    tmp_dir = Path(tmp_dir)
    tmp = tmp_dir / "t"
    tmp.mkdir(parents=True, exist_ok=True)
    env = {**env, "TMPDIR": str(tmp), "DAGSTER_DISABLE_TELEMETRY": "1", "PYTHONUNBUFFERED": "1"}
    return _spawn(
        [str(PDP_BIN), "ui", "--port", str(port)],
        tmp_dir / "dagster-dev.log",
        env=env,
        cwd=REPO,
    )


# ---------------------------------------------------------------------------------------------
# stopping


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel whether anything in the group exists
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ..." - comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(process: subprocess.Popen, pgid: int, timeout: float, leader_only: bool = False) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        process.poll()  # reap the leader as soon as it exits
        if process.returncode is not None and (leader_only or not group_members(pgid)):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def stop(process: Optional[subprocess.Popen], timeout: float = 30.0) -> None:
    """Stop a server started here and everything in its process group; never leaves one running.

    SIGINT to the leader (a graceful shutdown: dagster dev stops its own children), then SIGINT,
    SIGTERM and finally SIGKILL to the whole group, each with a bounded wait.
    """
    if process is None:
        return
    pgid = process.pid  # start_new_session: the leader's pid is the group id
    try:
        if process.poll() is None:
            try:
                process.send_signal(signal.SIGINT)
            except ProcessLookupError:
                pass
            _wait_gone(process, pgid, timeout, leader_only=True)
        if _wait_gone(process, pgid, 2.0):
            return
        for sig, wait in ((signal.SIGINT, 5.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            _signal_group(pgid, sig)
            if _wait_gone(process, pgid, wait):
                return
        raise ServerError(f"process group {pgid} survived SIGKILL: {group_members(pgid)}")
    finally:
        _running.pop(process.pid, None)


@atexit.register
def _stop_all() -> None:  # the safety net: a test that forgot to stop its server
    for process in list(_running.values()):
        try:
            stop(process, timeout=5.0)
        except Exception:  # noqa: BLE001
            pass
