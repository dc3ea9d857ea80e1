"""``pdp bench backfill`` and ``pdp bench lake`` at a tiny size: they print both contenders side by
side with their runs, build the same results both ways, and account for every row. Timings are
only checked to be numbers: they depend on the machine."""

import re

from click.testing import CliRunner

from pdp_assets.ops.cli import main

SECONDS = r"(\d+\.\d+) s"


def invoke(*args: str):
    result = CliRunner().invoke(main, ["bench", *args], catch_exceptions=False)
    return result, result.output.splitlines()


def test_bench_backfill_prints_one_run_and_run_per_week_side_by_side():
    result, lines = invoke("backfill", "--weeks", "3", "--rows-per-week", "100")
    assert result.exit_code == 0, result.output
    assert lines[0].startswith("backfill bench: 3 weeks 2025-12-08 .. 2025-12-22 (2025-W50 .. 2025-W52)"), lines[0]

    for name in ("lab lake (lab_lake_job)", "health metrics (health_job)"):
        row = next(line for line in lines if line.startswith(name))
        one, one_runs, each, each_runs, per_run, ratio = re.search(
            rf"{SECONDS}\s+(\d+)\s+{SECONDS}\s+(\d+)\s+(\d+\.\d\d)\s+(\d+\.\d)x$", row
        ).groups()
        assert (int(one_runs), int(each_runs)) == (1, 3), row  # single run vs one run per week
        assert float(one) > 0 and float(each) > 0
        assert abs(float(ratio) - float(each) / float(one)) < 0.1, row

    built = {m.group(1): m for line in lines if (m := re.match(
        r"(lab lake|health metrics): ([\d,]+) rows built by both, identical: (yes|NO); failed runs: (\d+)", line))}
    assert set(built) == {"lab lake", "health metrics"}, result.output
    for name, m in built.items():
        assert int(m.group(2).replace(",", "")) > 0 and m.group(3) == "yes" and m.group(4) == "0", m.group(0)
    ingested = re.search(r"lab: ([\d,]+) rows ingested first \(([\d,]+) valid", result.output)
    assert ingested and ingested.group(1) == "300"
    assert built["lab lake"].group(2) == ingested.group(2)  # every valid row is in the lake once


def test_bench_lake_prints_each_lake_size_side_by_side_with_the_ratio():
    result, lines = invoke("lake", "--weeks", "3,6", "--rows-per-week", "100", "--new-rows", "400",
                           "--corrections", "30", "--repeat", "2")
    assert result.exit_code == 0, result.output
    assert lines[0].startswith("lake upsert bench: one new file (400 new rows + 30 corrections over the last 3 weeks)")
    assert re.match(r"\s+3 weeks\s+6 weeks\s+6/3$", lines[1]), lines[1]

    assert re.match(r"lake rows\s+300\s+600\s+2\.0x$", next(line for line in lines if line.startswith("lake rows")))
    for label in ("intake (archive, validate, stage)", "rebuild touched weeks", "upsert (intake + rebuild)",
                  "CDC export refresh (whole lake)", "upsert + export"):
        row = next(line for line in lines if line.startswith(label))
        assert re.search(rf"{SECONDS}\s+{SECONDS}\s+\d+\.\dx$", row), row

    counts = {}
    for line in lines:
        m = re.match(r"(\d+) weeks: inserted ([\d,]+), updated ([\d,]+), quarantined ([\d,]+), weeks touched (\d+)", line)
        if m:
            counts[int(m.group(1))] = tuple(int(g.replace(",", "")) for g in m.groups()[1:])
    assert set(counts) == {3, 6}, result.output
    assert counts[3] == counts[6], counts  # the same file changes the same rows at any lake size
    inserted, updated, quarantined, touched = counts[6]
    assert inserted + quarantined == 400 and quarantined > 0  # every new row is in the lake or in quarantine
    assert updated == 30 and touched == 3


def test_bench_commands_refuse_impossible_sizes():
    result, _ = invoke("backfill", "--weeks", "400")
    assert result.exit_code != 0 and "at most" in result.output
    result, _ = invoke("lake", "--weeks", "52,lots")
    assert result.exit_code != 0 and "52,520" in result.output
