"""``pdp bench retail --scale K``: one week of the retail medallion, bronze -> gold, in local
Spark, with where the time goes and the peak memory.

It runs exactly what production runs (``retail_job`` in process: generate, clean, enrich,
aggregate, and every Pandera check) on a fresh lake in a temporary folder. Scale 1 is one week
of the seed's data set (10,000 customers, 200 products, 50,000 transactions). Timings are
printed, never asserted: they depend on the machine.
"""

import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import dagster as dg
import psutil
from pyspark.sql import SparkSession

from pdp_assets.definitions import source_definitions
from pdp_assets.lib.resources.spark import LocalSpark
from pdp_assets.lib.retail.generator import Sizes
from pdp_assets.ops.runner import QUIET

retail_defs = source_definitions("retail")

BENCH_WEEK = "2024-12-30"  # ISO 2025-W01


def _peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process (Linux VmHWM), in MB; 0 where unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _step_seconds(instance: dg.DagsterInstance, run_id: str) -> dict[str, float]:
    started, seconds = {}, {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[event.step_key] = record.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            seconds[event.step_key] = record.timestamp - started.get(event.step_key, record.timestamp)
    return seconds


def bench_retail(scale: float, echo: Callable[[str], None] = print) -> None:
    """Materialize one week bronze -> gold at ``scale`` and print time and memory."""
    sizes = Sizes.at(scale)
    with tempfile.TemporaryDirectory(prefix="pdp-bench-retail-") as tmp:
        spark = LocalSpark(root=tmp)
        already = SparkSession.getActiveSession() is not None  # one session per process: reused
        start = time.perf_counter()
        session = spark.session
        startup = time.perf_counter() - start
        defs = dg.Definitions.merge(retail_defs, dg.Definitions(resources={"spark": spark}))
        instance = dg.DagsterInstance.ephemeral()
        start = time.perf_counter()
        result = defs.resolve_job_def("retail_job").execute_in_process(
            partition_key=BENCH_WEEK,
            run_config={**QUIET, "ops": {"retail_bronze": {"config": {"scale": scale}}}},
            instance=instance,
            raise_on_error=False,
        )
        total = time.perf_counter() - start
        steps = _step_seconds(instance, result.run_id)
        raw = {
            m.asset_key.to_user_string(): m.metadata["dagster/row_count"].value
            for m in (e.event_specific_data.materialization for e in result.get_asset_materialization_events())
        }
        failed_checks = [e.asset_key.to_user_string() for e in result.get_asset_check_evaluations() if not e.passed]

    def layer(prefix: str) -> float:
        return sum(s for k, s in steps.items() if k.startswith(prefix) and not k.endswith("_pandera_schema"))

    checks = sum(s for k, s in steps.items() if k.endswith("_pandera_schema"))
    rows = [
        ("spark start-up", startup, "already running in this process" if already else f"master {session.conf.get('spark.master')}"),
        ("bronze: generate + write 3 tables", layer("retail_bronze"), "includes the JVM's first-job warm-up"),
        ("silver: clean + enrich 3 tables", layer("retail_silver"), ""),
        ("gold: 5 analytics tables", layer("retail_gold"), ""),
        ("checks: 11 Pandera asset checks", checks, ""),
        ("dagster (plan, events, metadata)", total - sum(steps.values()), ""),
    ]
    transactions = raw.get("retail_bronze_transactions", 0)
    echo(
        f"retail bench: scale {scale:g}, 1 week ({BENCH_WEEK}, year=2025/week=01): {sizes.customers:,} customers,"
        f" {sizes.products:,} products, {sizes.transactions:,} transactions ({transactions:,} raw rows with"
        f" duplicates); local Spark, {os.cpu_count()} cores"
    )
    for name, seconds, note in rows:
        echo(f"  {name:<34} {seconds:7.2f} s  {note}".rstrip())
    echo(f"end-to-end bronze -> gold: {total:.2f} s ({total + startup:.2f} s with Spark start-up);"
         f" run {'succeeded' if result.success else 'FAILED'}")
    per_100k = total / (sizes.transactions / 100_000)
    echo(f"per 100,000 transactions: {per_100k:.2f} s")
    jvm = [p for p in psutil.Process().children(recursive=True) if p.name() == "java"]
    driver, jvm_mb = _peak_rss_mb(os.getpid()), sum(_peak_rss_mb(p.pid) for p in jvm)
    echo(f"peak memory: {driver + jvm_mb:,.0f} MB (python driver {driver:,.0f} MB + Spark JVM {jvm_mb:,.0f} MB)")
    echo("rows written: " + ", ".join(f"{k.removeprefix('retail_')} {n:,}" for k, n in raw.items()))
    if failed_checks:
        echo(f"checks failing: {', '.join(failed_checks)}")
