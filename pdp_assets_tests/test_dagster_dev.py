"""`dagster dev` serves the project from workspace.yaml: the lab assets, their checks and sensors
are in the UI's GraphQL API. A real webserver, daemon and code server, stopped cleanly after."""

import pytest

from pdp_assets_tests.dev_server import start_dev_server, stop_dev_server

pytestmark = pytest.mark.slow

LAB_ASSETS = {
    "lab_raw_uploads", "lab_valid_rows", "lab_quarantine", "lab_results", "lab_cdc_export", "lab_deletions",
}
LAB_RESULTS_CHECKS = {"lake_schema", "unique_sample_id", "dates_inside_week"}
LAB_SENSORS = {"lab_landing_sensor", "lab_deletion_sensor", "automation_sensor"}

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


@pytest.fixture
def dagster_dev(tmp_path_factory):
    """`dagster dev` from workspace.yaml on a temporary instance, once its code location loaded.
    Stopped at teardown: it must exit 0 on SIGINT, and no process of its group may survive."""
    server = start_dev_server(tmp_path_factory.mktemp("dd"))  # short: gRPC sockets live under it
    try:
        yield server
    finally:
        stop_dev_server(server)


def test_dagster_dev_serves_the_lab_assets_checks_and_sensors(dagster_dev):
    repo = dagster_dev.graphql(REPOSITORY_QUERY, {"selector": dagster_dev.selector})["repositoryOrError"]
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
