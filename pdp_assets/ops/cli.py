"""``pdp``: the operator command. Every subcommand works on the same storage and Dagster
instance as the UI (``$PDP_HOME``, ``$DAGSTER_HOME``), so what it does shows in the UI."""

import os
import sys
from pathlib import Path

import click

from benchmarks.cli import bench
from pdp_assets.ops.home import dagster_home, initialised, instance as _instance, REPO, storage as _storage


def _read_csv_file(path: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise click.ClickException(f"{path}: no such file")
    if p.suffix.lower() != ".csv":
        raise click.ClickException(f"{path}: only .csv files are accepted")
    return p.read_bytes()


class _Commands(click.Group):
    """Every command: a service that cannot be reached or refuses is one line and exit 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except Exception as error:
            from pdp_assets.ops.service_errors import describe

            sentence = describe(error)
            if sentence is None:
                raise
            raise click.ClickException(sentence) from None


@click.group(cls=_Commands)
def main():
    """Operate pdp_assets: upload lab files, fix quarantined rows, request deletions, run the
    sensors once, export, benchmark. Storage: $PDP_HOME (default ./.pdp) or Azure with
    PDP_STORAGE=azure; instance: $DAGSTER_HOME (default $PDP_HOME/dagster)."""


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
def upload(file):
    """Put a CSV into the landing zone under a safe, unique name."""
    from pdp_assets.lib.lab_results import actions, lake

    from pdp_assets.lib.lab_results.intake import max_upload_mb, safe_blob_name

    data = _read_csv_file(file)
    if len(data) > max_upload_mb() * 1024 * 1024:
        raise click.ClickException(f"{file}: {len(data) / 1024 / 1024:,.1f} MB is more than the {max_upload_mb()} MB "
                                   "an upload may be (PDP_MAX_UPLOAD_MB); split the file and upload the parts")
    name = safe_blob_name(file)
    storage = _storage()
    storage.write(lake.LANDING, name, data)
    actions.record(storage, actions.UPLOAD, name, actions.os_user(), details=f"{Path(file).name}, {len(data)} bytes")
    click.echo(f"uploaded {file} ({len(data)} bytes) as {storage.location(lake.LANDING, name)}")


@main.command("delete-request")
@click.argument("file", type=click.Path(dir_okay=False))
def delete_request(file):
    """File a deletion request: a CSV with sample_id and test_date columns."""
    from pdp_assets.lib.lab_results import actions, lake
    from pdp_assets.lib.lab_results.deletions import MalformedRequest, parse_request
    from pdp_assets.lib.lab_results.intake import safe_blob_name

    data = _read_csv_file(file)
    try:
        pairs = parse_request(data)
    except MalformedRequest as e:
        raise click.ClickException(f"{file}: not filed: {e}")
    storage = _storage()
    name = safe_blob_name(file)
    storage.write(lake.DELETION_REQUESTS, name, data)
    actions.record(storage, actions.FILE_REQUEST, name, actions.os_user(), details=f"{pairs.height} record(s)")
    click.echo(f"filed {pairs.height} record(s) for deletion as {storage.location(lake.DELETION_REQUESTS, name)}")


def _waiting_group(group: str, container: str, what: str, verb: str, help_: str) -> None:
    """``pdp <group> list`` and ``pdp <group> <verb> NAME --reason``: the files (``what``) waiting in
    a drop container, and withdrawing one before a run takes it (recorded in the action log)."""

    @main.group(group, help=help_)
    def commands():
        pass

    @commands.command("list", help=f"Waiting {what}, oldest first, with who sent them.")
    def list_():
        from pdp_assets.lib.lab_results import actions

        storage = _storage()
        files = sorted((b for b in storage.list_blobs(container) if "/" not in b.name), key=lambda b: b.last_modified)
        if not files:
            click.echo(f"no {what} waiting")
        for b in files:
            by = actions.filed_by(storage, actions.FILED[container], b.name)
            click.echo(f"{b.name}\t{b.size} bytes\t{b.last_modified:%Y-%m-%d %H:%M:%S}\tby {by}")

    @commands.command(verb, help=f"{verb.capitalize()} one of the {what} no run has taken yet (recorded in the action log).")
    @click.argument("name")
    @click.option("--reason", required=True, help="why (kept in the action log, with your user name)")
    def withdraw(name, reason):
        from pdp_assets.lib.lab_results import actions

        try:
            claim = actions.withdraw(_storage(), container, name, actions.os_user(), reason)
        except (ValueError, FileNotFoundError, actions.Taken) as e:
            raise click.ClickException(f"{name}: {e}")
        click.echo(f"{name}: {actions.describe_withdrawal(claim)}")


# Container names spelled out: importing lake here would load Polars for every command.
_waiting_group("landing", "landing-zone", "uploads", "remove",
               "Uploads waiting in the landing zone: list them, remove a wrong one before it is processed.")
_waiting_group("requests", "deletion-requests", "deletion requests", "cancel",
               "Deletion requests waiting to run: list them, cancel one before it runs.")


@main.command("actions")
@click.option("--last", default=20, show_default=True, help="how many, newest first")
def actions_log(last):
    """What operators did: uploads, fixes, discards, deletion requests, removals, with who and why."""
    from pdp_assets.lib.lab_results import actions

    log = actions.action_log(_storage()).head(last)
    if not log.height:
        click.echo("no action recorded yet")
    for r in log.iter_rows(named=True):
        why = f"\t{r['reason']}" if r["reason"] else ""
        click.echo(f"{r['logged_at']}\t{r['action']}\t{r['file']}\tby {r['by']}{why}\t{r['details'] or ''}")


@main.group()
def quarantine():
    """Inspect quarantined rows and re-ingest fixed ones."""


@quarantine.command("list")
def quarantine_list():
    """Quarantine files with their row counts and most common reasons."""
    from pdp_assets.lib.lab_results.intake import quarantine_files

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
    from pdp_assets.lib.lab_results import lake

    storage = _storage()
    if not storage.exists(lake.QUARANTINE, name):
        raise click.ClickException(f"no quarantine file {name!r}; see `pdp quarantine list`")
    sys.stdout.write(storage.read(lake.QUARANTINE, name).decode("utf-8", errors="replace"))


@quarantine.command("discard")
@click.argument("name")
@click.option("--reason", required=True, help="why (kept in the action log, with your user name)")
def quarantine_discard(name, reason):
    """Remove a quarantine file without re-ingesting its rows (they stay in the upload's archived
    copy); recorded in the action log."""
    from pdp_assets.lib.lab_results import actions
    from pdp_assets.lib.lab_results.intake import discard_quarantine

    try:
        rows = discard_quarantine(_storage(), name, actions.os_user(), reason)
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(f"{name}: {e}; see `pdp quarantine list`")
    click.echo(f"discarded {name} ({rows} row(s))")


@quarantine.command("reingest")
@click.argument("fixed", type=click.Path(dir_okay=False))
@click.option("--resolves", help="the quarantine file this fixes (default: the one with FIXED's file name)")
def quarantine_reingest(fixed, resolves):
    """Send fixed rows back through the landing zone; the same validation applies. The
    quarantine file they came from is removed only after the new landing file is written."""
    import io

    import polars as pl

    from pdp_assets.lib.lab_results import actions, lake
    from pdp_assets.lib.lab_results.intake import reingest

    data = _read_csv_file(fixed)
    # As `pdp quarantine show` gave it: cells that would run as formulas carry a quote, taken off here.
    frame = lake.restore_formulas(pl.read_csv(io.BytesIO(data), infer_schema=False, encoding="utf8-lossy",
                                              raise_if_empty=False))
    storage = _storage()
    resolves = resolves or Path(fixed).name
    sent = reingest(storage, frame, resolves, actions.os_user())
    click.echo(f"re-ingesting {sent.rows} row(s) as {storage.location(lake.LANDING, sent.landing_blob)}")
    if sent.removed:
        click.echo(f"removed quarantine file {resolves}")
    else:
        click.echo(f"no quarantine file {resolves!r} to remove (pass --resolves NAME to name it)")


@main.command()
def ingest():
    """Evaluate the landing, deletion and lake sensors once and run what they request, now,
    on the instance at $DAGSTER_HOME. Exits non-zero if any run fails."""
    import datetime as dt

    from pdp_assets.definitions import build_definitions
    from pdp_assets.lib.lab_results.summary import summarise
    from pdp_assets.ops.runner import evaluate_and_run
    from pdp_assets.ops.service_errors import run_failure

    # To the second: Azure stamps blobs to the second, so a log written now is not missed.
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    instance = _instance()
    summary = evaluate_and_run(build_definitions(), instance, echo=click.echo)
    for sensor, reason in summary.skipped.items():
        click.echo(f"{sensor}: {reason}")
    if summary.runs:
        for line in summarise(_storage(), started).lines():
            click.echo(line)
    if summary.failed:
        reasons = {run_failure(instance, r.run_id) for r in summary.failed}
        raise click.ClickException(f"{len(summary.failed)} run(s) failed: " + "; ".join(sorted(reasons)))


@main.command()
@click.option("--out", type=click.Path(dir_okay=False), help="also copy the export to this local file")
def export(out):
    """Refresh data/final_cdc_export.csv from the lake (a lab_cdc_export materialization)."""
    from pdp_assets.definitions import build_definitions
    from pdp_assets.lib.lab_results import lake
    from pdp_assets.lib.partitions import weekly_partitions

    from pdp_assets.ops.runner import QUIET
    from pdp_assets.ops.service_errors import run_failure

    last_week = weekly_partitions.get_last_partition_key()
    instance = _instance()
    result = build_definitions().resolve_job_def("lab_export_job").execute_in_process(
        instance=instance, partition_key=last_week, raise_on_error=False, run_config=QUIET
    )
    if not result.success:
        raise click.ClickException(f"export: {run_failure(instance, result.run_id)}")
    storage = _storage()
    data = storage.read(lake.DATA, lake.EXPORT_BLOB)
    rows = data.count(b"\n") - 1
    click.echo(f"export: {rows} rows at {storage.location(lake.DATA, lake.EXPORT_BLOB)}")
    if out:
        Path(out).write_bytes(data)
        click.echo(f"copied to {out}")


@main.command()
@click.option("--files", default=3, show_default=True, help="lab CSV files to drop into the landing zone")
@click.option("--rows", default=2000, show_default=True, help="rows per lab file")
@click.option("--retail-scale", default=0.05, show_default=True, help="retail data per week (1 = the seed's 50,000 transactions)")
def demo(files, rows, retail_scale):
    """Generate demo data for the last 8 weeks, run every pipeline on it, print a summary."""
    from pdp_assets.ops.demo import run_demo

    run_demo(files, rows, retail_scale, ingest=lambda: click.get_current_context().invoke(ingest))


@main.group()
def warehouse():
    """The warehouse loads (loads.yaml; PDP_WAREHOUSE_LOADS names another file)."""


@warehouse.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
def warehouse_validate(file):
    """Check a loads file as the code location would (fields, names, source assets) before using it."""
    from pdp_assets.definitions import build_definitions, materializable_keys
    from pdp_assets.lib.warehouse.config import check_sources, load_config, WarehouseConfigError

    try:
        cfg = load_config(Path(file))
        check_sources(cfg, materializable_keys(build_definitions()), file)
    except WarehouseConfigError as e:
        raise click.ClickException(f"not valid:\n{e}")
    for load in cfg.loads:
        state = "" if load.enabled else " (disabled)"
        click.echo(f"{load.name}{state}: {load.source.asset} -> {load.target_table}, merge on {', '.join(load.merge_keys)}")
    click.echo(f"{file}: valid, {len(cfg.enabled)} enabled load(s); use it with PDP_WAREHOUSE_LOADS={file}")


@main.command()
@click.argument("query")
def sql(query):
    """Run one SQL statement on the warehouse (fakesnow under $PDP_HOME, or Snowflake with
    PDP_WAREHOUSE=snowflake) and print the rows: e.g. the drive-table queries in the README."""
    import polars as pl

    from pdp_assets.defs.resources import warehouse_resource

    warehouse = initialised(warehouse_resource())
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


@main.command()
@click.option("--port", default=3000, show_default=True)
def ui(port):
    """Start `dg dev` (web UI + daemon) with this instance, behind a guard on 127.0.0.1:PORT that
    refuses what a web page could send it (another Host, another origin, a mutation by GET)."""
    import signal
    import socket
    import subprocess

    from pdp_assets.ops import ui_guard

    dagster_home()
    with socket.socket() as s:  # a free port for the webserver itself
        s.bind(("127.0.0.1", 0))
        inner = s.getsockname()[1]
    dg = str(Path(sys.executable).with_name("dg"))
    # dg dev serves the project [tool.dg] in pyproject.toml names; it dies with this process.
    child = subprocess.Popen([dg, "dev", "-h", "127.0.0.1", "-p", str(inner)],
                             cwd=REPO, preexec_fn=_child_setup)
    click.echo(f"Dagster UI: http://127.0.0.1:{port}/ (webserver and daemon: dg dev, pid {child.pid})")

    def stop_when_dg_dev_ends():  # a webserver that is gone leaves nothing to guard
        child.wait()
        os.kill(os.getpid(), signal.SIGINT)

    import threading

    threading.Thread(target=stop_when_dg_dev_ends, daemon=True).start()
    try:
        ui_guard.serve(port, inner)
    except KeyboardInterrupt:  # uvicorn raises the SIGINT it handled again once it has stopped
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopping already: another Ctrl-C changes nothing
        # dg dev stops its webserver, daemon and code servers on SIGINT; harder only if it hangs.
        for sig, wait in ((signal.SIGINT, 60), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            if child.poll() is None:
                child.send_signal(sig)
            try:
                child.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
    sys.exit(child.returncode if child.returncode and child.returncode > 0 else 0)


def _child_setup() -> None:
    """In dg dev's process: SIGINT as usual (a shell's `&` ignores it in background jobs), and
    SIGTERM when `pdp ui` dies, even by kill -9 (Linux)."""
    import ctypes
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@main.command()
@click.option("--port", default=8501, show_default=True)
@click.option("--no-password", is_flag=True,
              help="serve without sign-in: only on a machine nobody else uses (a warning shows on every page)")
def admin(port, no_password):
    """Start the admin console (Streamlit) on 127.0.0.1: upload, fix quarantine, deletions, runs,
    reports, health dashboard. Asks for PDP_ADMIN_PASSWORD; see docs/admin.md."""
    from pdp_assets.ops.admin.settings import APP, max_upload_mb, password

    if no_password:
        os.environ["PDP_ADMIN_NO_PASSWORD"] = "1"
    elif not password() and os.environ.get("PDP_ADMIN_NO_PASSWORD") != "1":
        raise click.ClickException("set PDP_ADMIN_PASSWORD (every page asks for it and a name), or pass "
                                   "--no-password on a machine only you use")
    os.execvp(
        sys.executable,
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.address", "127.0.0.1",
         "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none", "--server.maxUploadSize", str(max_upload_mb()),
         "--client.toolbarMode", "minimal"],
    )


main.add_command(bench)

if __name__ == "__main__":
    main()
