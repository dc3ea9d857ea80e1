"""What an operator can take back, and the record of who did what: an upload removed or a deletion
request cancelled before a run takes it (never after), a quarantine file discarded with a reason."""

import io

import polars as pl
import pytest
from click.testing import CliRunner

from pdp_assets.defs.resources import storage_resource
from pdp_assets.lib.lab_results import actions, lake
from pdp_assets.lib.lab_results.deletions import record_request, requested_pairs
from pdp_assets.lib.lab_results.intake import ingest_upload, partition_key
from pdp_assets.ops.cli import main
from pdp_assets_tests.conftest import csv_bytes

ME = actions.os_user()


@pytest.fixture
def pdp(pdp_env):
    def invoke(*args, ok=True):
        result = CliRunner().invoke(main, list(args), catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    return invoke


def waiting(storage, container=lake.LANDING) -> list[str]:
    return [b.name for b in storage.list_blobs(container) if "/" not in b.name]


def logged(storage) -> list[tuple]:
    return actions.action_log(storage).select("action", "by", "reason").rows()


def test_a_wrong_upload_is_removed_before_any_run_and_the_log_says_who_and_why(pdp, tmp_path):
    (tmp_path / "wrong partner.csv").write_bytes(csv_bytes("A1,2024-01-01,POS,5"))
    pdp("upload", str(tmp_path / "wrong partner.csv"))
    storage = storage_resource()
    (name,) = waiting(storage)
    assert f"{name}\t" in pdp("landing", "list") and f"by {ME}" in pdp("landing", "list")
    assert "Missing option '--reason'" in pdp("landing", "remove", name, ok=False)

    out = pdp("landing", "remove", name, "--reason", "sent to the wrong lab")
    assert f"removed from the landing zone by {ME}" in out and "(sent to the wrong lab)" in out
    assert waiting(storage) == [] and "no uploads waiting" in pdp("landing", "list")
    assert f"no file '{name}' is waiting" in pdp("landing", "remove", name, "--reason", "again", ok=False)
    assert "lab_landing_sensor: no new files" in pdp("ingest")
    assert lake.read_lake(storage).height == 0
    assert logged(storage) == [(actions.REMOVE_UPLOAD, ME, "sent to the wrong lab"), (actions.UPLOAD, ME, "")]
    shown = pdp("actions")
    assert "remove_upload" in shown and "sent to the wrong lab" in shown and "upload" in shown


def test_an_upload_a_run_has_taken_cannot_be_removed(storage, today):
    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,5"))
    key = partition_key("a.csv", storage.info(lake.LANDING, "a.csv").etag)
    refused = []

    class OperatorMidRun:  # the storage as the intake sees it: an operator acts as it archives
        def __getattr__(self, attr):
            return getattr(storage, attr)

        def write(self, container, name, data):
            if container == lake.ARCHIVE and not refused:
                with pytest.raises(actions.Taken, match="taken by a run") as e:
                    actions.withdraw(storage, lake.LANDING, "a.csv", "ops", "too late")
                refused.append(e)
            storage.write(container, name, data)

    report = ingest_upload(OperatorMidRun(), key, today)
    assert refused and report.rows_valid == 1 and report.landing_removed
    assert [r[0] for r in lake.read_lake(storage).rows()] == [] and storage.list_blobs(lake.ARCHIVE, "valid/")


def test_a_run_that_starts_after_the_removal_does_nothing_and_says_so(storage, today):
    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,5"))
    key = partition_key("a.csv", storage.info(lake.LANDING, "a.csv").etag)  # the sensor asked for it
    actions.withdraw(storage, lake.LANDING, "a.csv", "ops", "duplicate of yesterday's file")
    report = ingest_upload(storage, key, today)
    assert (report.rows_read, report.weeks) == (0, [])
    assert "removed from the landing zone by ops" in report.notes[0] and "duplicate of yesterday's file" in report.notes[0]
    assert storage.list_blobs(lake.ARCHIVE) == []  # nothing of it was stored


def test_a_removal_killed_before_the_delete_is_finished_by_the_run(storage, today):
    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,5"))
    key = partition_key("a.csv", storage.info(lake.LANDING, "a.csv").etag)

    class KilledBeforeDelete:
        def __getattr__(self, attr):
            return getattr(storage, attr)

        def delete(self, container, name, etag=None):
            raise SystemExit("killed")

    with pytest.raises(SystemExit):
        actions.withdraw(KilledBeforeDelete(), lake.LANDING, "a.csv", "ops", "wrong file")
    assert waiting(storage) == ["a.csv"]  # still there: the sensor asks for a run
    report = ingest_upload(storage, key, today)
    assert "removed from the landing zone by ops" in report.notes[0]
    assert waiting(storage) == [] and storage.list_blobs(lake.ARCHIVE) == []
    assert logged(storage) == [(actions.REMOVE_UPLOAD, "ops", "wrong file")]


def test_a_deletion_request_is_cancelled_before_it_runs_and_not_after(pdp, tmp_path):
    (tmp_path / "a.csv").write_bytes(csv_bytes("A1,2024-01-01,POS,5", "A2,2024-01-02,NEG,0"))
    pdp("upload", str(tmp_path / "a.csv"))
    pdp("ingest")
    (tmp_path / "del.csv").write_text("sample_id,test_date\nA1,2024-01-01\n")
    pdp("delete-request", str(tmp_path / "del.csv"))
    storage = storage_resource()
    (name,) = waiting(storage, lake.DELETION_REQUESTS)
    assert f"by {ME}" in pdp("requests", "list")
    assert "cancelled by" in pdp("requests", "cancel", name, "--reason", "wrong sample")
    assert "no deletion requests waiting" in pdp("requests", "list")
    pdp("ingest")
    assert sorted(lake.read_lake(storage)["sample_id"]) == ["A1", "A2"]  # nothing deleted

    # Filed again and run: the log names who filed it, and it can no longer be cancelled.
    (tmp_path / "del.csv").write_text("sample_id,test_date\nA1,2024-01-01\nZZ,2024-01-01\n")
    pdp("delete-request", str(tmp_path / "del.csv"))
    (name,) = waiting(storage, lake.DELETION_REQUESTS)
    out = pdp("ingest").splitlines()
    assert sorted(lake.read_lake(storage)["sample_id"]) == ["A2"]
    # The last lines say what this ingest did, and per request what was deleted and not found.
    summary = out.index(next(line for line in out if line.startswith("summary: ")))
    assert "1 records deleted" in out[summary] and "1 rows removed" in out[summary]
    assert out[-1] == (f"  deletion request {out[-1].split()[2]} (by {ME}): deleted A1 2024-01-01; "
                       "not found ZZ 2024-01-01")
    assert any(line.startswith("  week 2024-01-01: 1 rows, inserted 0, updated 0, removed 1") for line in out[summary:])
    (log,) = [b.name for b in storage.list_blobs(lake.LOGS, "deletion_")]
    assert pl.read_csv(storage.read(lake.LOGS, log))["requested_by"].to_list() == [ME, ME]
    assert "no file" in pdp("requests", "cancel", name, "--reason", "too late", ok=False)


def test_a_cancelled_request_a_run_was_asked_for_records_no_pairs(storage):
    storage.write(lake.DELETION_REQUESTS, "r.csv", b"sample_id,test_date\nA1,2024-01-01\n")
    key = partition_key("r.csv", storage.info(lake.DELETION_REQUESTS, "r.csv").etag)
    actions.withdraw(storage, lake.DELETION_REQUESTS, "r.csv", "ops", "filed twice")
    report = record_request(storage, key)
    assert "cancelled by ops" in report.cancelled and report.requested == 0
    assert requested_pairs(storage, key).height == 0  # the warehouse deletes nothing for it


def test_a_rejected_request_stays_and_can_still_be_cancelled(storage):
    storage.write(lake.DELETION_REQUESTS, "r.csv", b"sample_id,when\nA1,2024-01-01\n")
    key = partition_key("r.csv", storage.info(lake.DELETION_REQUESTS, "r.csv").etag)
    assert "missing column(s) test_date" in record_request(storage, key).rejected
    assert waiting(storage, lake.DELETION_REQUESTS) == ["r.csv"]
    actions.withdraw(storage, lake.DELETION_REQUESTS, "r.csv", "ops", "malformed, will refile")
    assert waiting(storage, lake.DELETION_REQUESTS) == []


def test_a_quarantine_file_is_discarded_with_its_reason_and_stays_discarded(pdp, tmp_path, today):
    (tmp_path / "a.csv").write_bytes(csv_bytes("A1,2024-01-01,POS,5", "A2,2024-01-02,Positive,7", "A3,x,NEG,0"))
    pdp("upload", str(tmp_path / "a.csv"))
    pdp("ingest")
    storage = storage_resource()
    name = pdp("quarantine", "list").split("\t")[0]
    assert "Missing option '--reason'" in pdp("quarantine", "discard", name, ok=False)
    assert f"discarded {name} (2 row(s))" in pdp("quarantine", "discard", name, "--reason", "test rows from the lab")
    assert "quarantine is empty" in pdp("quarantine", "list")
    assert "no quarantine file" in pdp("quarantine", "discard", name, "--reason", "again", ok=False)
    (record,) = actions.action_log(storage).filter(pl.col("action") == actions.DISCARD_QUARANTINE).iter_rows(named=True)
    assert (record["file"], record["by"], record["reason"]) == (name, ME, "test rows from the lab")
    assert "2 row(s)" in record["details"]
    # The rows are still in the upload's archived copy, and re-running the upload does not bring them back.
    (raw,) = [b.name for b in storage.list_blobs(lake.ARCHIVE, "raw/") if b.name.endswith(".csv")]
    assert b"Positive" in storage.read(lake.ARCHIVE, raw)
    (log,) = storage.list_blobs(lake.LOGS, "execution_")
    ingest_upload(storage, pl.read_csv(storage.read(lake.LOGS, log.name))["upload"][0], today)
    assert storage.list_blobs(lake.QUARANTINE) == []


def test_a_reingest_records_who_sent_the_fix(pdp, tmp_path):
    (tmp_path / "a.csv").write_bytes(csv_bytes("A2,2024-01-02,Positive,7"))
    pdp("upload", str(tmp_path / "a.csv"))
    pdp("ingest")
    name = pdp("quarantine", "list").split("\t")[0]
    shown = pl.read_csv(io.StringIO(pdp("quarantine", "show", name)), infer_schema=False)
    shown.with_columns(result=pl.lit("POS")).write_csv(tmp_path / name)
    pdp("quarantine", "reingest", str(tmp_path / name))
    (record,) = actions.action_log(storage_resource()).filter(pl.col("action") == actions.REINGEST).iter_rows(named=True)
    assert (record["file"], record["by"]) == (name, ME) and "1 row(s) sent back as" in record["details"]
