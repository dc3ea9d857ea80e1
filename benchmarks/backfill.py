"""``pdp bench backfill`` and ``pdp bench lake``: rebuilding many weeks, and upserting into a big lake.

``bench_backfill(weeks)``: the same rebuild of N weeks (default 52: ISO 2025-W01 .. 2025-W52)
two ways, side by side:
- one run over the range: what a backfill does with ``BackfillPolicy.single_run()`` (the run
  carries ``dagster/asset_partition_range_start``/``_end`` tags);
- one run per week: what a backfill does without it (one run per partition).
For the lab lake (``lab_lake_job``: ``lab_results`` + ``lab_cdc_export`` and their blocking
checks, rebuilt from rows already staged by the intake) and for the health metrics
(``health_job``: blood pressure, heart rate, sleep, daily metrics and their checks, from the
demo sheet and Mi Band exports). Runs execute in process on a temporary SQLite instance, so the
figures hold Dagster's own per-run cost (run and event storage, step orchestration, checks)
but not the launch of a run process a daemon adds to every run.

``bench_lake(sizes)``: the upsert cost as the lake grows (default 52 and 520 weeks). For each
size a lake of that many weeks is prepared (untimed), then one new partner file (new rows and
corrections of stored rows, over the last 4 weeks) is ingested: the intake (archive, validate,
quarantine, stage), the rebuild of the weeks it touched, and the CDC export refresh (which
spans the whole lake, as ``lab_cdc_export`` does), each timed. This is the library code the
assets call (``intake.ingest_upload``, ``lake.rebuild_weeks``, ``lake.write_export``), not
Dagster runs: a 520-week lake reaches past today (2020-W01 + 520 weeks is 2029-W51), beyond the
partitions Dagster knows, so the bench's "today" is the lake's last day.

Timings are printed, never asserted: they depend on the machine.
"""

import datetime as dt
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import dagster as dg
import polars as pl

from pdp_assets.definitions import source_definitions
from pdp_assets.defs.lab_results import assets as lab_assets
from pdp_assets.defs.lab_results.checks import lake_checks
from pdp_assets.defs.lab_results.triggers import lab_lake_job
from pdp_assets.lib.health import demo as health_demo, store as health_store
from pdp_assets.lib.lab_results import intake, lake
from pdp_assets.lib.lab_results.demo import lab_results_csv
from pdp_assets.lib.partitions import FIRST_MONDAY, week_bounds, weeks_ending
from pdp_assets.lib.resources.google import LocalGoogleSource
from pdp_assets.lib.resources.storage import LocalBlobStorage
from pdp_assets.ops.runner import QUIET

health_defs = source_definitions("health")

Echo = Callable[[str], object]

LAST_WEEK = dt.date(2025, 12, 22)  # ISO 2025-W52: --weeks 52 is the whole ISO year 2025
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
BENCH_TAG = "pdp/bench"


def _iso(week: str) -> str:
    return dt.date.fromisoformat(week).strftime("%G-W%V")


def _ingest(storage: LocalBlobStorage, name: str, csv: bytes, today: dt.date) -> intake.IntakeReport:
    """A file lands and is ingested, exactly as ``lab_intake`` does it."""
    storage.write(lake.LANDING, name, csv)
    key = intake.partition_key(name, storage.info(lake.LANDING, name).etag)
    return intake.ingest_upload(storage, key, today)


def _clear(storage: LocalBlobStorage, container: str) -> None:
    shutil.rmtree(Path(storage.root) / container, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# backfill: one run over the range vs one run per week


@dataclass
class Contender:
    """One way of rebuilding the weeks: its time, its runs, and what it built."""

    seconds: float
    runs: int
    failed: int
    built: pl.DataFrame


def bench_definitions(storage: LocalBlobStorage, google: LocalGoogleSource) -> dg.Definitions:
    """The lab lake job and the health job with their assets and checks, on local resources."""
    lab = dg.Definitions(
        assets=dg.load_assets_from_modules([lab_assets]), asset_checks=lake_checks, jobs=[lab_lake_job]
    )
    return dg.Definitions.merge(lab, health_defs, dg.Definitions(resources={"storage": storage, "google": google}))


def _timed_runs(job: dg.JobDefinition, instance: dg.DagsterInstance, weeks: list[str], per_week: bool,
                label: str) -> tuple[float, int]:
    """Execute ``job`` over ``weeks`` as one range run or one run per week; (seconds, failed runs)."""
    if per_week:
        requests = [dict(partition_key=wk, tags={BENCH_TAG: label}) for wk in weeks]
    else:
        requests = [dict(tags={RANGE_START: weeks[0], RANGE_END: weeks[-1], BENCH_TAG: label})]
    failed = 0
    start = time.perf_counter()
    for request in requests:
        result = job.execute_in_process(instance=instance, run_config=QUIET, raise_on_error=False, **request)
        failed += not result.success
    return time.perf_counter() - start, failed


def _lab_built(storage: LocalBlobStorage, weeks: list[str]) -> pl.DataFrame:
    frames = [lake.read_lake_week(storage, wk).with_columns(week=pl.lit(wk)) for wk in weeks]
    return pl.concat(frames).sort("sample_id")


def _health_built(storage: LocalBlobStorage, weeks: list[str]) -> pl.DataFrame:
    frames = [health_store.read_week(storage, "health_daily_metrics", wk, {}) for wk in weeks]
    frames = [f for f in frames if f.height]
    return pl.concat(frames).sort("date") if frames else pl.DataFrame()


def _run_count(instance: dg.DagsterInstance, label: str) -> int:
    return instance.get_runs_count(dg.RunsFilter(tags={BENCH_TAG: label}))


def _compare(
    instance: dg.DagsterInstance, job: dg.JobDefinition, weeks: list[str], clear: Callable[[], None],
    built: Callable[[], pl.DataFrame], name: str,
) -> tuple[Contender, Contender]:
    """Warm up on one week (imports, first-time caches), then each contender on an empty output."""
    clear()
    _timed_runs(job, instance, weeks[:1], per_week=True, label=f"{name}-warmup")
    out = []
    for per_week in (False, True):
        label = f"{name}-{'per-week' if per_week else 'range'}"
        clear()
        seconds, failed = _timed_runs(job, instance, weeks, per_week, label)
        out.append(Contender(seconds, _run_count(instance, label), failed, built()))
    return out[0], out[1]


def bench_backfill(weeks: int = 52, echo: Echo = print, rows_per_week: int = 2_000, health: bool = True) -> dict:
    """Rebuild ``weeks`` weeks of the lab lake (and the health metrics) as one run and as one run
    per week; print them side by side. Returns the figures (for tests and reports)."""
    keys = weeks_ending(weeks, LAST_WEEK)
    first_day, last_day = week_bounds(keys[0])[0], week_bounds(keys[-1])[1]
    today = dt.datetime.now(dt.timezone.utc).date()
    with tempfile.TemporaryDirectory(prefix="pdp-bench-backfill-") as tmp:
        root = Path(tmp)
        storage = LocalBlobStorage(root=str(root / "pdp"))
        google = LocalGoogleSource(root=str(root / "pdp" / "google"))
        # Untimed: the partner file is ingested (its valid rows staged by week), the demo health
        # data written. The lake and the metrics are then built from them, twice.
        csv = lab_results_csv(rows_per_week * weeks, first_day, weeks * 7, seed=1)
        report = _ingest(storage, "bench_backfill.csv", csv, today)
        if health:
            # (at least 8 weeks: the demo places its typos at fixed rows)
            health_demo.write_demo_data(Path(google.root), days=max(weeks, 8) * 7, end=last_day)
        defs = bench_definitions(storage, google)
        (root / "dagster").mkdir()
        instance = dg.DagsterInstance.local_temp(str(root / "dagster"), overrides={"telemetry": {"enabled": False}})
        try:
            figures = {"weeks": weeks, "first": keys[0], "last": keys[-1], "rows_valid": report.rows_valid}
            lab = _compare(instance, defs.resolve_job_def("lab_lake_job"), keys,
                           lambda: _clear(storage, lake.DATA), lambda: _lab_built(storage, keys), "lab")
            figures["lab"] = lab
            if health:
                figures["health"] = _compare(instance, defs.resolve_job_def("health_job"), keys,
                                             lambda: _clear(storage, health_store.CONTAINER),
                                             lambda: _health_built(storage, keys), "health")
        finally:
            instance.dispose()

    echo(
        f"backfill bench: {weeks} weeks {keys[0]} .. {keys[-1]} ({_iso(keys[0])} .. {_iso(keys[-1])}),"
        f" in-process runs on a temporary SQLite instance, {os.cpu_count()} cores"
    )
    echo(f"lab: {report.rows_read:,} rows ingested first ({report.rows_valid:,} valid, staged by week);"
         f" health: demo sheet and Mi Band exports ending {last_day}")
    rows = [("lab lake (lab_lake_job)", *lab)]
    if health:
        rows.append(("health metrics (health_job)", *figures["health"]))
    width = max(len(r[0]) for r in rows)
    echo(f"{'rebuild':<{width}}  {'one run':>9}  {'runs':>4}  {'run per week':>12}  {'runs':>4}"
         f"  {'s/run':>6}  per-week/one-run")
    for name, one, each in rows:
        echo(f"{name:<{width}}  {one.seconds:>7.2f} s  {one.runs:>4}  {each.seconds:>10.2f} s  {each.runs:>4}"
             f"  {each.seconds / max(each.runs, 1):>6.2f}  {each.seconds / one.seconds:.1f}x")
    for name, one, each in rows:
        same = one.built.equals(each.built)
        echo(f"{name.split(' (')[0]}: {one.built.height:,} rows built by both, identical: {'yes' if same else 'NO'};"
             f" failed runs: {one.failed + each.failed}")
        figures.setdefault("identical", {})[name] = same
        figures["failed_runs"] = figures.get("failed_runs", 0) + one.failed + each.failed
    return figures


# ---------------------------------------------------------------------------------------------
# lake: one new file into a lake of 52 vs 520 weeks


@dataclass
class Upsert:
    weeks: int
    lake_rows: int
    prepare: float
    intake: float
    rebuild: float
    export: float
    inserted: int
    updated: int
    quarantined: int
    touched: int

    @property
    def upsert(self) -> float:
        return self.intake + self.rebuild


def _prepare_lake(storage: LocalBlobStorage, weeks: int, rows_per_week: int, today: dt.date) -> tuple[int, float]:
    """A lake of ``weeks`` weeks from 2020-W01, ingested a year (52 weeks) per file, every week
    rebuilt and the export written; (lake rows, seconds)."""
    start = time.perf_counter()
    for i, offset in enumerate(range(0, weeks, 52)):
        span = min(52, weeks - offset)
        first = FIRST_MONDAY + dt.timedelta(weeks=offset)
        csv = lab_results_csv(rows_per_week * span, first, span * 7, seed=10 + i, bad_share=0.0)
        _ingest(storage, f"history_{i:02d}.csv", csv, today)
    keys = [(FIRST_MONDAY + dt.timedelta(weeks=i)).isoformat() for i in range(weeks)]
    changes = lake.rebuild_weeks(storage, keys)
    lake.write_export(storage)
    return sum(c.rows for c in changes), time.perf_counter() - start


def upsert_file(storage: LocalBlobStorage, weeks: list[str], new_rows: int, corrections: int) -> bytes:
    """A partner's new file over ``weeks``: ``new_rows`` new results (with the usual share of
    mistakes) and ``corrections`` stored results sent again with a new viral load."""
    first = dt.date.fromisoformat(weeks[0])
    last = first + dt.timedelta(days=len(weeks) * 7 - 1)
    fresh = pl.read_csv(lab_results_csv(new_rows, first, len(weeks) * 7, seed=99), infer_schema=False)
    # The demo's future-date typo is relative to the real today; keep it in the future for any lake.
    dated = pl.col("test_date").str.to_date("%Y-%m-%d", strict=False)
    fresh = fresh.with_columns(
        pl.when(dated.is_not_null() & ~dated.is_between(first, last))
        .then(pl.lit("2099-12-31"))
        .otherwise(pl.col("test_date"))
        .alias("test_date")
    )
    stored = pl.concat([lake.read_lake_week(storage, wk) for wk in weeks]).head(corrections)
    fixed = stored.select(
        "sample_id",
        pl.col("test_date").dt.strftime("%Y-%m-%d"),
        pl.lit("POS").alias("result"),
        (pl.col("viral_load") + 1000).cast(pl.String).alias("viral_load"),
    )
    return pl.concat([fresh, fixed]).write_csv().encode()


def _upsert_once(prepared: Path, work: Path, touched: list[str], new_rows: int, corrections: int,
                 today: dt.date) -> tuple[float, float, float, intake.IntakeReport, list[lake.WeekChange]]:
    shutil.copytree(prepared, work)  # untimed: a fresh copy of the prepared lake
    storage = LocalBlobStorage(root=str(work))
    name = "partner_update.csv"
    storage.write(lake.LANDING, name, upsert_file(storage, touched, new_rows, corrections))
    key = intake.partition_key(name, storage.info(lake.LANDING, name).etag)

    t0 = time.perf_counter()
    report = intake.ingest_upload(storage, key, today)
    t1 = time.perf_counter()
    changes = lake.rebuild_weeks(storage, report.weeks)  # as lab_results does
    t2 = time.perf_counter()
    lake.write_export(storage)  # as lab_cdc_export does: the whole lake
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, report, changes


def bench_lake(
    sizes: Sequence[int] = (52, 520), echo: Echo = print, rows_per_week: int = 2_000, new_rows: int = 10_000,
    corrections: int = 1_000, repeat: int = 3, touched_weeks: int = 4,
) -> list[Upsert]:
    """Ingest one new file into lakes of each size; print the costs side by side."""
    sizes = sorted(set(sizes))
    if not sizes or sizes[0] < 1:
        raise ValueError("--weeks takes lake sizes in weeks, e.g. 52,520")
    touched_weeks = min(touched_weeks, sizes[0])
    results = []
    for weeks in sizes:
        last_day = FIRST_MONDAY + dt.timedelta(weeks=weeks, days=-1)
        # The lake's last day is the bench's today (the future-date rule would refuse a later lake).
        today = max(last_day, dt.datetime.now(dt.timezone.utc).date())
        keys = [(FIRST_MONDAY + dt.timedelta(weeks=i)).isoformat() for i in range(weeks)]
        touched = keys[-touched_weeks:]
        with tempfile.TemporaryDirectory(prefix="pdp-bench-lake-") as tmp:
            prepared = Path(tmp) / "prepared"
            lake_rows, prepare = _prepare_lake(LocalBlobStorage(root=str(prepared)), weeks, rows_per_week, today)
            best: Optional[tuple] = None
            for i in range(max(1, repeat)):
                run = _upsert_once(prepared, Path(tmp) / f"run{i}", touched, new_rows, corrections, today)
                if best is None or sum(run[:3]) < sum(best[:3]):
                    best = run
                shutil.rmtree(Path(tmp) / f"run{i}")
        intake_s, rebuild_s, export_s, report, changes = best
        results.append(Upsert(
            weeks=weeks, lake_rows=lake_rows, prepare=prepare, intake=intake_s, rebuild=rebuild_s, export=export_s,
            inserted=sum(c.inserted for c in changes), updated=sum(c.updated for c in changes),
            quarantined=report.rows_quarantined, touched=len(report.weeks),
        ))

    small, big = results[0], results[-1]
    echo(
        f"lake upsert bench: one new file ({new_rows:,} new rows + {corrections:,} corrections over the last"
        f" {touched_weeks} weeks) into lakes of {', '.join(str(s) for s in sizes)} weeks, {rows_per_week:,} rows a"
        f" week from {FIRST_MONDAY}; best of {max(1, repeat)}; {os.cpu_count()} cores"
    )
    width = 34
    head = "".join(f"{f'{r.weeks} weeks':>14}" for r in results)
    ratio_head = f"  {big.weeks}/{small.weeks}" if len(results) > 1 else ""
    echo(f"{'':<{width}}{head}{ratio_head}")

    def line(label: str, values: list[float], fmt: Callable[[float], str]) -> None:
        ratio = f"  {values[-1] / values[0]:.1f}x" if len(values) > 1 and values[0] else ""
        echo(f"{label:<{width}}{''.join(f'{fmt(v):>14}' for v in values)}{ratio}")

    seconds = lambda v: f"{v:.3f} s"  # noqa: E731
    line("lake rows", [r.lake_rows for r in results], lambda v: f"{v:,.0f}")
    line("intake (archive, validate, stage)", [r.intake for r in results], seconds)
    line("rebuild touched weeks", [r.rebuild for r in results], seconds)
    line("upsert (intake + rebuild)", [r.upsert for r in results], seconds)
    line("CDC export refresh (whole lake)", [r.export for r in results], seconds)
    line("upsert + export", [r.upsert + r.export for r in results], seconds)
    for r in results:
        echo(f"{r.weeks} weeks: inserted {r.inserted:,}, updated {r.updated:,}, quarantined {r.quarantined:,},"
             f" weeks touched {r.touched}; lake prepared in {r.prepare:.1f} s")
    return results


def parse_sizes(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--weeks {text!r}: give lake sizes in weeks, e.g. 52,520") from None

