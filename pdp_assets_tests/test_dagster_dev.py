"""`dagster dev` serves the project from workspace.yaml: the lab assets, their checks and sensors
are in the UI's GraphQL API. A real webserver, daemon and code server, stopped cleanly after."""

import json
import os
import time
import urllib.request

import pytest

from pdp_assets_tests.servers import (
    REPO, free_port, group_members, log_tail, start_dagster_dev, stop, wait_for_http,
)

pytestmark = pytest.mark.slow

LOCATION = "pdp_assets"
LAB_ASSETS = {
    "lab_raw_uploads", "lab_valid_rows", "lab_quarantine", "lab_results", "lab_cdc_export", "lab_deletions",
}
LAB_RESULTS_CHECKS = {"lake_schema", "unique_sample_id", "dates_inside_week"}
LAB_SENSORS = {"lab_landing_sensor", "lab_deletion_sensor", "lab_lake_sensor"}
STARTUP_SECONDS = 90

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

REPOSITORY_QUERY = """
query ($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) {
    __typename
    ... on Repository {
      assetNodes {
        assetKey { path }
        isPartitioned
        partitionDefinition { type }
        assetChecksOrError {
          __typename
          ... on AssetChecks { checks { name blocking } }
        }
      }
      sensors { name }
    }
    ... on PythonError { message }
    ... on RepositoryNotFoundError { message }
  }
}
"""


def graphql(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.load(response)
    assert not body.get("errors"), body["errors"]
    return body["data"]


@pytest.fixture
def dagster_dev(tmp_path_factory):
    """`dagster dev` on a free port, with PDP_HOME and DAGSTER_HOME in a temporary folder; yields
    (port, process). Stopped at teardown, and no process of its group may survive."""
    tmp = tmp_path_factory.mktemp("dd")  # short: dagster dev's gRPC sockets live under it
    home = tmp / "pdp"
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").symlink_to(REPO / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PDP_", "AZURE_STORAGE_"))}
    env.update(PDP_HOME=str(home), DAGSTER_HOME=str(dagster_home))
    port = free_port()
    process = start_dagster_dev(REPO / "workspace.yaml", env, port, tmp)
    try:
        yield port, process
    finally:
        stop(process)
        assert group_members(process.pid) == [], "dagster dev left processes running"
        # 0: it shut itself down on SIGINT (a signal number below 0 means it had to be killed)
        assert process.returncode == 0, f"dagster dev exited {process.returncode}:\n{log_tail(process)}"


def wait_for_location(port: int, process, deadline: float) -> str:
    """Once the code location has loaded: its repository name. Fails with the load error."""
    while True:
        entries = graphql(port, LOCATIONS_QUERY)["workspaceOrError"].get("locationEntries", [])
        entry = next((e for e in entries if e["name"] == LOCATION), None)
        if entry and entry["loadStatus"] == "LOADED" and entry["locationOrLoadError"]:
            loaded = entry["locationOrLoadError"]
            assert loaded["__typename"] == "RepositoryLocation", (
                f"code location {LOCATION} failed to load: {loaded.get('message')}"
            )
            (repository,) = loaded["repositories"]
            return repository["name"]
        assert process.poll() is None, f"dagster dev exited:\n{log_tail(process)}"
        waited = f"{LOCATION} did not load in {STARTUP_SECONDS} s"
        assert time.monotonic() < deadline, f"{waited}:\n{log_tail(process)}"
        time.sleep(0.5)


def test_dagster_dev_serves_the_lab_assets_checks_and_sensors(dagster_dev):
    port, process = dagster_dev
    deadline = time.monotonic() + STARTUP_SECONDS
    wait_for_http(process, f"http://127.0.0.1:{port}/server_info", STARTUP_SECONDS, "dagster dev")
    repository = wait_for_location(port, process, deadline)

    selector = {"repositoryLocationName": LOCATION, "repositoryName": repository}
    repo = graphql(port, REPOSITORY_QUERY, {"selector": selector})["repositoryOrError"]
    assert repo["__typename"] == "Repository", repo

    nodes = {"/".join(n["assetKey"]["path"]): n for n in repo["assetNodes"]}
    assert LAB_ASSETS <= set(nodes), sorted(nodes)
    for name in LAB_ASSETS:
        assert nodes[name]["isPartitioned"] and nodes[name]["partitionDefinition"], name
    assert nodes["lab_results"]["partitionDefinition"]["type"] == "TIME_WINDOW"

    checks = nodes["lab_results"]["assetChecksOrError"]
    assert checks["__typename"] == "AssetChecks", checks
    blocking = {c["name"]: c["blocking"] for c in checks["checks"]}
    assert LAB_RESULTS_CHECKS <= set(blocking), blocking
    assert all(blocking[c] for c in LAB_RESULTS_CHECKS), blocking

    assert LAB_SENSORS <= {s["name"] for s in repo["sensors"]}
