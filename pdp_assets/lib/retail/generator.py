"""A deterministic generator of a retail shop's raw data, one ISO week at a time, in Spark.

Scale 1 is the seed pipeline's whole data set *per week*: a snapshot of 10,000 customers and of
a 200-product catalog, and 50,000 transactions timed inside the week. ``scale`` multiplies all
three. Every value is a hash of (seed, week, row number, column), never ``rand()``: a week's rows
are the same whatever range it is generated in and however Spark splits the work, so re-running a
week, alone or in a backfill, writes identical data.

Customers and products keep their attributes from week to week (hashed without the week); what
changes weekly is stock, and the mess: missing values, re-sent duplicate rows and transactions
that were not completed (pending, cancelled, refunded, failed).
"""

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pdp_assets.lib.retail.lake import WEEK

CUSTOMERS, PRODUCTS, TRANSACTIONS = 10_000, 200, 50_000
STATIC = dt.date(1970, 1, 5)  # the "week" of attributes that never change

FIRST_NAMES = ["Emma", "Liam", "Olivia", "Noah", "Ava", "Elias", "Sofie", "Jakob", "Nora", "Lucas",
               "Ingrid", "Oskar", "Maja", "Henrik", "Sara", "Ali", "Mei", "Ana", "Jonas", "Ida"]
LAST_NAMES = ["Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Kristiansen",
              "Jensen", "Karlsen", "Berg", "Haugen", "Hagen", "Eriksen", "Smith", "Garcia", "Chen", "Khan"]
DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "online.no", "proton.me"]
CITIES = ["Oslo", "Bergen", "Stavanger", "Trondheim", "Drammen", "Kristiansand", "Tromsø", "Sandnes"]
CATEGORIES = ["Electronics", "Clothing", "Home & Garden", "Sports", "Books", "Beauty", "Toys", "Grocery"]
SUPPLIERS = ["Nordic Supply AS", "Global Goods Ltd", "FjordTrade", "Acme Wholesale", "EuroDistrib", "Kiwi Imports"]
BRANDS = ["Aurora", "Fjell", "Polar", "Vik", "Nord", "Tind", "Lys", "Bølge"]
# (value, weight): realistic, uneven shares
PAYMENTS = [("credit_card", 40), ("debit_card", 25), ("paypal", 18), ("vipps", 10), ("bank_transfer", 5), ("gift_card", 2)]
DEVICES = [("mobile", 55), ("desktop", 35), ("tablet", 10)]
BROWSERS = [("chrome", 58), ("safari", 24), ("firefox", 9), ("edge", 7), ("samsung_internet", 2)]
STATUSES = [("completed", 85), ("pending", 6), ("cancelled", 5), ("refunded", 3), ("failed", 1)]


@dataclass(frozen=True)
class Sizes:
    customers: int
    products: int
    transactions: int

    @classmethod
    def at(cls, scale: float) -> "Sizes":
        def n(base: int) -> int:
            return max(1, round(base * scale))

        return cls(n(CUSTOMERS), n(PRODUCTS), n(TRANSACTIONS))


def _uniform(seed: int, week: Column, i: Column, name: str) -> Column:
    """A number in [0, 1) that depends only on (seed, week, row, name)."""
    h = F.xxhash64(F.lit(seed), F.lit(name), week, i)
    return h.bitwiseAND(F.lit((1 << 53) - 1)).cast("double") / float(1 << 53)


def _pick(u: Column, values: list[str]) -> Column:
    return F.element_at(F.array(*map(F.lit, values)), (u * len(values)).cast("int") + 1)


def _weighted(u: Column, choices: list[tuple[str, int]]) -> Column:
    total, upper = sum(w for _, w in choices), 0
    expr = None
    for value, weight in choices:
        upper += weight
        expr = F.when(u < upper / total, value) if expr is None else expr.when(u < upper / total, value)
    return expr


def _sometimes_null(u: Column, share: float, value: Column) -> Column:
    return F.when(u >= share, value)


def _rows(spark: SparkSession, weeks: list[str], per_week: int) -> DataFrame:
    """``per_week`` rows numbered ``i`` for each week: the skeleton every table is built on."""
    mondays = spark.createDataFrame([(dt.date.fromisoformat(w),) for w in weeks], f"{WEEK} date")
    return mondays.crossJoin(spark.range(per_week).withColumnRenamed("id", "i"))


def _with_duplicates(frame: DataFrame, seed: int, share: float, name: str) -> DataFrame:
    """Add exact copies of about ``share`` of the rows (records sent twice)."""
    again = frame.where(_uniform(seed, F.col(WEEK), F.col("i"), name) < share)
    return frame.unionByName(again).drop("i")


def unit_price(seed: int, product: Column) -> Column:
    """A product's list price, 5 to 500, most items cheap (shared by catalog and transactions)."""
    u = _uniform(seed, F.lit(STATIC), product, "price")
    return F.round(F.lit(5.0) + 495.0 * u * u, 2)


def customers(spark: SparkSession, weeks: list[str], scale: float = 1.0, seed: int = 535) -> DataFrame:
    """The customer snapshot of each week."""
    n = Sizes.at(scale).customers
    rows = _rows(spark, weeks, n)
    i, wk = F.col("i"), F.col(WEEK)

    def static(name: str) -> Column:
        return _uniform(seed, F.lit(STATIC), i, name)

    def weekly(name: str) -> Column:
        return _uniform(seed, wk, i, name)

    first, last = _pick(static("first"), FIRST_NAMES), _pick(static("last"), LAST_NAMES)
    email = F.lower(F.concat(first, F.lit("."), last, (i + 1).cast("string"), F.lit("@"), _pick(static("domain"), DOMAINS)))
    frame = rows.select(
        WEEK,
        "i",
        F.format_string("C%07d", i + 1).alias("customer_id"),
        first.alias("first_name"),
        last.alias("last_name"),
        _sometimes_null(weekly("null_email"), 0.03, email).alias("email"),
        _sometimes_null(weekly("null_age"), 0.02, (18 + static("age") * 62).cast("int")).alias("age"),
        _sometimes_null(weekly("null_city"), 0.01, _pick(static("city"), CITIES)).alias("city"),
        F.date_add(F.lit(dt.date(2017, 1, 2)), (static("registered") * 1090).cast("int")).alias("registration_date"),
    )
    return _with_duplicates(frame, seed, 0.01, "dup_customer")


def products(spark: SparkSession, weeks: list[str], scale: float = 1.0, seed: int = 535) -> DataFrame:
    """The product catalog of each week; stock moves from week to week."""
    n = Sizes.at(scale).products
    rows = _rows(spark, weeks, n)
    i, wk = F.col("i"), F.col(WEEK)

    def static(name: str) -> Column:
        return _uniform(seed, F.lit(STATIC), i, name)

    def weekly(name: str) -> Column:
        return _uniform(seed, wk, i, name)

    category = _pick(static("category"), CATEGORIES)
    stock = F.when(weekly("sold_out") < 0.06, 0).otherwise((weekly("stock") * 500).cast("int"))
    frame = rows.select(
        WEEK,
        "i",
        F.format_string("P%05d", i + 1).alias("product_id"),
        F.format_string("%s %s %d", _pick(static("brand"), BRANDS), category, i + 1).alias("product_name"),
        category.alias("category"),
        _sometimes_null(weekly("null_supplier"), 0.02, _pick(static("supplier"), SUPPLIERS)).alias("supplier"),
        _sometimes_null(weekly("null_price"), 0.01, unit_price(seed, i)).alias("price"),
        stock.alias("stock_quantity"),
        (static("active") < 0.9).alias("is_active"),
    )
    return _with_duplicates(frame, seed, 0.01, "dup_product")


def transactions(spark: SparkSession, weeks: list[str], scale: float = 1.0, seed: int = 535) -> DataFrame:
    """Each week's orders, timestamped inside the week (UTC)."""
    sizes = Sizes.at(scale)
    rows = _rows(spark, weeks, sizes.transactions)
    i, wk = F.col("i"), F.col(WEEK)

    def weekly(name: str) -> Column:
        return _uniform(seed, wk, i, name)

    # Some customers buy far more than others: skew the choice towards low customer numbers.
    customer = (weekly("customer") ** 2 * sizes.customers).cast("long")
    product = (weekly("product") * sizes.products).cast("long")
    quantity = (1 + weekly("quantity") ** 2 * 5).cast("int")
    seconds = (weekly("second") * 7 * 86_400).cast("long")
    frame = rows.select(
        WEEK,
        "i",
        F.format_string("T%s-%07d", F.date_format(wk, "yyyyMMdd"), i + 1).alias("transaction_id"),
        _sometimes_null(weekly("null_customer"), 0.005, F.format_string("C%07d", customer + 1)).alias("customer_id"),
        F.format_string("P%05d", product + 1).alias("product_id"),
        F.timestamp_seconds(F.unix_timestamp(wk.cast("timestamp")) + seconds).alias("transaction_ts"),
        quantity.alias("quantity"),
        _sometimes_null(weekly("null_amount"), 0.005, F.round(quantity * unit_price(seed, product), 2)).alias("amount"),
        _sometimes_null(weekly("null_payment"), 0.01, _weighted(weekly("payment"), PAYMENTS)).alias("payment_method"),
        _weighted(weekly("device"), DEVICES).alias("device_type"),
        _sometimes_null(weekly("null_browser"), 0.02, _weighted(weekly("browser"), BROWSERS)).alias("browser"),
        _weighted(weekly("status"), STATUSES).alias("status"),
    )
    return _with_duplicates(frame, seed, 0.02, "dup_transaction")
