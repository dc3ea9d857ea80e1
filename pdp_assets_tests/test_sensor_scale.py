"""lab_landing_sensor over thousands of landing blobs (not timed: `pdp bench sensor` prints the
figures): over its paged ticks it requests each blob exactly once, then nothing; it forgets
processed blobs and still notices an overwrite among thousands. Local folders and Azurite."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from benchmarks.sensor import fill_landing, run_ticks, tick
from pdp_assets.defs.lab_results.triggers import MAX_FILES_PER_TICK
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.intake import partition_key
from pdp_assets.lib.resources.storage import AzureBlobStorage, LocalBlobStorage
from pdp_assets_tests.servers import start_azurite, stop

BLOBS = 2_000


@pytest.fixture(params=["local", pytest.param("azure", marks=pytest.mark.slow)])
def landing(request, tmp_path):
    """A storage with an empty landing container: a temp folder, or an Azurite of its own."""
    if request.param == "local":
        yield LocalBlobStorage(root=str(tmp_path / "pdp"))
        return
    process, connection_string = start_azurite(tmp_path)
    try:
        yield AzureBlobStorage(connection_string=connection_string)
    finally:
        stop(process)


def test_thousands_of_blobs_are_each_requested_once(landing, instance):
    fill_landing(landing, BLOBS)
    listed = landing.list_blobs(lake.LANDING)
    assert len(listed) == BLOBS
    expected = {partition_key(b.name, b.etag) for b in listed}

    bench = run_ticks(landing, instance, BLOBS, "test")
    pages = [t.requests for t in bench.ticks]
    assert pages == [MAX_FILES_PER_TICK] * (BLOBS // MAX_FILES_PER_TICK) + [0]  # paged, then idle
    assert all(t.partitions_added == t.requests for t in bench.ticks)  # a partition for each run
    assert len(bench.requested) == len(set(bench.requested)) == BLOBS
    assert set(bench.requested) == expected
    assert bench.idle.skip_reason.startswith(f"no new files in {lake.LANDING} ({BLOBS} present")


def test_processed_blobs_leave_the_cursor_and_an_overwrite_among_thousands_is_seen(landing, instance):
    fill_landing(landing, BLOBS)
    cursor = None
    for _ in range(BLOBS // MAX_FILES_PER_TICK):
        result, _ = tick(landing, instance, cursor)
        cursor = result.cursor
    assert len(json.loads(cursor)) == BLOBS

    # Intake runs remove what they processed; one waiting blob is overwritten with new content.
    with ThreadPoolExecutor(max_workers=16) as pool:
        assert all(pool.map(lambda i: landing.delete(lake.LANDING, f"bench_{i:06d}.csv"), range(0, BLOBS, 2)))
    landing.write(lake.LANDING, "bench_000001.csv", b"sample_id,test_date,result,viral_load\nX1,2024-01-02,POS,3\n")
    (overwritten,) = landing.list_blobs(lake.LANDING, "bench_000001.csv")

    result, _ = tick(landing, instance, cursor)
    assert [r.partition_key for r in result.run_requests] == [partition_key("bench_000001.csv", overwritten.etag)]
    remaining = json.loads(result.cursor)
    assert len(remaining) == BLOBS // 2 and "bench_000000.csv" not in remaining

    again, _ = tick(landing, instance, result.cursor)
    assert not again.run_requests and again.skip_reason


def test_bench_command_reports_each_blob_once():
    from click.testing import CliRunner

    from pdp_assets.ops.cli import main

    result = CliRunner().invoke(main, ["bench", "sensor", "--blobs", "600"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    counts = [figures[k] for k in ("first_tick_requests", "ticks", "requested", "distinct")]
    assert counts == [500, 3, 600, 600]
    assert "600 run requests over 3 ticks: each blob requested exactly once" in result.output
