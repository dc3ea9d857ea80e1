"""``pdp bench lab`` on a small file: it prints every contender and accounts for every row."""

import re

from pdp_assets.bench import bench_lab

NUMBER = r"[\d,]+"


def test_bench_lab_prints_contenders_and_accounting():
    lines: list[str] = []
    bench_lab(2000, echo=lines.append)
    text = "\n".join(lines)

    for contender in ("pipeline", "seed's way", "floor", "weekly floor", "pipeline's validation alone"):
        row = next(line for line in lines if line.startswith(contender))
        seconds, rows_per_s = re.search(rf"\s(\d+\.\d\d)\s+({NUMBER})\s", row).groups()
        assert float(seconds) >= 0 and int(rows_per_s.replace(",", "")) > 0, row

    counts = re.search(
        rf"pipeline rows: read ({NUMBER}) = valid ({NUMBER}) \+ quarantined ({NUMBER}); weeks written (\d+)", text
    )
    assert counts, text
    read, valid, quarantined, weeks = (int(n.replace(",", "")) for n in counts.groups())
    assert read == 2000 and read == valid + quarantined
    assert quarantined > 0 and weeks > 0  # the demo file carries typos and spans years
    intake_s, rebuild_s = re.search(r"intake .* (\d+\.\d\d) s \+ lake rebuild (\d+\.\d\d) s", text).groups()
    pipeline_s = float(re.search(r"^pipeline .*?(\d+\.\d\d)", text, re.M).group(1))
    assert abs(float(intake_s) + float(rebuild_s) - pipeline_s) <= 0.011  # the two parts of the best run
    before, after = re.search(r"creating a file or folder here: (\d+) µs before the runs, (\d+) µs after", text).groups()
    assert int(before) > 0 and int(after) > 0, text
    assert "targets:" in text
