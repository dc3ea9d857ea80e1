"""``pdp demo``: demo data for the last 8 ISO weeks, every pipeline run on it, a summary."""

import datetime as dt
import os
from typing import Callable

import click
import dagster as dg
import polars as pl

from pdp_assets.definitions import build_definitions
from pdp_assets.defs.resources import pdp_home
from pdp_assets.defs.warehouse.triggers import load_jobs
from pdp_assets.lib.health import demo as health_demo, store as health_store
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.demo import deletion_request_csv, lab_results_csv
from pdp_assets.lib.partitions import week_key, weekly_partitions
from pdp_assets.ops.home import instance as _instance, storage as _storage
from pdp_assets.ops.runner import QUIET

DEMO_WEEKS = 8  # the demo's window: the last 8 ISO weeks, the current one included


def _run(defs, instance, job: str, first: str, last: str, run_config=None) -> None:
    """One run of ``job`` over the weeks first..last, recorded on the instance (it shows in the UI)."""
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=tags, run_config={**QUIET, **(run_config or {})}, raise_on_error=False
    )
    if not result.success:
        raise click.ClickException(f"{job} run {result.run_id} for {first}..{last} failed; see it in the UI (make ui)")


def run_demo(files: int, rows: int, retail_scale: float, ingest: Callable[[], None]) -> None:
    """``ingest`` is ``pdp ingest``: the demo's files go through the same sensors and runs."""
    storage = _storage()
    today = dt.date.today()
    last = weekly_partitions.get_last_partition_key()
    first = week_key(dt.date.fromisoformat(last) - dt.timedelta(weeks=DEMO_WEEKS - 1))
    days = (today - dt.date.fromisoformat(first)).days + 1

    # Lab results: files land, the sensors' runs validate, quarantine, build the lake and export.
    for i in range(files):
        name = f"demo_lab_{i + 1:02d}.csv"
        storage.write(lake.LANDING, name, lab_results_csv(rows, dt.date.fromisoformat(first), days, seed=i))
        click.echo(f"generated {name}: {rows} rows -> {storage.location(lake.LANDING, name)}")
    ingest()
    # The deletion flow too: two stored records, and one id that does not exist.
    stored = lake.read_lake(storage).head(2)
    pairs = [(s, str(d)) for s, d in stored.select("sample_id", "test_date").iter_rows()] + [("NO-SUCH-ID", str(today))]
    storage.write(lake.DELETION_REQUESTS, "demo_deletion_request.csv", deletion_request_csv(pairs))
    click.echo(f"filed a deletion request for {len(pairs)} record(s)")
    ingest()

    # Health, retail and the warehouse: one run per pipeline over the demo weeks.
    defs, instance = build_definitions(), _instance()
    health_demo.write_demo_data(pdp_home() / "google", days=days)
    for job, run_config in [
        ("health_observe_job", None),
        ("health_job", None),
        ("retail_job", {"ops": {"retail_bronze": {"config": {"scale": retail_scale}}}}),
    ]:
        _run(defs, instance, job, first, last, run_config)
        click.echo(f"{job}: {first} .. {last} in one run")
    weeks = weekly_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first, last))
    for job in sorted(j.name for j in load_jobs):
        for week in weeks:  # a warehouse load takes one week window per run, as its drive table tracks
            _run(defs, instance, job, week, week)
        click.echo(f"{job}: {len(weeks)} week windows loaded")

    lake_weeks = lake.lake_weeks(storage)
    lake_rows = sum(lake.read_lake_week(storage, w).height for w in lake_weeks)
    quarantined = [
        pl.read_csv(storage.read(lake.QUARANTINE, b.name), infer_schema=False).height
        for b in storage.list_blobs(lake.QUARANTINE)
    ]
    health_days = sum(health_store.read_week(storage, "health_daily_metrics", w, {}).height for w in weeks)
    click.echo("")
    click.echo(f"demo weeks       : {first} .. {last} ({DEMO_WEEKS} ISO weeks)")
    click.echo(f"lab results lake : {lake_rows} rows in {len(lake_weeks)} weeks at {storage.location(lake.DATA)}")
    click.echo(f"quarantine       : {sum(quarantined)} rows in {len(quarantined)} files (pdp quarantine list)")
    click.echo(f"CDC export       : {storage.location(lake.DATA, lake.EXPORT_BLOB)}")
    click.echo(f"logs             : {storage.location(lake.LOGS)} (execution_*, lake_*, deletion_*)")
    click.echo(f"health metrics   : {health_days} days at {storage.location(health_store.CONTAINER)}")
    click.echo(f"retail lake      : {pdp_home() / 'retail'} (bronze, silver, gold)")
    click.echo(f"warehouse        : {pdp_home() / 'warehouse'} (fakesnow; drive table PDP_LOAD_DRIVE)")
    click.echo(f"Dagster instance : {os.environ['DAGSTER_HOME']}")
    click.echo("Open the UI      : make ui   (then http://127.0.0.1:3000)")
