"""The production instance config (docs/dagster.postgres.yaml) on a real PostgreSQL server."""

import shutil

import dagster as dg
import pytest

from pdp_assets.definitions import build_definitions
from pdp_assets.lib.lab_results import lake
from pdp_assets.ops.runner import evaluate_and_run
from pdp_assets_tests.conftest import csv_bytes
from pdp_assets_tests.servers import REPO, start_postgres, stop


@pytest.fixture
def postgres():
    process, port, data = start_postgres()
    try:
        yield port
    finally:
        stop(process)
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
def test_lab_runs_are_stored_in_postgres_with_the_production_settings(postgres, pdp_env, monkeypatch):
    home = pdp_env / "dagster-pg"
    home.mkdir(parents=True)
    shutil.copy(REPO / "docs" / "dagster.postgres.yaml", home / "dagster.yaml")
    for name, value in {"HOST": "127.0.0.1", "PORT": str(postgres), "USER": "pdp", "PASSWORD": "", "DB": "pdp"}.items():
        monkeypatch.setenv(f"DAGSTER_PG_{name}", value)
    defs = build_definitions()
    defs.resources["storage"].write(lake.LANDING, "a.csv", csv_bytes("S1,2024-03-05,POS,120", "S2,2024-03-06,NEG,0"))

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        # the retention the production file sets, as the instance read it
        assert instance.get_settings("retention")["sensor"]["purge_after_days"]["skipped"] == 7

        summary = evaluate_and_run(defs, instance)

        assert summary.runs and not summary.failed
        stored = instance.get_runs()
        assert {r.run_id for r in summary.runs} <= {r.run_id for r in stored}
        assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in stored)
        # Dynamic partitions (one per upload) and materializations live in Postgres too.
        assert len(instance.get_dynamic_partitions("lab_uploads")) == 1
        lakes = instance.fetch_materializations(dg.AssetKey("lab_results"), limit=10).records
        assert [m.partition_key for m in lakes] == ["2024-03-04"]
