"""Sensors evaluated with build_sensor_context on a test instance: cursor, restart, duplicates,
overwrites, and the lake sensor's week range."""

import json

import dagster as dg

from pdp_assets.defs.lab_results.triggers import lab_deletion_sensor, lab_lake_sensor, lab_landing_sensor
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.intake import partition_key
from pdp_assets_tests.conftest import csv_bytes


def tick(sensor, instance, storage, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"storage": storage})
    return sensor(context)


def test_each_file_is_requested_once_also_across_restarts(instance, storage):
    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,1"))
    storage.write(lake.LANDING, "b.csv", csv_bytes("B1,2024-01-01,POS,1"))
    storage.write(lake.LANDING, "notes.txt", b"not a csv")
    first = tick(lab_landing_sensor, instance, storage)
    keys = [r.partition_key for r in first.run_requests]
    assert keys == [partition_key(n, storage.info(lake.LANDING, n).etag) for n in ("a.csv", "b.csv")]
    assert [r.run_key for r in first.run_requests] == keys  # stable: Dagster drops a repeat
    assert list(first.dynamic_partitions_requests[0].partition_keys) == keys

    # A restarted sensor resumes from its stored cursor: nothing is requested twice.
    again = tick(lab_landing_sensor, instance, storage, cursor=first.cursor)
    assert not again.run_requests and again.skip_reason

    # A new file is requested; the ones in flight are not.
    storage.write(lake.LANDING, "c.csv", csv_bytes("C1,2024-01-01,POS,1"))
    third = tick(lab_landing_sensor, instance, storage, cursor=again.cursor)
    assert [r.partition_key.split("@")[0] for r in third.run_requests] == ["c.csv"]


def test_processed_files_leave_the_cursor_and_an_overwrite_is_requested_again(instance, storage):
    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,1"))
    first = tick(lab_landing_sensor, instance, storage)
    storage.delete(lake.LANDING, "a.csv")  # what a finished intake run does
    second = tick(lab_landing_sensor, instance, storage, cursor=first.cursor)
    assert json.loads(second.cursor) == {}  # the cursor does not grow with history

    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,NEG,0"))
    third = tick(lab_landing_sensor, instance, storage, cursor=second.cursor)
    assert len(third.run_requests) == 1
    assert third.run_requests[0].partition_key != first.run_requests[0].partition_key

    # Overwritten while still waiting: the new version gets its own run too.
    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,3"))
    fourth = tick(lab_landing_sensor, instance, storage, cursor=third.cursor)
    assert len(fourth.run_requests) == 1


def test_deletion_sensor_watches_its_own_container(instance, storage):
    storage.write(lake.DELETION_REQUESTS, "del.csv", b"sample_id,test_date\nA1,2024-01-01\n")
    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,1"))
    result = tick(lab_deletion_sensor, instance, storage)
    assert [r.partition_key.split("@")[0] for r in result.run_requests] == ["del.csv"]
    assert result.dynamic_partitions_requests[0].partitions_def_name == "lab_deletion_requests"


def test_lake_sensor_requests_one_run_over_the_touched_weeks(instance):
    def materialize(key, weeks):
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=key, metadata={"weeks": dg.MetadataValue.json(weeks)})
        )

    context = dg.build_sensor_context(instance=instance)
    assert lab_lake_sensor(context).run_requests == []
    materialize("lab_valid_rows", ["2024-01-08", "2024-03-04"])
    materialize("lab_deletions", ["2023-12-25"])
    result = lab_lake_sensor(dg.build_sensor_context(instance=instance))
    (request,) = result.run_requests
    assert request.partition_key_range == dg.PartitionKeyRange("2023-12-25", "2024-03-04")
    # The cursor moves past what it saw: the next tick asks for nothing.
    later = lab_lake_sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))
    assert later.run_requests == []


def test_lake_sensor_pages_without_skipping_weeks(instance, monkeypatch):
    monkeypatch.setattr("pdp_assets.defs.lab_results.triggers.LAKE_SENSOR_PAGE", 2)
    for key, week in [("lab_valid_rows", "2024-01-01"), ("lab_deletions", "2024-06-03"),
                      ("lab_valid_rows", "2024-01-08"), ("lab_valid_rows", "2024-01-15"),
                      ("lab_deletions", "2024-06-10")]:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=key, metadata={"weeks": dg.MetadataValue.json([week])})
        )
    ranges, cursor = [], None
    for _ in range(4):
        result = lab_lake_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
        cursor = result.cursor
        ranges += [(r.partition_key_range.start, r.partition_key_range.end) for r in result.run_requests]
    # first page: the two oldest of each key, up to the 2nd valid-rows record; then the rest
    assert ranges == [("2024-01-01", "2024-06-03"), ("2024-01-15", "2024-06-10")]
