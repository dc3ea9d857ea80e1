"""Sensors evaluated with build_sensor_context on a test instance (cursor, restart, duplicates,
overwrites), and the lake's AutomationCondition evaluated as the automation sensor does."""

import json

import dagster as dg

from pdp_assets.definitions import source_definitions
from pdp_assets.defs.lab_results.assets import lab_cdc_export, lab_deletions, lab_results
from pdp_assets.defs.lab_results.triggers import lab_deletion_sensor, lab_landing_sensor
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.intake import partition_key
from pdp_assets.lib.partitions import deletion_partitions, upload_partitions
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


def test_a_file_whose_run_failed_or_died_is_asked_again_then_left_for_a_person(instance, storage):
    """What is pending comes from Dagster's record of runs, not from the cursor; the sensor's
    runs have Dagster's run retries off, so only the sensor runs a file again."""
    defs = dg.Definitions.merge(source_definitions("lab_results"), dg.Definitions(resources={"storage": storage}))
    job = defs.resolve_job_def("lab_intake_job")
    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,1"))
    first = tick(lab_landing_sensor, instance, storage)
    (request,) = first.run_requests
    assert request.tags["dagster/max_retries"] == "0"
    instance.add_dynamic_partitions(upload_partitions.name, [request.partition_key])
    cursor = first.cursor
    for attempt in (2, 3):
        run = instance.create_run_for_job(job, tags={"dagster/partition": request.partition_key})  # as the daemon does
        assert not tick(lab_landing_sensor, instance, storage, cursor=cursor).run_requests  # in flight
        instance.report_run_failed(run)  # a failure, or a dead process marked failed
        (again,) = tick(lab_landing_sensor, instance, storage, cursor=cursor).run_requests
        assert (again.partition_key, again.run_key) == (request.partition_key, f"{request.partition_key} attempt {attempt}")
    instance.report_run_failed(instance.create_run_for_job(job, tags={"dagster/partition": request.partition_key}))
    assert not tick(lab_landing_sensor, instance, storage, cursor=cursor).run_requests  # three runs failed: a person


def test_deletion_sensor_watches_its_own_container(instance, storage):
    storage.write(lake.DELETION_REQUESTS, "del.csv", b"sample_id,test_date\nA1,2024-01-01\n")
    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-01,POS,1"))
    result = tick(lab_deletion_sensor, instance, storage)
    assert [r.partition_key.split("@")[0] for r in result.run_requests] == ["del.csv"]
    assert result.dynamic_partitions_requests[0].partitions_def_name == "lab_deletion_requests"


LAB = dg.AssetSelection.groups("lab_results")


def _requested(tick) -> dict[str, list[str]]:
    found = {k.to_user_string(): sorted(tick.get_requested_partitions(k)) for k in (lab_results.key, lab_cdc_export.key)}
    return {k: v for k, v in found.items() if v}


def test_the_lake_rebuilds_exactly_the_weeks_an_upload_or_a_deletion_changed(instance, storage):
    defs = dg.Definitions.merge(source_definitions("lab_results"), dg.Definitions(resources={"storage": storage}))
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=LAB)
    assert first.total_requested == 0  # nothing staged yet

    storage.write(lake.LANDING, "a.csv", csv_bytes("A1,2024-01-08,POS,1", "A2,2024-03-05,NEG,0", "A3,2024-03-06,bad,1"))
    key = partition_key("a.csv", storage.info(lake.LANDING, "a.csv").etag)
    instance.add_dynamic_partitions(upload_partitions.name, [key])
    assert defs.resolve_job_def("lab_intake_job").execute_in_process(instance=instance, partition_key=key).success
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=LAB, cursor=first.cursor)
    # the two weeks with valid rows, lake and export together in the same tick (one run)
    assert _requested(tick) == {"lab_results": ["2024-01-08", "2024-03-04"], "lab_cdc_export": ["2024-01-08", "2024-03-04"]}

    run = defs.resolve_job_def("lab_lake_job").execute_in_process(instance=instance, tags={
        "dagster/asset_partition_range_start": "2024-01-08", "dagster/asset_partition_range_end": "2024-03-04"})
    assert run.success
    quiet = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=LAB, cursor=tick.cursor)
    assert quiet.total_requested == 0  # rebuilt: nothing left to do

    storage.write(lake.DELETION_REQUESTS, "d.csv", b"sample_id,test_date\nA2,2024-03-05\n")
    request = partition_key("d.csv", storage.info(lake.DELETION_REQUESTS, "d.csv").etag)
    instance.add_dynamic_partitions(deletion_partitions.name, [request])
    deletion = defs.resolve_job_def("lab_deletion_job").execute_in_process(
        instance=instance, partition_key=request, )
    assert deletion.success
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=LAB, cursor=quiet.cursor)
    assert _requested(tick) == {"lab_results": ["2024-03-04"], "lab_cdc_export": ["2024-03-04"]}


def test_an_upload_that_fails_its_gates_does_not_start_a_rebuild(instance, storage):
    defs = dg.Definitions.merge(source_definitions("lab_results"), dg.Definitions(resources={"storage": storage}))
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=LAB)
    storage.write(lake.LANDING, "bad.csv", csv_bytes("A1,not a date,POS,1"))
    key = partition_key("bad.csv", storage.info(lake.LANDING, "bad.csv").etag)
    instance.add_dynamic_partitions(upload_partitions.name, [key])
    assert defs.resolve_job_def("lab_intake_job").execute_in_process(instance=instance, partition_key=key).success
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=LAB, cursor=first.cursor)
    assert tick.total_requested == 0  # every row quarantined: no week changed
