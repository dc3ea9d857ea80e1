"""A deletion request is an erasure: every copy of the records goes, each by the asset that owns
it, matched on the record as validation reads it; and no later intake, re-run or rebuild brings
one back."""

import datetime as dt

import polars as pl
import pytest

from pdp_assets.definitions import build_definitions
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.deletions import uploads_to_erase
from pdp_assets.lib.lab_results.intake import partition_key
from pdp_assets.ops.runner import evaluate_and_run
from pdp_assets_tests.conftest import csv_bytes


@pytest.fixture
def defs(pdp_env):
    return build_definitions()


@pytest.fixture
def storage(defs):
    return defs.resources["storage"]


def every_blob(storage, *containers):
    return {f"{c}/{b.name}": storage.read(c, b.name) for c in containers for b in storage.list_blobs(c)}


def holding(storage, needle: bytes) -> list[str]:
    """Copies of lab data whose bytes hold ``needle`` (the erasure list itself aside)."""
    blobs = every_blob(storage, lake.ARCHIVE, lake.QUARANTINE, lake.DATA)
    return sorted(p for p, data in blobs.items() if needle in data and "/deletions/" not in p)


def lake_ids(storage) -> list[str]:
    return sorted(lake.read_lake(storage)["sample_id"])


def delete(defs, instance, storage, *pairs: str):
    storage.write(lake.DELETION_REQUESTS, "del.csv", ("sample_id,test_date\n" + "\n".join(pairs) + "\n").encode())
    return evaluate_and_run(defs, instance)


UPLOAD = csv_bytes("A1,2024-1-1,POS,5", "A2,2024-01-03,NEG,0", "A3,2024-01-03,bad,1", "A4, 2024-01-02 ,NEG,0")


def test_every_copy_is_erased_by_its_owner_matched_as_validation_reads_it(defs, storage, instance):
    storage.write(lake.LANDING, "a.csv", UPLOAD)
    evaluate_and_run(defs, instance)
    assert lake_ids(storage) == ["A1", "A2", "A4"]
    # A1's date was typed 2024-1-1 and A4's with spaces: the request names them as they are read.
    summary = delete(defs, instance, storage, "A1,2024-01-01", "A3,2024-01-03", "A4,2024-01-02", "ZZ9,2024-01-02")
    assert [(r.sensor, r.job) for r in summary.runs] == [
        ("lab_deletion_sensor", "lab_deletion_job"), ("lab_erasure_sensor", "lab_intake_job"),
        ("warehouse_deletions", "warehouse_deletion_job"), ("lab_lake", "lab_lake_job")]
    assert not summary.failed
    assert lake_ids(storage) == ["A2"]
    for sid in (b"A1,", b"A3,", b"A4,"):
        assert holding(storage, sid) == [], sid
    assert b"A2," in storage.read(lake.DATA, lake.EXPORT_BLOB)
    quarantine = every_blob(storage, lake.QUARANTINE)
    assert quarantine == {}  # its only row was A3's: the file went with it

    (log_blob,) = storage.list_blobs(lake.LOGS, "deletion_")
    log = pl.read_csv(storage.read(lake.LOGS, log_blob.name), infer_schema=False)
    assert dict(zip(log["sample_id"], log["status"])) == {"A1": "deleted", "A3": "deleted", "A4": "deleted",
                                                          "ZZ9": "not_found"}
    where = dict(zip(log["sample_id"], log["removed_from"]))
    for copy in ("archive/raw/", "archive/valid/year=2024/week=01/", "data/year=2024/week=01/data.parquet",
                 "data/final_cdc_export.csv"):
        assert copy in where["A1"], (copy, where["A1"])
    assert "quarantine/a__" in where["A3"] and "archive/raw/" in where["A3"]
    assert uploads_to_erase(storage) == {}
    # Nothing left to do: every trigger skips.
    assert evaluate_and_run(defs, instance).runs == []


def test_no_reintake_rebuild_or_new_upload_brings_an_erased_record_back(defs, storage, instance):
    storage.write(lake.LANDING, "a.csv", UPLOAD)
    evaluate_and_run(defs, instance)
    (key,) = instance.get_dynamic_partitions("lab_uploads")
    delete(defs, instance, storage, "A1,2024-01-01")
    assert lake_ids(storage) == ["A2", "A4"]

    # The README's rebuild after a rule change: intake of the upload again, then every lake week.
    intake = defs.resolve_job_def("lab_intake_job").execute_in_process(instance=instance, partition_key=key)
    assert intake.success
    lake_job = defs.resolve_job_def("lab_lake_job")
    assert lake_job.execute_in_process(instance=instance, partition_key="2024-01-01").success
    assert lake_ids(storage) == ["A2", "A4"] and holding(storage, b"A1,") == []

    # A stale slice holding it (written by a run that read the erasure list too early) is left out.
    stale = lake.slice_blob("2024-01-01", dt.datetime(2030, 1, 1), "f" * 16)
    storage.write(lake.ARCHIVE, stale, lake.to_parquet(pl.DataFrame(
        {"sample_id": ["A1"], "test_date": [dt.date(2024, 1, 1)], "result": ["POS"], "viral_load": [5]})))
    assert lake_job.execute_in_process(instance=instance, partition_key="2024-01-01").success
    assert lake_ids(storage) == ["A2", "A4"]
    storage.delete(lake.ARCHIVE, stale)

    # A new upload naming the record again: neither staged, quarantined nor archived; others pass.
    storage.write(lake.LANDING, "b.csv", csv_bytes("A1,2024-01-01,NEG,0", "B1,2024-01-02,POS,3", "A1,2024-01-01,bad,0"))
    summary = evaluate_and_run(defs, instance)
    assert not summary.failed
    assert lake_ids(storage) == ["A2", "A4", "B1"] and holding(storage, b"A1,") == []
    assert not storage.list_blobs(lake.LANDING)


def test_a_resolved_quarantine_file_stays_resolved_when_its_upload_is_erased_from(defs, storage, instance):
    storage.write(lake.LANDING, "a.csv", UPLOAD)
    evaluate_and_run(defs, instance)
    (qfile,) = storage.list_blobs(lake.QUARANTINE)
    storage.delete(lake.QUARANTINE, qfile.name)  # what a re-ingest of its fixed rows does
    summary = delete(defs, instance, storage, "A2,2024-01-03")
    assert "lab_intake_job" in [r.job for r in summary.runs] and not summary.failed
    assert storage.list_blobs(lake.QUARANTINE) == []
    assert lake_ids(storage) == ["A1", "A4"] and holding(storage, b"A2,") == []


def test_an_upload_holding_an_erased_record_is_rewritten_until_an_intake_succeeds(defs, storage, instance):
    storage.write(lake.LANDING, "a.csv", UPLOAD)
    evaluate_and_run(defs, instance)
    (key,) = instance.get_dynamic_partitions("lab_uploads")
    # The deletion run alone (its erasure intake never ran, as after a crash): the upload is pending.
    storage.write(lake.DELETION_REQUESTS, "del.csv", b"sample_id,test_date\nA2,2024-01-03\n")
    request = partition_key("del.csv", storage.info(lake.DELETION_REQUESTS, "del.csv").etag)
    instance.add_dynamic_partitions("lab_deletion_requests", [request])
    assert defs.resolve_job_def("lab_deletion_job").execute_in_process(instance=instance, partition_key=request).success
    assert list(uploads_to_erase(storage)) == [key]
    assert lake_ids(storage) == ["A1", "A2", "A4"]  # until the lake is rebuilt
    summary = evaluate_and_run(defs, instance)
    assert [r.job for r in summary.runs] == ["lab_intake_job", "warehouse_deletion_job", "lab_lake_job"]
    assert uploads_to_erase(storage) == {} and lake_ids(storage) == ["A1", "A4"] and holding(storage, b"A2,") == []


def test_run_history_keeps_no_record_of_what_was_erased(defs, storage, instance):
    """Metadata and logs stay in the event log for ever: previews are profiles and counts, so an
    erased record leaves no trace there, whatever the run (intake, quarantine, lake, export,
    checks, the deletion itself)."""
    import dagster as dg

    storage.write(lake.LANDING, "a.csv", csv_bytes(
        "SECRET-0001,2024-01-01,POS,5", "SECRET-0002,2024-01-02,NEG,0", "SECRET-0002,2024-01-02,POS,7",
        "SECRET-0003,2024-01-03,bad,1", "KEEP-0004,2024-01-04,NEG,0"))
    assert not evaluate_and_run(defs, instance).failed
    assert not delete(defs, instance, storage, "SECRET-0001,2024-01-01", "SECRET-0009,2024-01-01").failed
    storage.write(lake.LANDING, "b.csv", csv_bytes("SECRET-0001,2024-01-01,POS,5", "KEEP-0005,2024-01-05,POS,1"))
    assert not evaluate_and_run(defs, instance).failed  # a new upload holding the erased record

    history = "\n".join(dg.serialize_value(entry) for run in instance.get_runs()
                        for entry in instance.all_logs(run.run_id))
    history += "\n".join(str(run.tags) for run in instance.get_runs())
    assert "KEEP-0004" not in history and "SECRET-0001" not in history, "a record reached the event log"
    assert "SECRET-0002" not in history and "SECRET-0009" not in history
    assert "rows_quarantined" in history and "The newest 2 records" in history  # the counts and profiles are there


def test_a_utf16_upload_is_stored_and_erased_like_any_other(defs, storage, instance):
    text = UPLOAD.decode()
    storage.write(lake.LANDING, "a.csv", text.encode("utf-16"))
    evaluate_and_run(defs, instance)
    assert lake_ids(storage) == ["A1", "A2", "A4"]  # read as text, not rejected as binary
    (quarantined,) = storage.list_blobs(lake.QUARANTINE)
    assert b"A3" in storage.read(lake.QUARANTINE, quarantined.name)
    assert not delete(defs, instance, storage, "A1,2024-01-01", "A3,2024-01-03").failed
    assert lake_ids(storage) == ["A2", "A4"]
    for needle in ("A1,", "A3,"):  # the archived raw copy too, kept in UTF-8 from then on
        assert (needle, holding(storage, needle.encode()), holding(storage, needle.encode("utf-16-le"))) == (needle, [], [])


def test_a_deletion_naming_an_id_of_a_rejected_binary_upload_runs(defs, storage, instance):
    storage.write(lake.LANDING, "a.csv", UPLOAD)
    storage.write(lake.LANDING, "image.csv", b"\x89PNG\r\n\x00\x00A1,2024-01-01\x00\xff")  # holds the id's bytes
    evaluate_and_run(defs, instance)
    summary = delete(defs, instance, storage, "A1,2024-01-01")
    assert not summary.failed and lake_ids(storage) == ["A2", "A4"]


def test_an_upload_with_a_name_as_long_as_a_disk_allows_is_stored_and_erased(defs, storage, instance):
    name = "a" * 240 + ".csv"  # 244 bytes: its copies' names (<stem>__<upload id>.csv) would not fit
    storage.write(lake.LANDING, name, UPLOAD)
    assert not evaluate_and_run(defs, instance).failed
    assert lake_ids(storage) == ["A1", "A2", "A4"]
    (quarantined,) = storage.list_blobs(lake.QUARANTINE)
    assert len(quarantined.name) <= 255 and quarantined.name.startswith("a" * 100)
    assert not delete(defs, instance, storage, "A1,2024-01-01", "A3,2024-01-03").failed
    assert lake_ids(storage) == ["A2", "A4"] and holding(storage, b"A1,") == [] and holding(storage, b"A3,") == []
