"""``pdp bench sensor``: lab_landing_sensor ticks over a landing container holding many blobs.

Fills the landing container of a throwaway storage (a temporary folder, or an Azure account
given by connection string, e.g. Azurite) with N small CSV blobs, then evaluates the sensor the
way the daemon does, with ``build_sensor_context`` and the storage resource, carrying its cursor
from tick to tick: the first tick (timed), the ticks that page through the rest (the sensor asks
for at most ``MAX_FILES_PER_TICK`` runs per tick), and one more tick that must request nothing.
Every blob must be requested exactly once over all ticks.

What is timed is the sensor's own evaluation (listing, cursor, run requests); the daemon then
stores the cursor and creates the runs, which is not part of the figure.
"""

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional

import dagster as dg

from pdp_assets.defs.lab_results.triggers import lab_landing_sensor, MAX_FILES_PER_TICK
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.resources.storage import AzureBlobStorage, BlobStorage, LocalBlobStorage

Echo = Callable[[str], object]
ROW = "sample_id,test_date,result,viral_load\nS{i:06d},2024-01-01,NEG,0\n"


@dataclass
class Tick:
    seconds: float
    requests: int
    partitions_added: int
    cursor_bytes: int
    skip_reason: str = ""


@dataclass
class SensorBench:
    blobs: int
    storage: str
    fill_seconds: float = 0.0
    list_seconds: float = 0.0  # listing the landing container alone: the part no sensor code can save
    ticks: list[Tick] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)  # partition keys, in request order

    @property
    def first(self) -> Tick:
        return self.ticks[0]

    @property
    def idle(self) -> Tick:
        """The tick after everything was requested."""
        return self.ticks[-1]


def fill_landing(storage: BlobStorage, blobs: int, workers: int = 16) -> float:
    """Write ``blobs`` small CSVs into the landing container; seconds taken."""
    started = time.perf_counter()

    def put(i: int) -> None:
        storage.write(lake.LANDING, f"bench_{i:06d}.csv", ROW.format(i=i).encode())

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(put, range(blobs)))
    return time.perf_counter() - started


def tick(storage: BlobStorage, instance: dg.DagsterInstance, cursor: Optional[str]) -> tuple[dg.SensorResult, float]:
    """One evaluation of lab_landing_sensor, as the daemon runs it; (result, seconds)."""
    started = time.perf_counter()
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"storage": storage}) as context:
        result = lab_landing_sensor(context)
    return result, time.perf_counter() - started


def run_ticks(storage: BlobStorage, instance: dg.DagsterInstance, blobs: int, label: str) -> SensorBench:
    """Tick until a tick requests nothing; that idle tick is the last one recorded."""
    bench = SensorBench(blobs=blobs, storage=label)
    cursor = None
    max_ticks = blobs // MAX_FILES_PER_TICK + 3
    for _ in range(max_ticks):
        result, seconds = tick(storage, instance, cursor)
        keys = [r.partition_key for r in result.run_requests]
        added = sum(len(r.partition_keys) for r in result.dynamic_partitions_requests or [])
        cursor = result.cursor
        bench.requested += keys
        bench.ticks.append(Tick(seconds, len(keys), added, len(cursor or ""),
                                result.skip_reason.skip_message if result.skip_reason else ""))
        if not keys:
            return bench
    raise RuntimeError(f"the sensor still requested runs after {max_ticks} ticks over {blobs} blobs")


def _storage(connection_string: Optional[str], tmp: str) -> tuple[BlobStorage, str]:
    if not connection_string:
        return LocalBlobStorage(root=tmp), f"local folder {tmp}"
    storage = AzureBlobStorage(connection_string=connection_string)
    if storage.list_blobs(lake.LANDING):
        raise ValueError(f"the landing container of {storage.location(lake.LANDING)} is not empty: "
                          "bench against a throwaway account (e.g. Azurite), never a real landing zone")
    return storage, f"Azure {storage.location(lake.LANDING)}"


def bench_sensor(blobs: int, echo: Echo = print, connection_string: Optional[str] = None) -> SensorBench:
    with tempfile.TemporaryDirectory(prefix="pdp-bench-sensor-") as tmp:
        storage, where = _storage(connection_string, tmp)
        echo(f"lab_landing_sensor over {blobs:,} blobs in the landing container of {where}")
        echo(f"  (at most {MAX_FILES_PER_TICK} run requests per tick; the rest on the next ticks)")
        fill = fill_landing(storage, blobs)
        try:
            with dg.instance_for_test() as instance:
                bench = run_ticks(storage, instance, blobs, where)
            started = time.perf_counter()
            storage.list_blobs(lake.LANDING)
            bench.list_seconds = time.perf_counter() - started
        finally:
            if connection_string:  # leave the account as found
                for blob in storage.list_blobs(lake.LANDING):
                    storage.delete(lake.LANDING, blob.name)
    bench.fill_seconds = fill
    _report(bench, echo)
    return bench


def _report(bench: SensorBench, echo: Echo) -> None:
    echo(f"filled in {bench.fill_seconds:.1f} s")
    echo(f"{'tick':>5} {'seconds':>8} {'run requests':>13} {'cursor KB':>10}")
    for i, t in enumerate(bench.ticks, 1):
        echo(f"{i:>5} {t.seconds:>8.3f} {t.requests:>13,} {t.cursor_bytes / 1024:>10.0f}")
    unique = len(set(bench.requested))
    paging = bench.ticks[1:-1]
    echo(f"first tick: {bench.first.seconds:.2f} s over {bench.blobs:,} blobs, {bench.first.requests:,} run requests")
    if paging:
        slowest = max(t.seconds for t in paging)
        echo(f"next {len(paging)} ticks page through the rest: slowest {slowest:.2f} s")
    echo(f"last tick: {bench.idle.seconds:.2f} s, {bench.idle.requests} run requests ({bench.idle.skip_reason})")
    echo(f"listing the {bench.blobs:,} blobs alone: {bench.list_seconds:.2f} s"
         f" ({bench.list_seconds / bench.idle.seconds:.0%} of the idle tick)")
    verdict = "each blob requested exactly once" if unique == len(bench.requested) == bench.blobs else (
        f"WRONG: {len(bench.requested):,} requests for {unique:,} distinct keys of {bench.blobs:,} blobs")
    echo(f"{len(bench.requested):,} run requests over {len(bench.ticks)} ticks: {verdict}")
    echo(json.dumps({"blobs": bench.blobs, "first_tick_s": round(bench.first.seconds, 3),
                     "first_tick_requests": bench.first.requests, "ticks": len(bench.ticks),
                     "idle_tick_s": round(bench.idle.seconds, 3), "list_s": round(bench.list_seconds, 3),
                     "requested": len(bench.requested),
                     "distinct": unique}))
