"""The rules of silver and gold, as plain functions of Spark DataFrames (tested on hand-made frames).

Every function keeps ``week_start`` and works per week, so one call handles a whole range of weeks.
"""

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pdp_assets.lib.retail.lake import WEEK

UNKNOWN = "unknown"
# Weekly spend thresholds of the customer segments, highest first.
SEGMENTS = [("Premium", 5000.0), ("Gold", 2000.0), ("Silver", 800.0), ("Bronze", 0.0)]
AGE_GROUPS = [("18-25", 25), ("26-35", 35), ("36-50", 50), ("51-65", 65), ("65+", 200)]
LOW_STOCK = 20
PRICE_BANDS = [("budget", 50.0), ("mid", 200.0), ("premium", float("inf"))]


KEPT = "kept"
FATE = "fate"  # what became of an input row: kept, or why it was dropped


@dataclass
class Cleaned:
    """A cleaned table, and the fate of every input row (read = kept + each reason's drops)."""

    frame: DataFrame
    fates: DataFrame  # one row per input row: week_start, fate


def _copy_number(frame: DataFrame, key: str) -> Column:
    """1 for the first row of each (week, key), 2, 3... for its duplicates. The copy kept is
    chosen by the full row's content, so the result never depends on Spark's row order."""
    order = [F.col(c).asc_nulls_last() for c in frame.columns]
    return F.row_number().over(Window.partitionBy(WEEK, key).orderBy(*order))


def _cleaned(frame: DataFrame, fate: Column, *columns: Column | str) -> Cleaned:
    labelled = frame.withColumn(FATE, fate)
    return Cleaned(labelled.where(F.col(FATE) == KEPT).select(*columns), labelled.select(WEEK, FATE))


def clean_transactions(bronze: DataFrame) -> Cleaned:
    """Completed orders only, one row per transaction_id, typed, with time features.

    Dropped: duplicates, orders not completed (any status but completed, in any case), and
    completed orders that cannot be used (no customer, no amount, or an amount <= 0).
    """
    status = F.lower(F.trim("status"))
    usable = F.col("customer_id").isNotNull() & F.col("amount").isNotNull() & (F.col("amount") > 0)
    fate = (
        F.when(_copy_number(bronze, "transaction_id") > 1, "duplicate")
        .when(status.isNull() | (status != "completed"), "not_completed")
        .when(~usable, "unusable")
        .otherwise(KEPT)
    )
    ts = F.col("transaction_ts").cast("timestamp")
    return _cleaned(
        bronze,
        fate,
        WEEK,
        "transaction_id",
        "customer_id",
        "product_id",
        ts.alias("transaction_ts"),
        F.to_date(ts).alias("transaction_date"),
        F.hour(ts).alias("hour"),
        F.dayofweek(ts).alias("day_of_week"),  # 1 = Sunday .. 7 = Saturday (Spark's numbering)
        F.dayofweek(ts).isin(1, 7).alias("is_weekend"),
        F.col("quantity").cast("int").alias("quantity"),
        F.col("amount").cast("double").alias("amount"),
        F.coalesce(F.lower("payment_method"), F.lit(UNKNOWN)).alias("payment_method"),
        F.coalesce(F.lower("device_type"), F.lit(UNKNOWN)).alias("device_type"),
        F.coalesce(F.lower("browser"), F.lit(UNKNOWN)).alias("browser"),
    )


def active_products(bronze: DataFrame) -> Cleaned:
    """Active products only, one row per product_id, with price band and stock status.

    Dropped: duplicates, inactive products, and active products without a positive price.
    """
    priced = F.col("price").isNotNull() & (F.col("price") > 0)
    fate = (
        F.when(_copy_number(bronze, "product_id") > 1, "duplicate")
        .when(~F.col("is_active"), "inactive")
        .when(~priced, "unpriced")
        .otherwise(KEPT)
    )
    price, stock = F.col("price"), F.col("stock_quantity")
    band = F.when(price < PRICE_BANDS[0][1], PRICE_BANDS[0][0])
    band = band.when(price < PRICE_BANDS[1][1], PRICE_BANDS[1][0]).otherwise(PRICE_BANDS[2][0])
    stock_status = F.when(stock <= 0, "out_of_stock").when(stock < LOW_STOCK, "low_stock").otherwise("in_stock")
    return _cleaned(
        bronze,
        fate,
        WEEK,
        "product_id",
        "product_name",
        "category",
        F.coalesce("supplier", F.lit(UNKNOWN)).alias("supplier"),
        price.cast("double").alias("price"),
        stock.cast("int").alias("stock_quantity"),
        band.alias("price_band"),
        stock_status.alias("stock_status"),
        F.round(price * stock, 2).alias("inventory_value"),
    )


def segment(spent: Column) -> Column:
    """The segment of a weekly spend: the first whose floor it reaches."""
    expr = None
    for name, floor in SEGMENTS:
        expr = F.when(spent >= floor, name) if expr is None else expr.when(spent >= floor, name)
    return expr


def enrich_customers(bronze: DataFrame, transactions: DataFrame) -> Cleaned:
    """One row per customer and week with that week's spending (from clean transactions), the
    segment it puts them in, and computed and temporal fields. Dropped: duplicates."""
    fate = F.when(_copy_number(bronze, "customer_id") > 1, "duplicate").otherwise(KEPT)
    spend = transactions.groupBy(WEEK, "customer_id").agg(
        F.round(F.sum("amount"), 2).alias("total_spent"),
        F.count("*").alias("order_count"),
        F.max("transaction_ts").alias("last_purchase_ts"),
    )
    joined = bronze.withColumn(FATE, fate).join(spend, [WEEK, "customer_id"], "left")
    spent = F.coalesce("total_spent", F.lit(0.0))
    orders = F.coalesce("order_count", F.lit(0))
    age_group = None
    for name, upper in AGE_GROUPS:
        older = F.col("age") <= upper
        age_group = F.when(older, name) if age_group is None else age_group.when(older, name)
    week_end = F.date_add(WEEK, 6)
    return _cleaned(
        joined,
        F.col(FATE),
        WEEK,
        "customer_id",
        F.concat_ws(" ", "first_name", "last_name").alias("full_name"),
        "email",
        F.substring_index("email", "@", -1).alias("email_domain"),
        "age",
        age_group.alias("age_group"),
        F.coalesce("city", F.lit(UNKNOWN)).alias("city"),
        "registration_date",
        F.year("registration_date").alias("registration_year"),
        F.month("registration_date").alias("registration_month"),
        F.datediff(week_end, "registration_date").alias("tenure_days"),
        spent.alias("total_spent"),
        orders.cast("int").alias("order_count"),
        F.round(F.when(orders > 0, spent / orders), 2).alias("avg_order_value"),
        "last_purchase_ts",
        F.datediff(week_end, F.to_date("last_purchase_ts")).alias("days_since_last_purchase"),
        segment(spent).alias("segment"),
    )


# Gold: weekly analytics tables, small enough to read in a spreadsheet.


def customer_segments(customers: DataFrame) -> DataFrame:
    """Customers, spend and orders by week, city and segment."""
    return customers.groupBy(WEEK, "city", "segment").agg(
        F.count("*").alias("customers"),
        F.round(F.sum("total_spent"), 2).alias("revenue"),
        F.round(F.avg("total_spent"), 2).alias("avg_spent"),
        F.round(F.avg("order_count"), 2).alias("avg_orders"),
        F.round(F.sum("total_spent") / F.greatest(F.sum("order_count"), F.lit(1)), 2).alias("avg_order_value"),
    )


def category_performance(transactions: DataFrame, products: DataFrame) -> DataFrame:
    """Orders, units and revenue by week and product category. Orders of products no longer
    in the active catalog count under ``inactive or unknown``."""
    catalog = products.select(WEEK, "product_id", "category")
    joined = transactions.join(catalog, [WEEK, "product_id"], "left")
    per_category = joined.groupBy(WEEK, F.coalesce("category", F.lit("inactive or unknown")).alias("category")).agg(
        F.count("*").alias("orders"),
        F.sum("quantity").alias("units"),
        F.round(F.sum("amount"), 2).alias("revenue"),
        F.round(F.avg("amount"), 2).alias("avg_order_value"),
        F.countDistinct("customer_id").alias("customers"),
    )
    return _with_share(per_category, "revenue", "revenue_share_pct")


def payment_methods(transactions: DataFrame) -> DataFrame:
    """Use of each payment method by week: orders, revenue, average amount, share of orders."""
    per_method = transactions.groupBy(WEEK, "payment_method").agg(
        F.count("*").alias("orders"),
        F.round(F.sum("amount"), 2).alias("revenue"),
        F.round(F.avg("amount"), 2).alias("avg_amount"),
    )
    return _with_share(per_method, "orders", "order_share_pct")


def devices(transactions: DataFrame) -> DataFrame:
    """Orders, revenue and customers by week, device type and browser."""
    return transactions.groupBy(WEEK, "device_type", "browser").agg(
        F.count("*").alias("orders"),
        F.round(F.sum("amount"), 2).alias("revenue"),
        F.round(F.avg("amount"), 2).alias("avg_amount"),
        F.countDistinct("customer_id").alias("customers"),
    )


def supplier_inventory(products: DataFrame) -> DataFrame:
    """Active catalog by week, supplier and category: products, stock, stock-outs, value."""
    return products.groupBy(WEEK, "supplier", "category").agg(
        F.count("*").alias("products"),
        F.sum("stock_quantity").cast("long").alias("total_stock"),
        F.sum((F.col("stock_status") == "out_of_stock").cast("int")).alias("out_of_stock"),
        F.sum((F.col("stock_status") == "low_stock").cast("int")).alias("low_stock"),
        F.round(F.avg("price"), 2).alias("avg_price"),
        F.round(F.sum("inventory_value"), 2).alias("inventory_value"),
    )


def _with_share(frame: DataFrame, column: str, name: str) -> DataFrame:
    week_total = F.sum(column).over(Window.partitionBy(WEEK))
    return frame.withColumn(name, F.round(100.0 * F.col(column) / week_total, 2))
