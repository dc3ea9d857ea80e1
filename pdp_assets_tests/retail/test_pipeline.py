"""Bronze -> gold over two weeks in one run, re-runs, and blocking checks that keep bad silver
data out of gold."""

from pathlib import Path

import dagster as dg
import polars as pl

from pdp_assets.lib.retail import transforms
from pdp_assets_tests.retail.conftest import run_weeks, WEEK_01, WEEK_52

TABLES = {
    "bronze": ["customers", "products", "transactions"],
    "silver": ["customers", "products", "transactions"],
    "gold": ["customer_segments", "category_performance", "payment_methods", "devices", "supplier_inventory"],
}
ALL = {f"retail_{layer}_{t}" for layer, tables in TABLES.items() for t in tables}


def _gold(spark) -> dict[str, pl.DataFrame]:
    root = Path(spark.lake_root()) / "retail" / "gold"
    return {t: pl.read_parquet(root / t / "**/*.parquet").sort(pl.all()) for t in TABLES["gold"]}


def test_two_weeks_bronze_to_gold_in_one_run_then_a_rerun_changes_nothing(retail_job, spark, instance):
    result = run_weeks(retail_job, instance, WEEK_52, WEEK_01)
    assert result.success

    materialized = {(m.asset_key.to_user_string(), m.partition) for m in
                    (e.event_specific_data.materialization for e in result.get_asset_materialization_events())}
    assert materialized == {(a, w) for a in ALL for w in (WEEK_52, WEEK_01)}
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 11 and all(c.passed for c in checks), [c.asset_key for c in checks if not c.passed]
    assert all(c.metadata["weeks_checked"].value == 2 for c in checks)

    lake = Path(spark.lake_root()) / "retail"
    for layer, tables in TABLES.items():
        for t in tables:
            weeks = sorted(str(p.relative_to(lake / layer / t)) for p in (lake / layer / t).glob("year=*/week=*"))
            assert weeks == ["year=2024/week=52", "year=2025/week=01"], (layer, t)
    assert not list(lake.rglob(".spark-staging*"))

    silver = instance.get_latest_materialization_event(dg.AssetKey("retail_silver_transactions")).asset_materialization
    meta = {k: v.value for k, v in silver.metadata.items()}
    assert meta["rows_read"] == meta["rows_kept"] + meta["rows_duplicate"] + meta["rows_not_completed"] + meta["rows_unusable"]
    assert meta["rows_kept"] == meta["dagster/row_count"] and meta["duplicate_keys"] == 0
    bronze = instance.get_latest_materialization_event(dg.AssetKey("retail_bronze_transactions")).asset_materialization
    assert bronze.metadata["duplicate_keys"].value > 0 and bronze.metadata["null_counts"].value["payment_method"] > 0
    assert "|" in bronze.metadata["preview"].value

    before = _gold(spark)
    segments = before["customer_segments"]
    assert set(segments["segment"]) <= {"Premium", "Gold", "Silver", "Bronze"} and segments.height > 4
    assert run_weeks(retail_job, instance, WEEK_01, WEEK_01).success  # one week again
    after = _gold(spark)
    assert all(before[t].equals(after[t]) for t in before)


def test_a_failing_silver_check_keeps_gold_from_running(retail_job, spark, instance, monkeypatch):
    clean = transforms.clean_transactions

    def broken(bronze):  # a bug that lets refunds through with negative amounts
        cleaned = clean(bronze)
        return transforms.Cleaned(cleaned.frame.withColumn("amount", -cleaned.frame["amount"]), cleaned.fates)

    monkeypatch.setattr(transforms, "clean_transactions", broken)
    result = run_weeks(retail_job, instance, WEEK_01, WEEK_01, raise_on_error=False)
    assert not result.success
    failed = {c.asset_key.to_user_string() for c in result.get_asset_check_evaluations() if not c.passed}
    assert failed == {"retail_silver_transactions"}
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    # Everything downstream of silver transactions waits; gold from products alone still runs.
    blocked = {"retail_silver_customers", "retail_gold_customer_segments", "retail_gold_category_performance",
               "retail_gold_payment_methods", "retail_gold_devices"}
    assert done == ALL - blocked
    gold = Path(spark.lake_root()) / "retail" / "gold"
    assert sorted(p.name for p in gold.iterdir()) == ["supplier_inventory"]
