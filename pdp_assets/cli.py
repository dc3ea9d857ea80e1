"""``pdp``: the operator command. Every subcommand works on the same storage and Dagster
instance as the UI (``$PDP_HOME``, ``$DAGSTER_HOME``), so what it does shows in the UI."""

import datetime as dt
import os
import sys
from pathlib import Path

import click

from pdp_assets.lab_results.intake import safe_blob_name  # shared with the admin console

REPO = Path(__file__).resolve().parent.parent


def _home() -> Path:
    """Point DAGSTER_HOME at ``$PDP_HOME/dagster`` (unless set) with the project's dagster.yaml."""
    from pdp_assets.definitions import pdp_home

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(pdp_home() / "dagster"))).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and (REPO / "dagster.yaml").exists():
        config.symlink_to(REPO / "dagster.yaml")
    return home


def _storage():
    from pdp_assets.definitions import storage_resource

    # Outside a run, EnvVar fields (the Azure connection string) are resolved here.
    return storage_resource().process_config_and_initialize()


def _instance():
    import dagster as dg

    _home()
    return dg.DagsterInstance.get()


def _read_csv_file(path: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise click.ClickException(f"{path}: no such file")
    if p.suffix.lower() != ".csv":
        raise click.ClickException(f"{path}: only .csv files are accepted")
    return p.read_bytes()


@click.group()
def main():
    """Operate pdp_assets: upload lab files, fix quarantined rows, request deletions, run the
    sensors once, export, benchmark. Storage: $PDP_HOME (default ./.pdp) or Azure with
    PDP_STORAGE=azure; instance: $DAGSTER_HOME (default $PDP_HOME/dagster)."""


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
def upload(file):
    """Put a CSV into the landing zone under a safe, unique name."""
    from pdp_assets.lab_results import lake

    data = _read_csv_file(file)
    name = safe_blob_name(file)
    storage = _storage()
    storage.write(lake.LANDING, name, data)
    click.echo(f"uploaded {file} ({len(data)} bytes) as {storage.location(lake.LANDING, name)}")


@main.command("delete-request")
@click.argument("file", type=click.Path(dir_okay=False))
def delete_request(file):
    """File a deletion request: a CSV with sample_id and test_date columns."""
    from pdp_assets.lab_results import lake
    from pdp_assets.lab_results.deletions import MalformedRequest, parse_request

    data = _read_csv_file(file)
    try:
        pairs = parse_request(data)
    except MalformedRequest as e:
        raise click.ClickException(f"{file}: not filed: {e}")
    storage = _storage()
    name = safe_blob_name(file)
    storage.write(lake.DELETION_REQUESTS, name, data)
    click.echo(f"filed {pairs.height} record(s) for deletion as {storage.location(lake.DELETION_REQUESTS, name)}")


@main.group()
def quarantine():
    """Inspect quarantined rows and re-ingest fixed ones."""


@quarantine.command("list")
def quarantine_list():
    """Quarantine files with their row counts and most common reasons."""
    from pdp_assets.lab_results.intake import quarantine_files

    files = quarantine_files(_storage())
    if not files:
        click.echo("quarantine is empty")
        return
    for q in files:
        top = ", ".join(f"{r} ({n})" for r, n in q.reasons)
        click.echo(f"{q.name}\t{q.rows} rows\t{top}")


@quarantine.command("show")
@click.argument("name")
def quarantine_show(name):
    """Print one quarantine file as CSV (redirect it to a file, fix it, re-ingest it)."""
    from pdp_assets.lab_results import lake

    storage = _storage()
    if not storage.exists(lake.QUARANTINE, name):
        raise click.ClickException(f"no quarantine file {name!r}; see `pdp quarantine list`")
    sys.stdout.write(storage.read(lake.QUARANTINE, name).decode("utf-8", errors="replace"))


@quarantine.command("reingest")
@click.argument("fixed", type=click.Path(dir_okay=False))
@click.option("--resolves", help="the quarantine file this fixes (default: the one with FIXED's file name)")
def quarantine_reingest(fixed, resolves):
    """Send fixed rows back through the landing zone; the same validation applies. The
    quarantine file they came from is removed only after the new landing file is written."""
    import io

    import polars as pl

    from pdp_assets.lab_results import lake
    from pdp_assets.lab_results.intake import reingest

    data = _read_csv_file(fixed)
    frame = pl.read_csv(io.BytesIO(data), infer_schema=False, encoding="utf8-lossy", raise_if_empty=False)
    storage = _storage()
    resolves = resolves or Path(fixed).name
    sent = reingest(storage, frame, resolves)
    click.echo(f"re-ingesting {sent.rows} row(s) as {storage.location(lake.LANDING, sent.landing_blob)}")
    if sent.removed:
        click.echo(f"removed quarantine file {resolves}")
    else:
        click.echo(f"no quarantine file {resolves!r} to remove (pass --resolves NAME to name it)")


@main.command()
def ingest():
    """Evaluate the landing, deletion and lake sensors once and run what they request, now,
    on the instance at $DAGSTER_HOME. Exits non-zero if any run fails."""
    from pdp_assets.definitions import build_definitions
    from pdp_assets.runner import LAB_SENSORS, evaluate_and_run

    summary = evaluate_and_run(build_definitions(), _instance(), LAB_SENSORS, echo=click.echo)
    for sensor, reason in summary.skipped.items():
        click.echo(f"{sensor}: {reason}")
    if summary.failed:
        raise click.ClickException(f"{len(summary.failed)} run(s) failed: " + ", ".join(r.run_id for r in summary.failed))


@main.command()
@click.option("--out", type=click.Path(dir_okay=False), help="also copy the export to this local file")
def export(out):
    """Refresh data/final_cdc_export.csv from the lake (a lab_cdc_export materialization)."""
    from pdp_assets.definitions import build_definitions
    from pdp_assets.lab_results import lake
    from pdp_assets.partitions import weekly_partitions

    last_week = weekly_partitions.get_last_partition_key()
    result = build_definitions().resolve_job_def("lab_export_job").execute_in_process(
        instance=_instance(), partition_key=last_week, raise_on_error=False
    )
    if not result.success:
        raise click.ClickException(f"export run {result.run_id} failed; see it in the UI")
    storage = _storage()
    data = storage.read(lake.DATA, lake.EXPORT_BLOB)
    rows = data.count(b"\n") - 1
    click.echo(f"export: {rows} rows at {storage.location(lake.DATA, lake.EXPORT_BLOB)}")
    if out:
        Path(out).write_bytes(data)
        click.echo(f"copied to {out}")


DEMO_WEEKS = 8  # the demo's window: the last 8 ISO weeks, the current one included


def _run(defs, instance, job: str, first: str, last: str, run_config=None) -> None:
    """One run of ``job`` over the weeks first..last, recorded on the instance (it shows in the UI)."""
    from pdp_assets.runner import QUIET

    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=tags, run_config={**QUIET, **(run_config or {})}, raise_on_error=False
    )
    if not result.success:
        raise click.ClickException(f"{job} run {result.run_id} for {first}..{last} failed; see it in the UI (make ui)")


@main.command()
@click.option("--files", default=3, show_default=True, help="lab CSV files to drop into the landing zone")
@click.option("--rows", default=2000, show_default=True, help="rows per lab file")
@click.option("--retail-scale", default=0.05, show_default=True, help="retail data per week (1 = the seed's 50,000 transactions)")
def demo(files, rows, retail_scale):
    """Generate demo data for the last 8 weeks, run every pipeline on it, print a summary."""
    import dagster as dg
    import polars as pl

    from pdp_assets.definitions import build_definitions, pdp_home
    from pdp_assets.health import demo as health_demo
    from pdp_assets.health import store as health_store
    from pdp_assets.lab_results import lake
    from pdp_assets.lab_results.demo import deletion_request_csv, lab_results_csv
    from pdp_assets.partitions import week_key, weekly_partitions

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
    ctx = click.get_current_context()
    ctx.invoke(ingest)
    # The deletion flow too: two stored records, and one id that does not exist.
    stored = lake.read_lake(storage).head(2)
    pairs = [(s, str(d)) for s, d in stored.select("sample_id", "test_date").iter_rows()] + [("NO-SUCH-ID", str(today))]
    storage.write(lake.DELETION_REQUESTS, "demo_deletion_request.csv", deletion_request_csv(pairs))
    click.echo(f"filed a deletion request for {len(pairs)} record(s)")
    ctx.invoke(ingest)

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
    for job in sorted(j.name for j in defs.resolve_all_job_defs() if j.name.startswith("warehouse_")):
        for week in weeks:  # a warehouse load takes one week window per run, as its drive table tracks
            _run(defs, instance, job, week, week)
        click.echo(f"{job}: {len(weeks)} week windows loaded")

    lake_weeks = lake.lake_weeks(storage)
    lake_rows = sum(lake.read_lake_week(storage, w).height for w in lake_weeks)
    quarantined = [
        pl.read_csv(storage.read(lake.QUARANTINE, b.name), infer_schema=False).height
        for b in storage.list_blobs(lake.QUARANTINE)
    ]
    health_days = sum(health_store.read_week(storage, "daily_health_metrics", w, {}).height for w in weeks)
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


@main.command()
@click.argument("query")
def sql(query):
    """Run one SQL statement on the warehouse (fakesnow under $PDP_HOME, or Snowflake with
    PDP_WAREHOUSE=snowflake) and print the rows: e.g. the drive-table queries in the README."""
    import polars as pl

    from pdp_assets.definitions import warehouse_resource

    warehouse = warehouse_resource().process_config_and_initialize()
    with warehouse.connect() as conn:
        cur = conn.cursor()
        try:
            cur.execute(query)
        except Exception as e:  # the warehouse's own message says what is wrong with the SQL
            raise click.ClickException(f"{warehouse.describe()}: {e}") from e
        if cur.description is None:
            click.echo(f"ok ({cur.rowcount} rows affected)")
            return
        columns = [c[0] for c in cur.description]
        rows = cur.fetchall()
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=80):
        click.echo(pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None))


@main.group()
def bench():
    """Benchmarks that print figures side by side (see docs/PERFORMANCE.md)."""


@bench.command("lab")
@click.option("--rows", default=1_000_000, show_default=True, help="rows in the generated lab CSV")
@click.option("--repeat", default=3, show_default=True, help="runs of each contender; the best is shown (disk latency varies)")
@click.option(
    "--weeks",
    type=int,
    help="test dates over the last N whole weeks, as in a routine upload [default: 2020-01-06 .. 2026-06-30,"
    " 339 weeks, a historical load]",
)
def bench_lab(rows, repeat, weeks):
    """Lab ingest vs the seed's way (Pydantic per row) vs the floor (CSV -> one Parquet)."""
    from pdp_assets.bench import bench_lab as run

    try:
        run(rows, echo=click.echo, repeat=repeat, weeks=weeks)
    except ValueError as e:
        raise click.ClickException(str(e)) from e


@bench.command("retail")
@click.option("--scale", default=1.0, show_default=True, help="data per week; 1 = the seed's 50,000 transactions")
def bench_retail(scale):
    """Bronze -> gold for one week: end-to-end time, peak memory, where the time goes."""
    from pdp_assets.retail.bench import bench_retail as run

    run(scale, echo=click.echo)


@bench.command("warehouse")
@click.option("--rows", default=100_000, show_default=True, help="rows in the loaded week window")
def bench_warehouse(rows):
    """Stage and MERGE rows/s into the local warehouse, and how the time splits."""
    from pdp_assets.warehouse.bench import bench_warehouse as run

    run(rows, echo=click.echo)


@bench.command("sensor")
@click.option("--blobs", default=10_000, show_default=True, help="small CSV blobs in the landing container")
@click.option("--connection-string", envvar="PDP_BENCH_AZURE_CONNECTION_STRING",
              help="a throwaway Azure account (e.g. Azurite) instead of a temporary folder; its landing "
              "container must be empty, and is emptied again after")
def bench_sensor(blobs, connection_string):
    """lab_landing_sensor ticks over N blobs: the first tick's time, paging, and an idle tick."""
    from pdp_assets.lab_results.bench_sensor import bench_sensor as run

    try:
        bench = run(blobs, echo=click.echo, connection_string=connection_string)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    if len(set(bench.requested)) != len(bench.requested) or len(bench.requested) != blobs:
        raise click.ClickException("the sensor did not request each blob exactly once")


@bench.command("backfill")
@click.option("--weeks", default=52, show_default=True, help="weeks rebuilt, ending with ISO 2025-W52")
@click.option("--rows-per-week", default=2_000, show_default=True, help="lab rows staged per week")
@click.option("--no-health", is_flag=True, help="the lab lake only")
def bench_backfill(weeks, rows_per_week, no_health):
    """The same N-week rebuild (lab lake, health metrics) as one run vs one run per week."""
    from pdp_assets.bench_backfill import bench_backfill as run

    try:
        figures = run(weeks, echo=click.echo, rows_per_week=rows_per_week, health=not no_health)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    if figures["failed_runs"]:
        raise click.ClickException(f"{figures['failed_runs']} run(s) failed")
    if not all(figures["identical"].values()):
        raise click.ClickException("one run and one run per week built different results")


@bench.command("lake")
@click.option("--weeks", default="52,520", show_default=True, help="lake sizes in weeks, comma separated")
@click.option("--rows-per-week", default=2_000, show_default=True, help="rows in each lake week")
@click.option("--new-rows", default=10_000, show_default=True, help="new rows in the ingested file")
@click.option("--corrections", default=1_000, show_default=True, help="stored rows the file sends again, changed")
@click.option("--repeat", default=3, show_default=True, help="best of this many upserts")
def bench_lake(weeks, rows_per_week, new_rows, corrections, repeat):
    """Upsert cost of one new file as the lake grows: intake, touched weeks, export, per size."""
    from pdp_assets.bench_backfill import bench_lake as run, parse_sizes

    try:
        run(parse_sizes(weeks), echo=click.echo, rows_per_week=rows_per_week, new_rows=new_rows,
            corrections=corrections, repeat=repeat)
    except ValueError as e:
        raise click.ClickException(str(e)) from e


@main.command()
@click.option("--port", default=3000, show_default=True)
def ui(port):
    """Start `dagster dev` (web UI + daemon) on 127.0.0.1 with this instance."""
    _home()
    os.execvp(
        sys.executable,
        [sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
    )


@main.command()
@click.option("--port", default=8501, show_default=True)
def admin(port):
    """Start the admin console (Streamlit) on 127.0.0.1: upload, fix quarantine, deletions, runs,
    reports, health dashboard. See docs/admin.md (PDP_ADMIN_PASSWORD, PDP_DAGSTER_URL)."""
    from pdp_assets.admin.settings import APP, max_upload_mb

    os.execvp(
        sys.executable,
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none", "--server.maxUploadSize", str(max_upload_mb()),
         "--client.toolbarMode", "minimal"],
    )


if __name__ == "__main__":
    main()
