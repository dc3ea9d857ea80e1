"""``pdp bench ...``: one command per benchmark; each imports its module only when it runs."""

import click


@click.group()
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
    from benchmarks.lab import bench_lab as run

    try:
        run(rows, echo=click.echo, repeat=repeat, weeks=weeks)
    except ValueError as e:
        raise click.ClickException(str(e)) from e


@bench.command("retail")
@click.option("--scale", default=1.0, show_default=True, help="data per week; 1 = the seed's 50,000 transactions")
def bench_retail(scale):
    """Bronze -> gold for one week: end-to-end time, peak memory, where the time goes."""
    from benchmarks.retail import bench_retail as run

    run(scale, echo=click.echo)


@bench.command("warehouse")
@click.option("--rows", default=100_000, show_default=True, help="rows in the loaded week window")
def bench_warehouse(rows):
    """Stage and MERGE rows/s into the local warehouse, and how the time splits."""
    from benchmarks.warehouse import bench_warehouse as run

    run(rows, echo=click.echo)


@bench.command("sensor")
@click.option("--blobs", default=10_000, show_default=True, help="small CSV blobs in the landing container")
@click.option("--connection-string", envvar="PDP_BENCH_AZURE_CONNECTION_STRING",
              help="a throwaway Azure account (e.g. Azurite) instead of a temporary folder; its landing "
              "container must be empty, and is emptied again after")
def bench_sensor(blobs, connection_string):
    """lab_landing_sensor ticks over N blobs: the first tick's time, paging, and an idle tick."""
    from benchmarks.sensor import bench_sensor as run

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
    from benchmarks.backfill import bench_backfill as run

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
    from benchmarks.backfill import bench_lake as run, parse_sizes

    try:
        run(parse_sizes(weeks), echo=click.echo, rows_per_week=rows_per_week, new_rows=new_rows,
            corrections=corrections, repeat=repeat)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
