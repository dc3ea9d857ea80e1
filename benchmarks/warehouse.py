"""``pdp bench warehouse --rows N``: stage and merge throughput of one lab week on the local warehouse.

It runs the production statements (``sql.stage_window``: Parquet, PUT, COPY INTO; then
``sql.merge_window``) on the local fakesnow warehouse in a temporary folder: a first MERGE
into an empty target (all inserts) and a second one of the same rows (all updates, what a
re-run costs). Timings are printed, never asserted: they depend on the machine.
"""

import datetime as dt
import tempfile
import time
import warnings
from typing import Callable

import polars as pl

from pdp_assets.lib.lab_results.lake import LAKE_SCHEMA
from pdp_assets.lib.resources.warehouse import LocalWarehouse
from pdp_assets.lib.warehouse import sql
from pdp_assets.lib.warehouse.config import load_config

WEEK = "2024-01-01"


def _rows(n: int) -> pl.DataFrame:
    monday = dt.date.fromisoformat(WEEK)
    return pl.DataFrame(
        {
            "SAMPLE_ID": [f"B{i:09d}" for i in range(n)],
            "TEST_DATE": [monday + dt.timedelta(days=i % 7) for i in range(n)],
            "RESULT": [("POS", "NEG", "N/A")[i % 3] for i in range(n)],
            "VIRAL_LOAD": list(range(n)),
        },
        schema={k.upper(): v for k, v in LAKE_SCHEMA.items()},
    )


def bench_warehouse(rows: int = 100_000, echo: Callable[[str], None] = print) -> None:
    cfg = load_config()
    load = next(item for item in cfg.loads if item.name == "lab_results")
    frame = _rows(rows)
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="pdp-bench-wh-") as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")  # fakesnow's, not ours
        warehouse = LocalWarehouse(db_path=tmp)
        with warehouse.connect() as conn:
            cur = conn.cursor()
            sql.ensure_tables(cur, load, frame, cfg.stage_area)
            for step, load_id in (("first", "bench__a1"), ("again", "bench__a2")):
                start = time.perf_counter()
                staged = sql.stage_window(cur, load, cfg.stage_area, frame, WEEK, load_id)
                timings[f"stage ({step})"] = time.perf_counter() - start
                start = time.perf_counter()
                inserted, updated = sql.merge_window(cur, load, load_id)
                timings[f"merge ({step}: {inserted} inserted, {updated} updated)"] = time.perf_counter() - start
                assert staged == rows and inserted + updated == rows, (staged, inserted, updated)
        echo(f"warehouse bench: {rows:,} lab rows, one week, {warehouse.describe().split(' ')[0]} (local)")
        total = sum(timings.values())
        for name, seconds in timings.items():
            echo(f"  {name:<48} {seconds:7.3f} s  {rows / seconds:>12,.0f} rows/s  {100 * seconds / total:5.1f}%")
        stage = sum(s for n, s in timings.items() if n.startswith("stage"))
        merge = total - stage
        echo(f"  split: stage {100 * stage / total:.0f}% / merge {100 * merge / total:.0f}% of {total:.3f} s")
