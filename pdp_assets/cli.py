"""``pdp``: the operator command. Every subcommand works on the same storage and Dagster
instance as the UI (``$PDP_HOME``, ``$DAGSTER_HOME``), so what it does shows in the UI."""

import datetime as dt
import os
import re
import sys
from pathlib import Path

import click

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


def safe_blob_name(filename: str, now: dt.datetime | None = None) -> str:
    """A landing name that cannot escape its container or overwrite a file still waiting:
    ``<UTC timestamp>_<basename with only [A-Za-z0-9._-]>``."""
    base = Path(filename).name
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(base).stem).strip("._") or "upload"
    stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%S%f")
    return f"{stamp}_{stem[:100]}.csv"


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
    import polars as pl

    from pdp_assets.lab_results import lake

    storage = _storage()
    blobs = storage.list_blobs(lake.QUARANTINE)
    if not blobs:
        click.echo("quarantine is empty")
        return
    for b in blobs:
        frame = pl.read_csv(storage.read(lake.QUARANTINE, b.name), infer_schema=False)
        reasons = frame["pipeline_error"].str.split("; ").explode().value_counts(sort=True).head(3)
        top = ", ".join(f"{r} ({n})" for r, n in reasons.iter_rows())
        click.echo(f"{b.name}\t{frame.height} rows\t{top}")


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
    from pdp_assets.lab_results.validation import ERROR, ROW, SOURCE

    data = _read_csv_file(fixed)
    frame = pl.read_csv(io.BytesIO(data), infer_schema=False, encoding="utf8-lossy", raise_if_empty=False)
    rows = frame.drop([c for c in (ERROR, SOURCE, ROW) if c in frame.columns])
    storage = _storage()
    resolves = resolves or Path(fixed).name
    name = safe_blob_name(f"reingest_{Path(resolves).stem}.csv")
    storage.write(lake.LANDING, name, rows.write_csv().encode())
    click.echo(f"re-ingesting {rows.height} row(s) as {storage.location(lake.LANDING, name)}")
    if storage.delete(lake.QUARANTINE, resolves):
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


@main.command()
@click.option("--files", default=3, show_default=True, help="lab CSV files to drop into the landing zone")
@click.option("--rows", default=2000, show_default=True, help="rows per file")
def demo(files, rows):
    """Generate demo data, run every pipeline on it, and print a summary."""
    import polars as pl

    from pdp_assets.lab_results import lake
    from pdp_assets.lab_results.demo import deletion_request_csv, lab_results_csv

    storage = _storage()
    today = dt.date.today()
    for i in range(files):
        name = f"demo_lab_{i + 1:02d}.csv"
        storage.write(lake.LANDING, name, lab_results_csv(rows, today - dt.timedelta(days=120), 120, seed=i))
        click.echo(f"generated {name}: {rows} rows -> {storage.location(lake.LANDING, name)}")
    ctx = click.get_current_context()
    ctx.invoke(ingest)

    # Show the deletion flow too: two stored records, and one id that does not exist.
    stored = lake.read_lake(storage).head(2)
    pairs = [(s, str(d)) for s, d in stored.select("sample_id", "test_date").iter_rows()] + [("NO-SUCH-ID", str(today))]
    storage.write(lake.DELETION_REQUESTS, "demo_deletion_request.csv", deletion_request_csv(pairs))
    click.echo(f"filed a deletion request for {len(pairs)} record(s)")
    ctx.invoke(ingest)

    weeks = lake.lake_weeks(storage)
    lake_rows = sum(lake.read_lake_week(storage, w).height for w in weeks)
    quarantined = [
        pl.read_csv(storage.read(lake.QUARANTINE, b.name), infer_schema=False).height
        for b in storage.list_blobs(lake.QUARANTINE)
    ]
    click.echo("")
    click.echo(f"lab results lake : {lake_rows} rows in {len(weeks)} weeks at {storage.location(lake.DATA)}")
    click.echo(f"quarantine       : {sum(quarantined)} rows in {len(quarantined)} files (pdp quarantine list)")
    click.echo(f"CDC export       : {storage.location(lake.DATA, lake.EXPORT_BLOB)}")
    click.echo(f"logs             : {storage.location(lake.LOGS)} (execution_*, lake_*, deletion_*)")
    click.echo(f"Dagster instance : {os.environ['DAGSTER_HOME']}")
    click.echo("Open the UI      : make ui   (then http://127.0.0.1:3000)")


@main.group()
def bench():
    """Benchmarks that print figures side by side (see docs/PERFORMANCE.md)."""


@bench.command("lab")
@click.option("--rows", default=1_000_000, show_default=True, help="rows in the generated lab CSV")
def bench_lab(rows):
    """Lab ingest vs the seed's way (Pydantic per row) vs the floor (CSV -> one Parquet)."""
    from pdp_assets.bench import bench_lab as run

    run(rows, echo=click.echo)


@main.command()
@click.option("--port", default=3000, show_default=True)
def ui(port):
    """Start `dagster dev` (web UI + daemon) on 127.0.0.1 with this instance."""
    _home()
    os.execvp(
        sys.executable,
        [sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
    )


if __name__ == "__main__":
    main()
