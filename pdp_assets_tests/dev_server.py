"""A `dagster dev` (webserver + daemon) on a temporary instance, and what tests ask it over GraphQL.

Built on :mod:`pdp_assets_tests.servers` (start and stop by process group). Used by the browser,
GraphQL and daemon tests; every server started here is stopped by :func:`stop_dev_server`, which
also asserts that none of its processes survived.
"""

import json
import os
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Callable, Optional, TypeVar

from pdp_assets_tests.servers import (
    REPO, free_port, group_members, log_tail, start_dagster_dev, stop, wait_for_http,
)

LOCATION = "pdp_assets"
STARTUP_SECONDS = 120  # about 17 s on an idle machine; much more while other tests run

T = TypeVar("T")


@dataclass
class DevServer:
    port: int
    process: Popen
    home: Path  # PDP_HOME: the local blob containers
    dagster_home: Path
    env: dict
    repository: str = ""
    selector: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: Optional[dict] = None) -> dict:
        return graphql(self.port, query, variables)

    def log(self, chars: int = 4000) -> str:
        return log_tail(self.process, chars)


def graphql(port: int, query: str, variables: Optional[dict] = None, timeout: float = 30) -> dict:
    """POST one query to the webserver's /graphql; its data. GraphQL errors fail loudly."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = json.load(response)
    if body.get("errors"):
        raise AssertionError(f"GraphQL errors: {body['errors']}")
    return body["data"]


def start_dev_server(tmp: Path, extra_env: Optional[dict] = None) -> DevServer:
    """`dagster dev -w workspace.yaml` on 127.0.0.1 and a free port, PDP_HOME and DAGSTER_HOME
    under ``tmp`` (keep it short: gRPC sockets live there), the repo's dagster.yaml. Any PDP_* or
    AZURE_STORAGE_* variable of the caller is dropped first; ``extra_env`` adds the test's own.
    Returns once the code location has loaded; on failure the server is stopped first. Started
    again on the same ``tmp``, it serves the same instance and containers (a restart)."""
    home = Path(tmp) / "pdp"
    dagster_home = home / "dagster"
    if not dagster_home.exists():
        dagster_home.mkdir(parents=True)
        (dagster_home / "dagster.yaml").symlink_to(REPO / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PDP_", "AZURE_STORAGE_"))}
    env.update(PDP_HOME=str(home), DAGSTER_HOME=str(dagster_home), **(extra_env or {}))
    port = free_port()
    process = start_dagster_dev(env, port, Path(tmp))
    server = DevServer(port, process, home, dagster_home, env)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        wait_for_http(process, f"{server.url}/server_info", STARTUP_SECONDS, "dagster dev")
        server.repository = wait_for_location(server, deadline)
        server.selector = {"repositoryLocationName": LOCATION, "repositoryName": server.repository}
    except BaseException:
        stop_dev_server(server, check=False)
        raise
    return server


def stop_dev_server(server: DevServer, check: bool = True) -> None:
    """Stop it (SIGINT, then the whole group if need be); no process of its group may survive."""
    stop(server.process)
    left = group_members(server.process.pid)
    assert left == [], f"dagster dev left processes running: {left}"
    if check:  # 0: it shut itself down on SIGINT, nothing had to be killed
        assert server.process.returncode == 0, f"dagster dev exited {server.process.returncode}:\n{server.log()}"


LOCATIONS_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name } }
          ... on PythonError { message }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


def wait_for_location(server: DevServer, deadline: float) -> str:
    """Once the code location has loaded: its repository name. Fails with the load error."""
    while True:
        entries = server.graphql(LOCATIONS_QUERY)["workspaceOrError"].get("locationEntries", [])
        entry = next((e for e in entries if e["name"] == LOCATION), None)
        if entry and entry["loadStatus"] == "LOADED" and entry["locationOrLoadError"]:
            loaded = entry["locationOrLoadError"]
            assert loaded["__typename"] == "RepositoryLocation", (
                f"code location {LOCATION} failed to load: {loaded.get('message')}"
            )
            (repository,) = loaded["repositories"]
            return repository["name"]
        assert server.process.poll() is None, f"dagster dev exited:\n{server.log()}"
        assert time.monotonic() < deadline, f"{LOCATION} did not load in time:\n{server.log()}"
        time.sleep(0.5)


def wait_until(condition: Callable[[], Optional[T]], timeout: float, describe: Callable[[], str],
               server: Optional[DevServer] = None, every: float = 1.0) -> T:
    """Poll ``condition`` until it returns something truthy (returned); past ``timeout`` seconds
    fail with ``describe()`` (say what was seen: run statuses, sensor ticks)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if server is not None and server.process.poll() is not None:
            raise AssertionError(f"dagster dev exited while waiting; {describe()}\n{server.log()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {timeout:.0f} s; {describe()}")
        time.sleep(every)


# ---------------------------------------------------------------------------------------------
# runs and sensor ticks

RUNS_QUERY = """
query ($filter: RunsFilter) {
  runsOrError(filter: $filter, limit: 100) {
    __typename
    ... on Runs {
      results {
        runId jobName status creationTime startTime endTime
        tags { key value }
        assetSelection { path }
      }
    }
    ... on PythonError { message }
  }
}
"""

TICKS_QUERY = """
query ($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor {
      sensorState {
        status
        ticks(limit: 5) { status timestamp runIds skipReason error { message } }
      }
    }
  }
}
"""


def runs(server: DevServer, job: Optional[str] = None) -> list[dict]:
    """Runs on the instance (newest first), each with its tags as a dict."""
    variables = {"filter": {"pipelineName": job} if job else {}}
    data = server.graphql(RUNS_QUERY, variables)["runsOrError"]
    assert data["__typename"] == "Runs", data
    out = []
    for run in data["results"]:
        run = dict(run)
        run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        run["assets"] = {"/".join(a["path"]) for a in run.pop("assetSelection") or []}
        out.append(run)
    return out


def sensor_ticks(server: DevServer, sensor: str) -> list[dict]:
    selector = {**server.selector, "sensorName": sensor}
    data = server.graphql(TICKS_QUERY, {"selector": selector})["sensorOrError"]
    return data.get("sensorState", {}).get("ticks", []) if data["__typename"] == "Sensor" else [data]


def describe_runs(server: DevServer, sensors: tuple[str, ...] = ()) -> str:
    """Every run's job, status and partition, and the latest ticks of ``sensors``: for failures."""
    try:
        def partitions(tags: dict) -> str:
            if "dagster/partition" in tags:
                return tags["dagster/partition"]
            start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
            return f"{start}...{end}" if start else ""

        lines = ["runs:"]
        lines += [f"  {r['jobName']} {r['status']} [{partitions(r['tags'])}] {r['runId']}" for r in runs(server)]
        for sensor in sensors:
            lines.append(f"{sensor} ticks:")
            for tick in sensor_ticks(server, sensor):
                error = (tick.get("error") or {}).get("message", "")
                lines.append(f"  {tick.get('status')} runs={tick.get('runIds')} "
                             f"{tick.get('skipReason') or ''} {error[:300]}")
        return "\n".join(lines)
    except Exception as e:  # noqa: BLE001 - a description must not hide the real failure
        return f"(could not list runs: {e})"
