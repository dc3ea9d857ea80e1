"""Intake + lake rebuild on real local storage: upserts, duplicates, overwrites, crash safety."""

import datetime as dt

import polars as pl
import pytest

from pdp_assets.lib.lab_results import intake, lake
from pdp_assets.lib.resources.storage import LocalBlobStorage
from pdp_assets_tests.conftest import csv_bytes

TODAY = dt.date(2026, 11, 22)
W1 = "2024-01-01"  # ISO 2024-W01


def land(storage, name: str, data: bytes) -> str:
    storage.write(lake.LANDING, name, data)
    return intake.partition_key(name, storage.info(lake.LANDING, name).etag)


def process(storage, *keys: str) -> list[intake.IntakeReport]:
    """What a sensor-launched intake run and the following lake run do."""
    reports = [intake.ingest_upload(storage, k, TODAY) for k in keys]
    lake.rebuild_weeks(storage, sorted({w for r in reports for w in r.weeks}))
    return reports


def lake_rows(storage) -> list[tuple]:
    return sorted(lake.read_lake(storage).rows())


def test_rows_are_routed_archived_and_the_landing_blob_removed(storage):
    key = land(storage, "a.csv", csv_bytes("A1,2024-01-01,POS,5", "A2,2024-12-30,NEG,0", "A3,2021-01-03,BAD,1"))
    (report,) = process(storage, key)
    assert (report.rows_read, report.rows_valid, report.rows_quarantined) == (3, 2, 1)
    assert report.weeks == [W1, "2024-12-30"]
    assert storage.exists(lake.DATA, "year=2024/week=01/data.parquet")
    assert storage.exists(lake.DATA, "year=2025/week=01/data.parquet")  # ISO year of 2024-12-30
    assert not storage.exists(lake.LANDING, "a.csv")
    _, uid = intake.split_partition_key(key)
    assert storage.read(lake.ARCHIVE, lake.raw_blob(uid, "a.csv")).startswith(b"sample_id,")
    q = pl.read_csv(storage.read(lake.QUARANTINE, report.quarantine_blob), infer_schema=False)
    assert q.row(0, named=True)["result"] == "BAD" and q["row_number"].to_list() == ["3"]
    log = pl.read_csv(storage.read(lake.LOGS, storage.list_blobs(lake.LOGS, "execution_")[0].name))
    assert log.select("rows_read", "rows_valid", "rows_quarantined").row(0) == (3, 2, 1)


def test_later_upload_wins_per_sample_id(storage):
    process(storage, land(storage, "a.csv", csv_bytes("A1,2024-01-01,POS,5", "A2,2024-01-02,NEG,0")))
    key = land(storage, "b.csv", csv_bytes("A1,2024-01-01,NEG,0", "A3,2024-01-03,POS,9"))
    (report,) = [intake.ingest_upload(storage, key, TODAY)]
    (change,) = lake.rebuild_weeks(storage, [W1])
    assert (change.rows, change.inserted, change.updated, change.removed) == (3, 1, 1, 0)
    assert lake_rows(storage) == [
        ("A1", dt.date(2024, 1, 1), "NEG", 0),
        ("A2", dt.date(2024, 1, 2), "NEG", 0),
        ("A3", dt.date(2024, 1, 3), "POS", 9),
    ]
    assert lake.rebuild_weeks(storage, [W1])[0].inserted == 0  # rebuilding again changes nothing


def test_a_week_with_one_upload_is_its_staged_slice_byte_for_byte(storage):
    (report,) = process(storage, land(storage, "a.csv", csv_bytes("A2,2024-01-02,NEG,0", "A1,2024-01-01,POS,5", "A1,2024-01-01,POS,5")))
    (slice_,) = storage.list_blobs(lake.ARCHIVE, lake.slice_prefix(W1))
    assert storage.read(lake.DATA, lake.lake_blob(W1)) == storage.read(lake.ARCHIVE, slice_.name)
    assert report.rows_valid == 3 and lake_rows(storage) == [  # the repeated row counted, stored once
        ("A1", dt.date(2024, 1, 1), "POS", 5),
        ("A2", dt.date(2024, 1, 2), "NEG", 0),
    ]


def test_same_content_under_another_name_changes_nothing(storage):
    data = csv_bytes("A1,2024-01-01,POS,5", "A2,2024-01-01,XX,0")
    process(storage, land(storage, "a.csv", data))
    before = (lake_rows(storage), [b.name for b in storage.list_blobs(lake.QUARANTINE)])
    (dup,) = process(storage, land(storage, "copy-of-a.csv", data))
    assert dup.duplicate_of and dup.rows_read == 0 and dup.weeks == []
    assert (lake_rows(storage), [b.name for b in storage.list_blobs(lake.QUARANTINE)]) == before
    assert not storage.exists(lake.LANDING, "copy-of-a.csv")


def test_quarantined_rows_reingested_unchanged_twice_stay_in_quarantine(storage):
    # A re-ingest is processed even when its bytes equal an earlier re-ingest's: skipping it as a
    # duplicate would lose rows whose quarantine file the re-ingest removed.
    process(storage, land(storage, "a.csv", csv_bytes("A1,2024-01-01,POS,5", "A2,2024-01-02,BAD,7")))
    for _ in range(2):
        (qfile,) = storage.list_blobs(lake.QUARANTINE)
        rows, etag = intake.read_quarantine(storage, qfile.name)
        sent = intake.reingest(storage, rows, qfile.name, "tester", etag=etag)
        key = intake.partition_key(sent.landing_blob, storage.info(lake.LANDING, sent.landing_blob).etag)
        (report,) = process(storage, key)
        assert (report.duplicate_of, report.rows_quarantined) == (None, 1)
    (qfile,) = storage.list_blobs(lake.QUARANTINE)
    assert intake.read_quarantine(storage, qfile.name)[0]["sample_id"].to_list() == ["A2"]
    assert [r[0] for r in lake_rows(storage)] == ["A1"]
    storage.write(lake.QUARANTINE, "dropped_by_hand.csv", b"sample_id\nX\n")  # not the pipeline's
    listed = {f.name: (f.rows, f.reasons) for f in intake.quarantine_files(storage)}
    assert listed["dropped_by_hand.csv"] == (1, [("no pipeline_error column", 1)]) and qfile.name in listed


def test_overlapping_rebuilds_of_a_week_lose_no_upload(storage):
    """A rebuild (say a UI backfill) reads the week's slices; before it writes, another upload is
    staged and the sensor's lake run rebuilds the week. The stale write must not win."""
    intake.ingest_upload(storage, land(storage, "a.csv", csv_bytes("A1,2024-01-01,POS,5")), TODAY)
    second = land(storage, "b.csv", csv_bytes("B1,2024-01-02,NEG,0"))

    class Overlapping:  # the storage as the slow rebuild sees it
        def __getattr__(self, attr):
            return getattr(storage, attr)

        def write_many(self, container, blobs):
            if container == lake.DATA and not done:
                done.append(process(storage, second))  # the other upload and its lake run, meanwhile
            storage.write_many(container, blobs)

    done = []
    (change,) = lake.rebuild_weeks(Overlapping(), [W1])  # it read a.csv's slice only, then wrote
    assert done and (change.rows, change.inserted) == (2, 2)
    assert lake_rows(storage) == [("A1", dt.date(2024, 1, 1), "POS", 5), ("B1", dt.date(2024, 1, 2), "NEG", 0)]


def test_a_blob_overwritten_with_new_content_is_processed_again(storage):
    k1 = land(storage, "a.csv", csv_bytes("A1,2024-01-01,POS,5"))
    process(storage, k1)
    k2 = land(storage, "a.csv", csv_bytes("A1,2024-01-01,NEG,0"))
    assert k2 != k1
    process(storage, k2)
    assert lake_rows(storage) == [("A1", dt.date(2024, 1, 1), "NEG", 0)]


def test_rerunning_an_upload_under_changed_rules_restages_it(storage):
    key = land(storage, "a.csv", csv_bytes("A1,2024-01-01,POS,5", "A2,2026-12-01,POS,5"))
    (first,) = process(storage, key)
    assert first.rows_quarantined == 1  # in the future on TODAY
    later = intake.ingest_upload(storage, key, dt.date(2026, 12, 5))  # a backfill, weeks later
    assert later.rows_valid == 2 and not storage.exists(lake.QUARANTINE, first.quarantine_blob)
    lake.rebuild_weeks(storage, later.weeks)
    assert [r[0] for r in lake_rows(storage)] == ["A1", "A2"]


class Crash(Exception):
    pass


def test_a_crash_at_any_write_loses_nothing_and_the_rerun_doubles_nothing(tmp_path, monkeypatch):
    """Kill the intake + lake run at each of its storage mutations in turn, run it again, and
    compare with a clean run: same lake, same quarantine, landing zone empty."""
    first = csv_bytes("A1,2024-01-01,POS,5", "A2,2024-01-02,NEG,0", "A3,2024-12-30,XX,1")
    second = csv_bytes("A1,2024-01-01,NEG,0", "A4,2024-12-31,POS,7", ",2024-01-01,POS,1")
    real_write, real_delete = LocalBlobStorage.write, LocalBlobStorage.delete
    mutations = {"n": 0, "crash_at": None}

    def counted(real):
        def op(self, *args, **kwargs):
            mutations["n"] += 1
            if mutations["n"] == mutations["crash_at"]:
                raise Crash(f"killed at mutation {mutations['n']}")
            return real(self, *args, **kwargs)
        return op

    monkeypatch.setattr(LocalBlobStorage, "write", counted(real_write))
    monkeypatch.setattr(LocalBlobStorage, "delete", counted(real_delete))

    def landed(root):
        storage = LocalBlobStorage(root=str(tmp_path / root))
        keys = [land(storage, "a.csv", first), land(storage, "b.csv", second)]
        mutations["n"] = 0
        return storage, keys

    def state(storage):
        quarantine = sorted(
            sorted(pl.read_csv(storage.read(lake.QUARANTINE, b.name), infer_schema=False).drop("source_file").fill_null("").rows())
            for b in storage.list_blobs(lake.QUARANTINE)
        )
        return lake_rows(storage), quarantine, storage.list_blobs(lake.LANDING)

    clean, keys = landed("clean")
    process(clean, *keys)
    expected, total = state(clean), mutations["n"]
    assert expected[0] and expected[1] and total > 10  # the comparison covers real rows and steps

    for crash_at in range(1, total + 1):
        storage, keys = landed(f"crash-{crash_at}")
        mutations["crash_at"] = crash_at
        with pytest.raises(Crash):
            process(storage, *keys)
        mutations["crash_at"] = None
        process(storage, *keys)  # the rerun: a run retry, or re-execution from the UI
        assert state(storage) == expected, f"crash at mutation {crash_at} of {total}"


def test_export_is_sorted_newest_first_and_formula_safe(storage):
    process(storage, land(storage, "a.csv", csv_bytes("=HYPERLINK(1),2024-01-01,POS,5", "@cmd,2024-03-01,NEG,0", "+x,2024-02-01,N/A,0", "B2,2024-02-15,NEG,0")))
    assert lake.write_export(storage) == 4
    export = pl.read_csv(storage.read(lake.DATA, lake.EXPORT_BLOB), infer_schema=False)
    assert export["test_date"].to_list() == ["2024-03-01", "2024-02-15", "2024-02-01", "2024-01-01"]
    assert export["sample_id"].to_list() == ["'@cmd", "B2", "'+x", "'=HYPERLINK(1)"]
