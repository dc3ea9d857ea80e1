"""The Pandera checks catch bad data, week by week, and say which week and why."""

import datetime as dt

import dagster as dg
import pytest

from pdp_assets.definitions import source_definitions
from pdp_assets.defs.retail.checks import validate_weeks
from pdp_assets.lib.partitions import weekly_partitions
from pdp_assets.lib.resources.spark import ClusterSpark, LocalSpark
from pdp_assets.lib.retail import lake, schemas

retail_defs = source_definitions("retail")

PAYMENTS = "week_start date, payment_method string, orders long, revenue double, avg_amount double, order_share_pct double"


def test_a_range_check_fails_if_any_week_fails_and_lists_each_week(spark, spark_session):
    good, bad = dt.date(2024, 12, 23), dt.date(2024, 12, 30)
    rows = [
        (good, "paypal", 3, 30.0, 10.0, 100.0),
        (bad, "paypal", 3, -30.0, 10.0, 60.0),  # negative revenue
        (bad, "paypal", 1, 5.0, 5.0, 40.0),  # the same method twice in a week
    ]
    lake.write_weeks(spark, spark_session.createDataFrame(rows, PAYMENTS), "gold", "payment_methods")
    weeks = ["2024-12-23", "2024-12-30", "2025-01-06"]
    result = validate_weeks(spark, "gold", "payment_methods", schemas.gold_payment_methods, weeks)
    assert not result.passed
    meta = {k: v.value for k, v in result.metadata.items()}
    assert (meta["weeks_checked"], meta["weeks_failing"]) == (3, 2)
    outcomes = meta["outcome_by_week"]
    assert "year=2025/week=02" in outcomes and "no rows" in outcomes and "year=2024/week=52" in outcomes
    assert "revenue" in meta["failure_cases_first_failing_week"] and "payment_method" in meta["failure_cases_first_failing_week"]

    assert validate_weeks(spark, "gold", "payment_methods", schemas.gold_payment_methods, weeks[:1]).passed
    missing = validate_weeks(spark, "gold", "devices", schemas.gold_devices, weeks[:1])
    assert not missing.passed and "table not written" in missing.metadata["outcome_by_week"].value


def test_definitions_every_layer_weekly_single_run_versioned_and_checked():
    defs = dg.Definitions.merge(retail_defs, dg.Definitions(resources={"spark": LocalSpark()}))
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if k.to_user_string().startswith("retail_")]
    assert len(keys) == 11
    for key in keys:
        node = graph.get(key)
        assert node.partitions_def == weekly_partitions and node.group_name == "retail", key
        assert node.backfill_policy == dg.BackfillPolicy.single_run() and node.code_version, key
    checks = {c.asset_key.to_user_string(): graph.get_check_spec(c) for c in graph.asset_check_keys}
    assert set(checks) == {k.to_user_string() for k in keys}
    assert {k for k, spec in checks.items() if spec.blocking} == {
        "retail_silver_transactions", "retail_silver_products", "retail_silver_customers"
    }
    assert defs.resolve_job_def("retail_job").executor_def.name == "in_process"


def test_spark_is_configured_not_coded(monkeypatch, tmp_path):
    monkeypatch.setenv("PDP_HOME", str(tmp_path))
    local = LocalSpark()
    conf = local.session_config()
    assert (conf["spark.master"], conf["spark.ui.enabled"]) == ("local[*]", "false")
    assert local.path("retail", "gold") == f"{tmp_path}/retail/gold"

    url = "abfss://lake@acct.dfs.core.windows.net/pdp"
    remote = ClusterSpark(remote="sc://spark:15002", lake_url=url, storage_account_key="k3y",
                          spark_config={"spark.executor.memory": "4g"})
    conf = remote.session_config()
    assert conf["spark.remote"] == "sc://spark:15002" and "spark.master" not in conf
    assert conf["spark.hadoop.fs.azure.account.key.acct.dfs.core.windows.net"] == "k3y"
    assert conf["spark.executor.memory"] == "4g"
    assert remote.path("retail", "bronze") == f"{url}/retail/bronze"
    assert ClusterSpark(master="spark://m:7077", lake_url=url).session_config()["spark.master"] == "spark://m:7077"
    with pytest.raises(dg.DagsterInvariantViolationError, match="exactly one"):
        ClusterSpark(master="spark://m:7077", remote="sc://x", lake_url=url).session_config()
