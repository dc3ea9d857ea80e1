"""One local Spark session for the whole test session (starting one takes about 10 s); each test
gets its own lake folder through its own :class:`LocalSpark`, which reuses that session."""

import dagster as dg
import pytest

from pdp_assets.definitions import source_definitions
from pdp_assets.lib.resources.spark import LocalSpark

retail_defs = source_definitions("retail")

WEEK_52, WEEK_01 = "2024-12-23", "2024-12-30"  # ISO 2024-W52 and 2025-W01: the year turns
SCALE = 0.05  # 500 customers, 10 products, 2,500 transactions a week


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory):
    return LocalSpark(root=str(tmp_path_factory.mktemp("spark-start"))).session


@pytest.fixture
def spark(spark_session, tmp_path) -> LocalSpark:
    return LocalSpark(root=str(tmp_path / "lake"))


@pytest.fixture
def retail_job(spark) -> dg.JobDefinition:
    return dg.Definitions.merge(retail_defs, dg.Definitions(resources={"spark": spark})).resolve_job_def("retail_job")


def run_weeks(job: dg.JobDefinition, instance: dg.DagsterInstance, first: str, last: str, **kwargs):
    """One run over a range of weeks, as a single-run backfill launches it."""
    return job.execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        run_config={"ops": {"retail_bronze": {"config": {"scale": SCALE}}}},
        **kwargs,
    )
