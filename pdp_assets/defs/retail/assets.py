"""The retail medallion as weekly partitioned PySpark assets: bronze (raw, generated), silver
(cleaned and enriched), gold (weekly analytics).

Every asset handles a range of weeks in one Spark job (``BackfillPolicy.single_run()``): a
backfill of a year is one run, one read, one write per table, not 52. Each table is written to
the lake, then read back to describe what was stored (rows, nulls, duplicates, a preview).
"""

import datetime as dt
from typing import Any, Iterator, Optional

import dagster as dg
import polars as pl
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pdp_assets.lib.automation import AC, WHEN_INPUTS_CHANGE
from pdp_assets.lib.metadata import COLUMN_SCHEMA, column_schema, markdown_table, ROW_COUNT, URI
from pdp_assets.lib.partitions import week_path, weekly_partitions
from pdp_assets.lib.resources.spark import SparkResource
from pdp_assets.lib.retail import generator, lake, schemas, transforms
from pdp_assets.lib.retail.lake import BRONZE, GOLD, SILVER, WEEK

GROUP = "retail"
OWNERS = ["team:retail-analytics"]  # who to ask about these assets; the tag selects them across groups
TAGS = {"domain": GROUP}
CODE_VERSION = "1"
KINDS = {"spark", "parquet"}
KEYS = {"customers": "customer_id", "products": "product_id", "transactions": "transaction_id"}


def asset_key(layer: str, table: str) -> dg.AssetKey:
    return dg.AssetKey(f"retail_{layer}_{table}")


def _columns(layer: str, table: str) -> dict:
    return {COLUMN_SCHEMA: column_schema(getattr(schemas, f"{layer}_{table}"))}


class GeneratorConfig(dg.Config):
    """How much raw data to generate: ``scale`` 1 is, per week, 10,000 customers, 200 products
    and 50,000 transactions (the seed pipeline's whole data set)."""

    scale: float = 1.0
    seed: int = 535


def _profile(frame: DataFrame, key: Optional[str], weeks: list[str]) -> dict[str, Any]:
    """Rows, nulls per column, duplicate keys and completeness of what is stored for ``weeks``,
    per week and in total, in one Spark job."""
    columns = [c for c in frame.columns if c != WEEK]
    aggs = [F.count("*").alias("_rows")] + [F.count_if(F.col(c).isNull()).alias(c) for c in columns]
    if key:
        aggs.append(F.count_distinct(key).alias("_keys"))
    per_week = pl.from_arrow(frame.groupBy(WEEK).agg(*aggs).toArrow()).sort(WEEK)
    paths = [week_path(d.isoformat()) for d in per_week[WEEK]]
    rows = int(per_week["_rows"].sum())
    nulls = {c: int(per_week[c].sum()) for c in columns}
    cells = rows * len(columns)
    meta: dict[str, Any] = {
        ROW_COUNT: rows,
        "null_counts": dg.MetadataValue.json(nulls),
        "completeness_pct": round(100.0 * (1 - sum(nulls.values()) / cells), 3) if cells else 100.0,
        "rows_by_week": markdown_table(pl.DataFrame({"week": paths, "rows": per_week["_rows"]}), rows=60),
    }
    if key:
        meta["duplicate_keys"] = rows - int(per_week["_keys"].sum())
    if missing := [week_path(w) for w in weeks if week_path(w) not in paths]:
        meta["weeks_without_rows"] = dg.MetadataValue.json(missing)
    return meta


def _publish(
    context: dg.AssetExecutionContext,
    spark: SparkResource,
    frame: DataFrame,
    layer: str,
    table: str,
    fates: Optional[DataFrame] = None,
) -> dg.MaterializeResult:
    """Replace the run's weeks of a table and describe what is now stored."""
    weeks = context.partition_keys
    path = lake.write_weeks(spark, frame, layer, table)
    stored = lake.read_weeks(spark, layer, table, weeks)
    key = KEYS.get(table) if layer != GOLD else None
    meta = {"weeks": len(weeks), URI: path, **_profile(stored, key, weeks)}
    if fates is not None:
        # Every input row is accounted for: read = kept + each reason's drops.
        counts = dict(fates.groupBy(transforms.FATE).count().collect())
        meta["rows_read"] = sum(counts.values())
        meta.update({f"rows_{fate}": n for fate, n in sorted(counts.items())})
    meta["preview"] = markdown_table(pl.from_arrow(stored.limit(10).toArrow()))
    if "weeks_without_rows" in meta:
        context.log.warning(f"{layer}/{table}: no rows for {meta['weeks_without_rows'].value}; left as they were")
    context.log.info(f"{layer}/{table}: {meta['dagster/row_count']} rows in {len(weeks)} week(s) at {path}")
    return dg.MaterializeResult(asset_key=asset_key(layer, table), metadata=meta)


def _read(spark: SparkResource, context: dg.AssetExecutionContext, layer: str, table: str) -> DataFrame:
    try:
        return lake.read_weeks(spark, layer, table, context.partition_keys)
    except lake.MissingInput as e:
        raise dg.Failure(str(e)) from e


# Bronze: one step generates the three raw tables, with one scale for all.
_BRONZE_DESCRIPTIONS = {
    "customers": "Raw weekly snapshot of the customer base (scale 1: 10,000 customers), as delivered: "
    "some emails, ages and cities missing, about 1% of rows sent twice.",
    "products": "Raw weekly snapshot of the product catalog (scale 1: 200 products) with that week's stock; "
    "about 10% inactive, some suppliers and prices missing, about 1% of rows sent twice.",
    "transactions": "Raw orders placed during the week (scale 1: 50,000), timestamped in UTC; "
    "about 15% not completed (pending, cancelled, refunded, failed), some values missing, about 2% sent twice.",
}


# Every Monday at 03:00 UTC, the week that has just ended (the latest week is the one running).
WEEK_JUST_ENDED = (
    AC.in_latest_time_window(lookback_delta=dt.timedelta(weeks=2)) & ~AC.in_latest_time_window()
    & AC.cron_tick_passed("0 3 * * 1", "UTC").since_last_handled()
    & ~AC.in_progress()
)


@dg.multi_asset(
    name="retail_bronze",
    specs=[
        dg.AssetSpec(asset_key(BRONZE, t), description=d, group_name=GROUP, owners=OWNERS, tags=TAGS,
                     code_version=CODE_VERSION, kinds=KINDS,
                     automation_condition=WEEK_JUST_ENDED, metadata=_columns(BRONZE, t))
        for t, d in _BRONZE_DESCRIPTIONS.items()
    ],
    partitions_def=weekly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=True,
)
def retail_bronze(
    context: dg.AssetExecutionContext, config: GeneratorConfig, spark: SparkResource
) -> Iterator[dg.MaterializeResult]:
    """Generate the shop's raw customers, products and transactions for the run's weeks:
    deterministic per week, so a re-run writes the same rows."""
    make = {"customers": generator.customers, "products": generator.products, "transactions": generator.transactions}
    for table, build in make.items():
        if asset_key(BRONZE, table) in context.selected_asset_keys:
            frame = build(spark.session, context.partition_keys, config.scale, config.seed)
            yield _publish(context, spark, frame, BRONZE, table)


def _layer(layer: str, table: str, *deps: dg.AssetKey) -> dict:
    return dict(
        deps=list(deps),
        metadata=_columns(layer, table),
        partitions_def=weekly_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=GROUP, owners=OWNERS, tags=TAGS,
        code_version=CODE_VERSION,
        kinds=KINDS,
        automation_condition=WHEN_INPUTS_CHANGE,
    )


@dg.asset(**_layer(SILVER, "transactions", asset_key(BRONZE, "transactions")))
def retail_silver_transactions(context: dg.AssetExecutionContext, spark: SparkResource) -> dg.MaterializeResult:
    """Completed orders only, one row per transaction_id, typed (amount double, timestamp UTC),
    with date, hour, weekday and weekend flag; missing payment method, device or browser become
    'unknown'. Duplicates, orders not completed, and orders without customer or positive amount
    are dropped and counted (rows_read = rows_kept + rows_<reason>)."""
    cleaned = transforms.clean_transactions(_read(spark, context, BRONZE, "transactions"))
    return _publish(context, spark, cleaned.frame, SILVER, "transactions", cleaned.fates)


@dg.asset(**_layer(SILVER, "products", asset_key(BRONZE, "products")))
def retail_silver_products(context: dg.AssetExecutionContext, spark: SparkResource) -> dg.MaterializeResult:
    """Active products only, one row per product_id, with price band (budget/mid/premium), stock
    status (out_of_stock/low_stock/in_stock) and inventory value; a missing supplier becomes
    'unknown'. Duplicates, inactive and unpriced products are dropped and counted."""
    cleaned = transforms.active_products(_read(spark, context, BRONZE, "products"))
    return _publish(context, spark, cleaned.frame, SILVER, "products", cleaned.fates)


@dg.asset(**_layer(SILVER, "customers", asset_key(BRONZE, "customers"), asset_key(SILVER, "transactions")))
def retail_silver_customers(context: dg.AssetExecutionContext, spark: SparkResource) -> dg.MaterializeResult:
    """One row per customer and week, enriched with the week's spending from clean transactions
    (total, orders, average order, last purchase), the segment it earns (Premium >= 5,000,
    Gold >= 2,000, Silver >= 800, else Bronze), age group, tenure, registration year/month and
    days since last purchase. Duplicates are dropped and counted."""
    cleaned = transforms.enrich_customers(
        _read(spark, context, BRONZE, "customers"), _read(spark, context, SILVER, "transactions")
    )
    return _publish(context, spark, cleaned.frame, SILVER, "customers", cleaned.fates)


@dg.asset(**_layer(GOLD, "customer_segments", asset_key(SILVER, "customers")))
def retail_gold_customer_segments(context: dg.AssetExecutionContext, spark: SparkResource) -> dg.MaterializeResult:
    """Customer segment analysis by week and city: customers, revenue, average spend, orders and
    order value of each segment."""
    frame = transforms.customer_segments(_read(spark, context, SILVER, "customers"))
    return _publish(context, spark, frame, GOLD, "customer_segments")


@dg.asset(**_layer(GOLD, "category_performance", asset_key(SILVER, "transactions"), asset_key(SILVER, "products")))
def retail_gold_category_performance(context: dg.AssetExecutionContext, spark: SparkResource) -> dg.MaterializeResult:
    """Product category performance by week: orders, units, revenue, average order value,
    customers and share of the week's revenue."""
    frame = transforms.category_performance(
        _read(spark, context, SILVER, "transactions"), _read(spark, context, SILVER, "products")
    )
    return _publish(context, spark, frame, GOLD, "category_performance")


@dg.asset(**_layer(GOLD, "payment_methods", asset_key(SILVER, "transactions")))
def retail_gold_payment_methods(context: dg.AssetExecutionContext, spark: SparkResource) -> dg.MaterializeResult:
    """Payment method usage by week: orders, revenue, average amount and share of orders."""
    frame = transforms.payment_methods(_read(spark, context, SILVER, "transactions"))
    return _publish(context, spark, frame, GOLD, "payment_methods")


@dg.asset(**_layer(GOLD, "devices", asset_key(SILVER, "transactions")))
def retail_gold_devices(context: dg.AssetExecutionContext, spark: SparkResource) -> dg.MaterializeResult:
    """Device and browser statistics by week: orders, revenue, average amount, customers."""
    frame = transforms.devices(_read(spark, context, SILVER, "transactions"))
    return _publish(context, spark, frame, GOLD, "devices")


@dg.asset(**_layer(GOLD, "supplier_inventory", asset_key(SILVER, "products")))
def retail_gold_supplier_inventory(context: dg.AssetExecutionContext, spark: SparkResource) -> dg.MaterializeResult:
    """Product inventory by week, supplier and category: active products, stock, stock-outs,
    low stock, average price and inventory value."""
    frame = transforms.supplier_inventory(_read(spark, context, SILVER, "products"))
    return _publish(context, spark, frame, GOLD, "supplier_inventory")
