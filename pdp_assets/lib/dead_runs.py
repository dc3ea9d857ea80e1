"""Runs whose process is gone: found and marked failed.

Dagster's default run launcher cannot health-check a run worker, so a run whose process died with
its host (a restart, an OOM kill of ``dg dev``, a killed ``pdp ingest``) stays STARTED for ever and
holds its pool slot. Each run's process is known: a daemon-launched run worker reports its pid in
its "Started process for run" engine event; ``pdp ingest`` tags its runs with host and pid. A run
in progress whose process no longer exists on this host (or is another process under a reused
pid, younger than the run) is marked failed, which run retries (under the daemon) and the next
``pdp ingest`` pick up like any other failure.
"""

import os
import socket
from typing import Optional

import dagster as dg
import psutil

HOST_TAG, PID_TAG = "pdp/host", "pdp/pid"
IN_PROGRESS = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def this_process_tags() -> dict[str, str]:
    """Tags for a run executed in this process."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def run_process(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Optional[tuple[str, int]]:
    """(host, pid) of the process executing the run, if it is known."""
    if PID_TAG in run.tags:
        return run.tags.get(HOST_TAG, ""), int(run.tags[PID_TAG])
    if not isinstance(instance.run_launcher, dg.DefaultRunLauncher):
        return None  # a worker in a container or on another machine: its launcher's monitoring applies
    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20).records
    for record in records:
        pid = record.event_log_entry.dagster_event.event_specific_data.metadata.get("pid")
        if pid is not None:
            return socket.gethostname(), int(pid.value)  # the default launcher starts workers on this host
    return None


def is_running(pid: int, started_at: float) -> bool:
    """Whether ``pid`` is a live process that existed when the run started (not a reused pid)."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= started_at + 0.5  # clock resolution
    except psutil.NoSuchProcess:
        return False


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every run in progress whose process on this host is gone; returns their ids."""
    host = socket.gethostname()
    failed = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS)):
        run = record.dagster_run
        where = run_process(instance, run)
        if where is None or where[0] != host:
            continue  # not known yet (a worker starting up), or another host's run
        started = record.start_time or record.create_timestamp.timestamp()
        if is_running(where[1], started):
            continue
        instance.report_run_failed(run, message=f"the run's process ({host} pid {where[1]}) is gone: "
                                   "marked failed so it can be run again")
        failed.append(run.run_id)
    return failed
