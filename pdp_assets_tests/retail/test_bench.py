"""``bench_retail`` on a tiny scale: it prints every layer, the totals and the memory."""

import re

from benchmarks.retail import bench_retail


def test_bench_retail_prints_where_the_time_goes(spark_session):
    lines: list[str] = []
    bench_retail(0.02, echo=lines.append)
    text = "\n".join(lines)
    for part in ("spark start-up", "bronze:", "silver:", "gold:", "checks:"):
        assert re.search(rf"{part}.*\d+\.\d\d s", text), part
    assert "already running" in text  # the test session's Spark was reused
    assert "run succeeded" in text and "checks failing" not in text
    assert re.search(r"per 100,000 transactions: \d+\.\d\d s", text)
    assert re.search(r"peak memory: [\d,]+ MB \(python driver [\d,]+ MB \+ Spark JVM [\d,]+ MB\)", text)
