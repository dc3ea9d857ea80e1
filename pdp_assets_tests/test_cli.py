"""The operator command, run as an operator would, on local storage and a real instance."""

import datetime as dt
import io
import os
import subprocess
import sys

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from pdp_assets.definitions import build_definitions
from pdp_assets.defs.resources import storage_resource, warehouse_resource
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.intake import safe_blob_name
from pdp_assets.lib.partitions import weekly_partitions
from pdp_assets.ops.cli import main
from pdp_assets.ops.demo import DEMO_WEEKS
from pdp_assets_tests.conftest import csv_bytes


@pytest.fixture
def pdp(pdp_env):
    runner = CliRunner()

    def invoke(*args, ok=True):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    return invoke


def test_safe_blob_name():
    now = dt.datetime(2026, 1, 2, 3, 4, 5, 6)
    assert safe_blob_name("../../etc/pass wd;rm.CSV", now) == "20260102T030405000006_pass_wd_rm.csv"
    assert safe_blob_name("C:\\x\\..\\.csv", now) == "20260102T030405000006_C_x.csv"
    assert safe_blob_name("...csv", now) == "20260102T030405000006_upload.csv"


def test_help_documents_every_command(pdp):
    text = pdp("--help")
    for command in ("upload", "ingest", "quarantine", "delete-request", "export", "demo", "ui", "bench", "sql", "admin", "landing", "requests", "actions"):
        assert command in text
    assert "reingest" in pdp("quarantine", "--help") and "discard" in pdp("quarantine", "--help")


def test_upload_fix_quarantine_and_reingest_round_trip(pdp, tmp_path):
    src = tmp_path / "partner file.csv"
    src.write_bytes(csv_bytes("A1,2024-01-01,POS,5", "A2,2024-01-02,Positive,7", "A3,2024-01-03,NEG,-1"))
    assert "uploaded" in pdp("upload", str(src))
    pdp("ingest")
    storage = storage_resource()

    listing = pdp("quarantine", "list")
    name = listing.split("\t")[0]
    assert "2 rows" in listing and "partner_file" in name

    shown = pl.read_csv(io.StringIO(pdp("quarantine", "show", name)), infer_schema=False)
    fixed = shown.with_columns(
        pl.when(pl.col("result") == "Positive").then(pl.lit("POS")).otherwise("result").alias("result")
    )  # A3's negative load stays wrong
    fixed_path = tmp_path / name
    fixed.write_csv(fixed_path)
    out = pdp("quarantine", "reingest", str(fixed_path))
    assert f"removed quarantine file {name}" in out
    pdp("ingest")

    assert sorted(r[0] for r in lake.read_lake(storage).rows()) == ["A1", "A2"]
    (still_bad,) = storage.list_blobs(lake.QUARANTINE)
    requarantined = pl.read_csv(storage.read(lake.QUARANTINE, still_bad.name), infer_schema=False)
    assert requarantined["sample_id"].to_list() == ["A3"] and "negative" in requarantined["pipeline_error"][0]


def test_a_ragged_row_is_shown_whole_and_never_stored_cut_short(pdp, tmp_path):
    """Unquoted thousands separators make rows longer than the header: the quarantine keeps every
    field, and re-sending them unfixed quarantines them again."""
    src = tmp_path / "loads.csv"
    src.write_bytes(csv_bytes("RT-001,2026-11-23,POS,4,000", "RT-002,2026-11-23,POS,1,250,000",
                              "RT-003,2026-11-23,POS", "RT-004,2026-11-23,NEG,0"))
    pdp("upload", str(src))
    pdp("ingest")
    storage = storage_resource()
    name = pdp("quarantine", "list").split("\t")[0]
    shown_text = pdp("quarantine", "show", name)
    assert 'RT-001,2026-11-23,POS,4,000,' in shown_text and 'RT-002,2026-11-23,POS,1,"250,000",' in shown_text
    shown = pl.read_csv(io.StringIO(shown_text), infer_schema=False)
    assert shown.select("sample_id", "viral_load", "surplus_fields").rows() == [
        ("RT-001", "4", "000"), ("RT-002", "1", "250,000"), ("RT-003", None, None)]

    for _ in range(2):  # sent back unedited, from the file as shown: quarantined again, whole
        path = tmp_path / name
        path.write_text(shown_text)
        pdp("quarantine", "reingest", str(path))
        pdp("ingest")
        assert lake.read_lake(storage)["sample_id"].to_list() == ["RT-004"]
        name = pdp("quarantine", "list").split("\t")[0]
        shown_text = pdp("quarantine", "show", name)
        again = pl.read_csv(io.StringIO(shown_text), infer_schema=False)
        assert again.select("sample_id", "viral_load", "surplus_fields").rows() == shown.select(
            "sample_id", "viral_load", "surplus_fields").rows()
        assert "row has 5 fields but the header has 4" in again["pipeline_error"][0]

    fixed = again.with_columns(viral_load=pl.Series(["4000", "1250000", "0"]), surplus_fields=None)
    fixed.write_csv(tmp_path / name)
    pdp("quarantine", "reingest", str(tmp_path / name))
    pdp("ingest")
    loads = dict(lake.read_lake(storage).select("sample_id", "viral_load").rows())
    assert loads == {"RT-001": 4000, "RT-002": 1250000, "RT-003": 0, "RT-004": 0}
    assert pdp("quarantine", "list").strip() == "quarantine is empty"


def test_ambiguous_and_unreadable_files_are_listed_in_quarantine_not_guessed(pdp, tmp_path):
    (tmp_path / "twice.csv").write_bytes(csv_bytes("A1,2024-01-01,NEG,0,POS", header="sample_id,test_date,result,viral_load,result\n"))
    (tmp_path / "image.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    for f in ("twice.csv", "image.csv"):
        pdp("upload", str(tmp_path / f))
    pdp("ingest")
    assert lake.read_lake(storage_resource()).height == 0  # neither NEG nor POS was guessed
    listing = dict(line.split("\t", 1) for line in pdp("quarantine", "list").splitlines())
    twice, image = (next(n for n in listing if stem in n) for stem in ("twice", "image"))
    assert "the header names result more than once" in listing[twice]
    assert "file rejected: this is a binary file (it contains NUL bytes)" in listing[image]
    assert "discarded" in pdp("quarantine", "discard", image, "--reason", "a picture, not results")
    assert image not in pdp("quarantine", "list")


def test_an_upload_over_the_size_limit_is_refused_and_one_that_landed_is_listed(pdp, tmp_path, monkeypatch):
    monkeypatch.setenv("PDP_MAX_UPLOAD_MB", "1")
    big = csv_bytes(*["A1,2024-01-01,POS,5"] * 60_000)  # over the 1 MB limit
    (tmp_path / "big.csv").write_bytes(big)
    assert "1.1 MB is more than the 1 MB an upload may be (PDP_MAX_UPLOAD_MB)" in pdp("upload", str(tmp_path / "big.csv"), ok=False)
    storage = storage_resource()
    assert storage.list_blobs(lake.LANDING) == []
    storage.write(lake.LANDING, "dropped.csv", big)  # put there by another tool
    pdp("ingest")
    assert "more than the 1 MB" in pdp("quarantine", "list") and lake.read_lake(storage).height == 0
    (raw,) = [b for b in storage.list_blobs(lake.ARCHIVE, "raw/") if b.name.endswith("dropped.csv")]
    assert storage.read(lake.ARCHIVE, raw.name) == big  # nothing lost: the bytes are archived


def test_quarantine_files_and_deletion_logs_run_no_formula_and_give_the_values_back(pdp, tmp_path):
    import csv as csv_module

    from pdp_assets.lib.lab_results.intake import read_quarantine

    def formulas(data: bytes) -> list[str]:
        return [c for row in csv_module.reader(io.StringIO(data.decode())) for c in row if c[:1] and c[0] in "=+-@"]

    evil = '=HYPERLINK("http://evil.example","x")'
    (tmp_path / "a.csv").write_bytes(csv_bytes(f'"{evil.replace(chr(34), chr(34) * 2)}",2024-01-01,=cmd|calc,5',
                                               "B1,2024-01-02,POS,-3"))
    pdp("upload", str(tmp_path / "a.csv"))
    pdp("ingest")
    storage = storage_resource()
    (q,) = storage.list_blobs(lake.QUARANTINE)
    stored = storage.read(lake.QUARANTINE, q.name)
    assert formulas(stored) == []  # a spreadsheet runs none of them
    assert pdp("quarantine", "show", q.name).encode() == stored
    rows, _ = read_quarantine(storage, q.name)  # what the console's grid shows: the values as typed
    assert rows.select("sample_id", "result", "viral_load").rows() == [(evil, "=cmd|calc", "5"), ("B1", "POS", "-3")]

    # Fixed in the file `show` gave, and sent back: the lab's values, not the quotes, are validated.
    shown = pl.read_csv(io.StringIO(pdp("quarantine", "show", q.name)), infer_schema=False)
    shown.with_columns(result=pl.lit("POS")).write_csv(tmp_path / q.name)
    pdp("quarantine", "reingest", str(tmp_path / q.name))
    pdp("ingest")
    assert lake.read_lake(storage)["sample_id"].to_list() == [evil]
    (still,) = storage.list_blobs(lake.QUARANTINE)
    assert "viral_load -3 is negative" in read_quarantine(storage, still.name)[0]["pipeline_error"][0]

    (tmp_path / "d.csv").write_text(f'sample_id,test_date\n"{evil.replace(chr(34), chr(34) * 2)}",2024-01-01\n')
    pdp("delete-request", str(tmp_path / "d.csv"))
    pdp("ingest")
    assert lake.read_lake(storage).height == 0
    (log,) = storage.list_blobs(lake.LOGS, "deletion_")
    assert formulas(storage.read(lake.LOGS, log.name)) == []


def test_another_loads_file_is_validated_then_used(pdp, tmp_path):
    one = tmp_path / "loads.yaml"
    one.write_text("loads:\n  - name: lab_only\n    source: {asset: lab_results, container: data, "
                   "path: '{week_path}/data.parquet'}\n    target_table: LAB_ONLY\n    merge_keys: [sample_id]\n")
    out = pdp("warehouse", "validate", str(one))
    assert "lab_only: lab_results -> LAB_ONLY, merge on SAMPLE_ID" in out and "valid, 1 enabled load(s)" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(one.read_text().replace("asset: lab_results", "asset: lab_reslts"))
    out = pdp("warehouse", "validate", str(bad), ok=False)
    assert "not valid" in out and "field 'source.asset': 'lab_reslts' is no asset of this project" in out
    listed = subprocess.run(
        [sys.executable, "-c", "from pdp_assets.definitions import build_definitions; "
         "print(sorted(k.to_user_string() for k in build_definitions().resolve_asset_graph().get_all_asset_keys() "
         "if k.to_user_string().startswith('warehouse_')))"],
        env={**os.environ, "PDP_WAREHOUSE_LOADS": str(one)}, capture_output=True, text=True, check=True).stdout
    assert listed.strip() == "['warehouse_lab_deletions', 'warehouse_lab_only']"


def test_delete_request_is_checked_before_it_is_filed(pdp, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("sample_id,when\nA1,2024-01-01\n")
    assert "missing column(s) test_date" in pdp("delete-request", str(bad), ok=False)
    good = tmp_path / "good.csv"
    good.write_text("sample_id,test_date\nA1,2024-01-01\n")
    assert "filed 1 record(s)" in pdp("delete-request", str(good))
    assert len(storage_resource().list_blobs(lake.DELETION_REQUESTS)) == 1


def test_upload_refuses_what_is_not_a_csv_file(pdp, tmp_path):
    assert "no such file" in pdp("upload", str(tmp_path / "missing.csv"), ok=False)
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    assert "only .csv files" in pdp("upload", str(tmp_path / "x.xlsx"), ok=False)


def test_ingest_fails_loudly_when_a_run_fails(pdp, monkeypatch):
    storage = storage_resource()
    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,5"))

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    from pdp_assets.defs.lab_results import assets

    working = assets.ingest_upload
    monkeypatch.setattr(assets, "ingest_upload", broken)
    assert "run(s) failed" in pdp("ingest", ok=False)
    assert storage.exists(lake.LANDING, "a.csv")  # nothing lost

    # pdp ingest keeps no state of its own: the next one sees the upload was never materialized.
    monkeypatch.setattr(assets, "ingest_upload", working)
    out = pdp("ingest")
    assert "lab_landing_sensor: running lab_intake_job" in out and "lab_lake: running lab_lake_job" in out
    assert [r[0] for r in lake.read_lake(storage).rows()] == ["A1"]
    assert "lab_landing_sensor: no new files" in pdp("ingest")


LIGHT_COMMANDS = """
import sys
from click.testing import CliRunner
from pdp_assets.ops.cli import main
for args in (["--help"], ["upload", sys.argv[1]], ["quarantine", "list"]):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, (args, result.output)
heavy = ("pyspark", "pandera", "snowflake.connector", "dagster_snowflake", "googleapiclient",
         "pdp_assets.definitions", "pdp_assets.defs.lab_results")
print(sorted(m for m in heavy if m in sys.modules))
"""


def test_file_commands_load_neither_heavy_clients_nor_the_definitions(pdp_env, tmp_path):
    (tmp_path / "a.csv").write_bytes(csv_bytes("A1,2024-01-01,POS,5"))
    out = subprocess.run([sys.executable, "-c", LIGHT_COMMANDS, str(tmp_path / "a.csv")], capture_output=True,
                         text=True, check=True, env={**os.environ, "PDP_HOME": str(pdp_env)}).stdout
    assert out.strip() == "[]"


def test_demo_runs_every_pipeline_then_export(pdp, tmp_path):
    out = pdp("demo", "--files", "2", "--rows", "300", "--retail-scale", "0.01")
    assert "lab results lake" in out and "make ui" in out
    for job in ("health_job", "retail_job", "warehouse_lab_results_job", "warehouse_health_daily_metrics_job",
                "warehouse_retail_gold_devices_job"):
        assert job in out
    # Every weekly asset (observable sources aside) is materialized for every demo week.
    graph = build_definitions().resolve_asset_graph()
    last = weekly_partitions.get_last_partition_key()
    demo_weeks = weekly_partitions.get_partition_keys_in_range(
        dg.PartitionKeyRange(str(dt.date.fromisoformat(last) - dt.timedelta(weeks=DEMO_WEEKS - 1)), last))
    weekly = [k for k in graph.materializable_asset_keys if graph.get(k).partitions_def == weekly_partitions]
    assert len(weekly) >= 20  # lab lake and export, 4 health, 11 retail, 3 warehouse loads
    with dg.DagsterInstance.get() as instance:
        for key in weekly:
            missing = set(demo_weeks) - instance.get_materialized_partitions(key)
            assert not missing, (key, sorted(missing))
    # The README's drive-table queries run: nothing failed; one run's audit is readable.
    assert "shape: (0," in pdp("sql", "SELECT load_name, failed_phase FROM pdp_load_drive WHERE status IN ('FAILED', 'STALE')"
                                      " AND started_at > DATEADD(hour, -24, CURRENT_TIMESTAMP())")
    audit = pdp("sql", "SELECT load_id, source_rows, target_rows, audit_status FROM pdp_load_drive"
                       f" WHERE load_id = 'lab_results__{last}__a1'")
    assert "shape: (1, 4)" in audit and "PASSED" in audit
    assert "does not exist" in pdp("sql", "SELECT * FROM no_such_table", ok=False)
    # The lab lake reached the warehouse, one row per stored record.
    with warehouse_resource().connect() as conn:
        loaded = conn.cursor().execute("SELECT COUNT(*) FROM LAB_RESULTS").fetchone()[0]
    assert loaded == lake.read_lake(storage_resource()).height > 0
    target = tmp_path / "export.csv"
    assert "export:" in pdp("export", "--out", str(target))
    export = pl.read_csv(target)
    assert export.height == lake.read_lake(storage_resource()).height > 0
