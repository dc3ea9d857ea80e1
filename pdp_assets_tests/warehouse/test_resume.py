"""Re-executing a failed run from failure resumes at the failed phase; finished phases are not redone."""

from pathlib import Path

import dagster as dg

from pdp_assets.defs.warehouse.assets import build_load_asset, build_load_job
from pdp_assets.lib.resources.storage import LocalBlobStorage
from pdp_assets.lib.warehouse.config import load_config, Retry
from pdp_assets_tests.warehouse.conftest import drive_rows, faulty, lab_frame, query, step_events, WEEK1, write_week


def make_job(port: int, schema: str, root: str, tmp: str) -> dg.JobDefinition:
    """The production asset and job for lab_results, in process, with a permanent fault on the MERGE
    (only once: the faults file says how many are left, across runs)."""
    cfg = load_config()
    lab = next(load for load in cfg.loads if load.name == "lab_results")
    lab = lab.model_copy(update={"retry": Retry(max_retries=0, delay_seconds=0)})
    warehouse = faulty(port, schema, Path(tmp), r"^MERGE INTO", times=1, fault="permanent")
    warehouse = warehouse.model_copy(update={"faults_file": str(Path(tmp) / "faults")})
    job = build_load_job(lab)
    defs = dg.Definitions(
        assets=[build_load_asset(cfg, lab)],
        jobs=[job],
        resources={"storage": LocalBlobStorage(root=root), "warehouse": warehouse},
        executor=dg.in_process_executor,
    )
    return defs.resolve_job_def(job.name)


def test_reexecution_from_failure_resumes_at_the_failed_phase(fakesnow_port, schema, tmp_path, instance):
    storage = LocalBlobStorage(root=str(tmp_path / "pdp"))
    write_week(storage, WEEK1, lab_frame(WEEK1, 25))
    (tmp_path / "faults").write_text("1")
    job = dg.build_reconstructable_job(
        "pdp_assets_tests.warehouse.test_resume", "make_job",
        reconstructable_args=(fakesnow_port, schema, storage.root, str(tmp_path)),
    )
    with dg.execute_job(job, instance, tags={"dagster/partition": WEEK1}) as first:
        assert not first.success
        failed = step_events(first, "STEP_FAILURE")
        run_id = first.run_id
    assert [s.split("__")[-1] for s in failed] == ["stage_to_target"]
    warehouse = faulty(fakesnow_port, schema, tmp_path, "^$", times=0)
    [row] = drive_rows(warehouse)
    assert (row["STATUS"], row["FAILED_PHASE"], row["STAGE_ROWS"]) == ("FAILED", "stage_to_target", 25)

    with dg.execute_job(job, instance, reexecution_options=dg.ReexecutionOptions.from_failure(run_id, instance)) as second:
        assert second.success
        started = [s.split("__")[-1] for s in step_events(second, "STEP_START")]
    assert started == ["stage_to_target", "audit", "stage_cleaning", "target_cleaning", "commit"]
    [row] = drive_rows(warehouse)  # the same attempt, resumed: not a new one
    assert (row["ATTEMPT"], row["STATUS"], row["RETRIES"], row["INSERTED_ROWS"]) == (1, "SUCCEEDED", 1, 25)
    assert row["RUN_ID"] == second.run_id
    assert query(warehouse, "SELECT COUNT(*) FROM LAB_RESULTS") == [(25,)]
