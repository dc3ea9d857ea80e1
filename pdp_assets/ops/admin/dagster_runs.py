"""Launch the lab jobs on a running Dagster webserver and watch them, through dagster-graphql's
client, so every run is an ordinary Dagster run: queued, retried, logged and shown in the UI.

Uploads and deletion requests are normally picked up by the lab sensors within about 15 s of
landing. "Run now" launches the same job for the same partition the sensor would use (the file
name and its etag), for when someone does not want to wait or the sensor is stopped. If the
sensor launches it too, the second run finds the upload in the archive and rewrites the same
outputs: nothing is doubled. The lake weeks these runs change are rebuilt by the automation
sensor (runs of Dagster's asset job, listed beside the lab jobs); the sensors' states are shown
so nobody waits for a sensor that is off.
"""

from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

import requests
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.intake import partition_key
from pdp_assets.lib.partitions import deletion_partitions, upload_partitions, weekly_partitions
from pdp_assets.ops.admin.console import pending

__all__ = ["Dagster", "DagsterGraphQLClientError", "describe", "LAB_JOBS", "FINISHED"]

LAB_JOBS = ["lab_intake_job", "lab_deletion_job", "lab_lake_job", "lab_export_job"]
ASSET_JOB = "__ASSET_JOB"  # what the automation sensor's runs (and backfills) run
SENSORS = ["lab_landing_sensor", "lab_deletion_sensor", "lab_erasure_sensor", "automation_sensor", "dead_run_sensor"]
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
# The drop containers and the job (and dynamic partitions) their sensor launches.
DROP_JOBS = {
    lake.LANDING: ("lab_intake_job", upload_partitions.name),
    lake.DELETION_REQUESTS: ("lab_deletion_job", deletion_partitions.name),
}
LAUNCHED_BY = {"pdp/launched_by": "pdp admin"}

_RUN_FIELDS = "runId jobName status startTime endTime tags { key value }"
# One request for the recent runs of every lab job (RunsFilter takes one job name).
RUNS_QUERY = "query ($limit: Int) {\n" + "\n".join(
    f'  q{i}: runsOrError(filter: {{pipelineName: "{job}"}}, limit: $limit) '
    f"{{ __typename ... on Runs {{ results {{ {_RUN_FIELDS} }} }} ... on PythonError {{ message }} }}"
    for i, job in enumerate([*LAB_JOBS, ASSET_JOB])
) + "\n}"
REPOSITORIES_QUERY = """
query {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
    ... on PythonError { message }
  }
}
"""
SENSORS_QUERY = """
query ($selector: RepositorySelector!) {
  sensorsOrError(repositorySelector: $selector) {
    __typename
    ... on Sensors { results { name sensorState { status } } }
    ... on PythonError { message }
  }
}
"""
ADD_PARTITION = """
mutation ($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) {
    __typename
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}
"""


def describe(e: Exception) -> str:
    """The useful line of a client error: its root cause (say, connection refused), not the query."""
    while e.__cause__ is not None:
        e = e.__cause__
    text = " ".join(str(a) for a in e.args) if isinstance(e, DagsterGraphQLClientError) else str(e)
    return (text.splitlines() or [type(e).__name__])[0][:300]


@dataclass
class Run:
    run_id: str
    job: str
    status: str
    partition: str
    started: Optional[float]
    ended: Optional[float]
    launched_by: str


class Dagster:
    """The webserver at ``url`` (e.g. http://127.0.0.1:3000): runs are launched and followed with
    dagster-graphql's client, and the few queries the Runs page needs that the client has no
    method for go to the same ``/graphql`` endpoint."""

    def __init__(self, url: str, timeout: int = 5):
        parts = urlsplit(url)
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.client = DagsterGraphQLClient(
            parts.hostname or "127.0.0.1", port_number=parts.port, use_https=parts.scheme == "https",
            path_prefix=parts.path.rstrip("/"), timeout=timeout,
        )
        self._selector: Optional[dict] = None

    def run_url(self, run_id: str) -> str:
        return f"{self.url}/runs/{run_id}"

    def get_run_status(self, run_id: str):
        return self.client.get_run_status(run_id)

    def graphql(self, query: str, variables: Optional[dict] = None) -> dict:
        """The ``data`` of one GraphQL request; a transport or GraphQL error as the client's error."""
        try:
            response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                                     timeout=self.timeout)
            response.raise_for_status()
            body = response.json()
        except (requests.RequestException, ValueError) as e:
            raise DagsterGraphQLClientError("RequestFailed", f"{self.url}/graphql: {e}") from e
        if body.get("errors"):
            raise DagsterGraphQLClientError("GraphQLError", body["errors"][0].get("message", ""))
        return body["data"]

    def selector(self) -> dict:
        """The repository that holds the lab jobs (found once, by job name)."""
        if self._selector is None:
            data = self.graphql(REPOSITORIES_QUERY)["repositoriesOrError"]
            if data["__typename"] != "RepositoryConnection":
                raise DagsterGraphQLClientError(data["__typename"], data.get("message", ""))
            found = [r for r in data["nodes"] if any(j["name"] == "lab_intake_job" for j in r["jobs"])]
            if not found:
                raise DagsterGraphQLClientError("JobNotFoundError",
                                                f"no code location at {self.url} has lab_intake_job")
            self._selector = {"repositoryLocationName": found[0]["location"]["name"],
                              "repositoryName": found[0]["name"]}
        return self._selector

    def _launch(self, job: str, tags: dict) -> str:
        sel = self.selector()
        return self.client.submit_job_execution(job, sel["repositoryLocationName"], sel["repositoryName"],
                                                tags={**LAUNCHED_BY, **tags})

    def launch_partition(self, job: str, partitions_def: str, key: str) -> str:
        """Add the dynamic partition (as the sensor would) and launch ``job`` for it."""
        variables = {"selector": self.selector(), "name": partitions_def, "key": key}
        result = self.graphql(ADD_PARTITION, variables)
        outcome = result["addDynamicPartition"]
        # A partition the sensor added already is fine: the run is what we are after.
        if outcome["__typename"] not in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"):
            raise DagsterGraphQLClientError(outcome["__typename"], outcome.get("message", ""))
        return self._launch(job, {"dagster/partition": key})

    def launch_pending(self, store, container: str) -> list[tuple[str, str]]:
        """Launch the job for every CSV waiting in ``container``: [(file name, run id)]."""
        job, partitions_def = DROP_JOBS[container]
        return [(b.name, self.launch_partition(job, partitions_def, partition_key(b.name, b.etag)))
                for b in pending(store, container)]

    def launch_export(self) -> str:
        """lab_export_job, as `pdp export` runs it: any week refreshes the whole file."""
        last_week = weekly_partitions.get_last_partition_key()
        return self._launch("lab_export_job", {"dagster/partition": last_week})

    def recent_runs(self, limit: int = 10) -> list[Run]:
        """The newest runs of the lab jobs and of the automation sensor, newest first."""
        data = self.graphql(RUNS_QUERY, {"limit": limit})
        runs = []
        for found in data.values():
            if found["__typename"] != "Runs":
                raise DagsterGraphQLClientError(found["__typename"], found.get("message", ""))
            for r in found["results"]:
                tags = {t["key"]: t["value"] for t in r["tags"]}
                ends = [tags.get(f"dagster/asset_partition_range_{end}") for end in ("start", "end")]
                part = tags.get("dagster/partition") or "...".join(filter(None, ends))
                by = (tags.get("pdp/launched_by") or tags.get("dagster/sensor_name")
                      or ("automation_sensor" if "dagster/backfill" in tags or r["jobName"] == ASSET_JOB else ""))
                runs.append(Run(r["runId"], r["jobName"], r["status"], part, r["startTime"], r["endTime"], by))
        return sorted(runs, key=lambda r: r.started or float("inf"), reverse=True)[:limit]

    def sensor_states(self) -> dict[str, str]:
        """RUNNING or STOPPED for each lab sensor (the daemon ticks only RUNNING ones)."""
        data = self.graphql(SENSORS_QUERY, {"selector": self.selector()})["sensorsOrError"]
        if data["__typename"] != "Sensors":
            raise DagsterGraphQLClientError(data["__typename"], data.get("message", ""))
        return {s["name"]: s["sensorState"]["status"] for s in data["results"] if s["name"] in SENSORS}
