"""Pandera (Polars) schemas of every retail table, as the asset checks validate them.

Checks collect a week from Spark through Arrow into Polars and validate it with pandera.polars
(see docs/retail.md for why not pandera.pyspark). Bronze schemas accept the mess raw data has
(nulls, duplicates, any status) but not a broken generator; silver and gold ones are strict.
"""

import pandera.polars as pa
import polars as pl

from pdp_assets.lib.retail.generator import CATEGORIES, STATUSES
from pdp_assets.lib.retail.transforms import AGE_GROUPS, PRICE_BANDS, SEGMENTS

TS = pl.Datetime("us", "UTC")


def _col(dtype, *checks: pa.Check, nullable: bool = False, unique: bool = False) -> pa.Column:
    return pa.Column(dtype, checks=list(checks), nullable=nullable, unique=unique)


def _id(pattern: str, **kwargs) -> pa.Column:
    return _col(pl.String, pa.Check.str_matches(pattern), **kwargs)


def _schema(columns: dict[str, pa.Column]) -> pa.DataFrameSchema:
    return pa.DataFrameSchema({"week_start": _col(pl.Date), **columns}, strict=True)


WEEK_SHARE = [pa.Check.in_range(0, 100)]

bronze_customers = _schema(
    {
        "customer_id": _id(r"^C\d{7}$"),
        "first_name": _col(pl.String),
        "last_name": _col(pl.String),
        "email": _col(pl.String, pa.Check.str_contains("@"), nullable=True),
        "age": _col(pl.Int32, pa.Check.in_range(18, 120), nullable=True),
        "city": _col(pl.String, nullable=True),
        "registration_date": _col(pl.Date),
    }
)
bronze_products = _schema(
    {
        "product_id": _id(r"^P\d{5}$"),
        "product_name": _col(pl.String),
        "category": _col(pl.String, pa.Check.isin(CATEGORIES)),
        "supplier": _col(pl.String, nullable=True),
        "price": _col(pl.Float64, pa.Check.gt(0), nullable=True),
        "stock_quantity": _col(pl.Int32, pa.Check.ge(0)),
        "is_active": _col(pl.Boolean),
    }
)
bronze_transactions = _schema(
    {
        "transaction_id": _id(r"^T\d{8}-\d{7}$"),
        "customer_id": _id(r"^C\d{7}$", nullable=True),
        "product_id": _id(r"^P\d{5}$"),
        "transaction_ts": _col(TS),
        "quantity": _col(pl.Int32, pa.Check.in_range(1, 100)),
        "amount": _col(pl.Float64, nullable=True),
        "payment_method": _col(pl.String, nullable=True),
        "device_type": _col(pl.String),
        "browser": _col(pl.String, nullable=True),
        "status": _col(pl.String, pa.Check.isin([s for s, _ in STATUSES])),
    }
)

# Silver: the gates in front of gold (blocking checks).
silver_transactions = _schema(
    {
        "transaction_id": _id(r"^T\d{8}-\d{7}$", unique=True),
        "customer_id": _id(r"^C\d{7}$"),
        "product_id": _id(r"^P\d{5}$"),
        "transaction_ts": _col(TS),
        "transaction_date": _col(pl.Date),
        "hour": _col(pl.Int32, pa.Check.in_range(0, 23)),
        "day_of_week": _col(pl.Int32, pa.Check.in_range(1, 7)),
        "is_weekend": _col(pl.Boolean),
        "quantity": _col(pl.Int32, pa.Check.ge(1)),
        "amount": _col(pl.Float64, pa.Check.gt(0)),
        "payment_method": _col(pl.String),
        "device_type": _col(pl.String),
        "browser": _col(pl.String),
    }
)
silver_products = _schema(
    {
        "product_id": _id(r"^P\d{5}$", unique=True),
        "product_name": _col(pl.String),
        "category": _col(pl.String, pa.Check.isin(CATEGORIES)),
        "supplier": _col(pl.String),
        "price": _col(pl.Float64, pa.Check.gt(0)),
        "stock_quantity": _col(pl.Int32, pa.Check.ge(0)),
        "price_band": _col(pl.String, pa.Check.isin([b for b, _ in PRICE_BANDS])),
        "stock_status": _col(pl.String, pa.Check.isin(["out_of_stock", "low_stock", "in_stock"])),
        "inventory_value": _col(pl.Float64, pa.Check.ge(0)),
    }
)
silver_customers = _schema(
    {
        "customer_id": _id(r"^C\d{7}$", unique=True),
        "full_name": _col(pl.String),
        "email": _col(pl.String, nullable=True),
        "email_domain": _col(pl.String, nullable=True),
        "age": _col(pl.Int32, nullable=True),
        "age_group": _col(pl.String, pa.Check.isin([g for g, _ in AGE_GROUPS]), nullable=True),
        "city": _col(pl.String),
        "registration_date": _col(pl.Date),
        "registration_year": _col(pl.Int32),
        "registration_month": _col(pl.Int32, pa.Check.in_range(1, 12)),
        "tenure_days": _col(pl.Int32, pa.Check.ge(0)),
        "total_spent": _col(pl.Float64, pa.Check.ge(0)),
        "order_count": _col(pl.Int32, pa.Check.ge(0)),
        "avg_order_value": _col(pl.Float64, pa.Check.gt(0), nullable=True),
        "last_purchase_ts": _col(TS, nullable=True),
        "days_since_last_purchase": _col(pl.Int32, pa.Check.in_range(0, 6), nullable=True),
        "segment": _col(pl.String, pa.Check.isin([s for s, _ in SEGMENTS])),
    }
)

# Gold: small weekly aggregates, validated in full.
_MONEY = _col(pl.Float64, pa.Check.ge(0))
_COUNT = _col(pl.Int64, pa.Check.ge(0))

gold_customer_segments = _schema(
    {
        "city": _col(pl.String),
        "segment": _col(pl.String, pa.Check.isin([s for s, _ in SEGMENTS])),
        "customers": _col(pl.Int64, pa.Check.gt(0)),
        "revenue": _MONEY,
        "avg_spent": _MONEY,
        "avg_orders": _col(pl.Float64, pa.Check.ge(0)),
        "avg_order_value": _MONEY,
    }
)
gold_category_performance = _schema(
    {
        "category": _col(pl.String, unique=True),
        "orders": _col(pl.Int64, pa.Check.gt(0)),
        "units": _COUNT,
        "revenue": _MONEY,
        "avg_order_value": _MONEY,
        "customers": _COUNT,
        "revenue_share_pct": _col(pl.Float64, *WEEK_SHARE),
    }
)
gold_payment_methods = _schema(
    {
        "payment_method": _col(pl.String, unique=True),
        "orders": _col(pl.Int64, pa.Check.gt(0)),
        "revenue": _MONEY,
        "avg_amount": _MONEY,
        "order_share_pct": _col(pl.Float64, *WEEK_SHARE),
    }
)
gold_devices = _schema(
    {
        "device_type": _col(pl.String),
        "browser": _col(pl.String),
        "orders": _col(pl.Int64, pa.Check.gt(0)),
        "revenue": _MONEY,
        "avg_amount": _MONEY,
        "customers": _COUNT,
    }
)
gold_supplier_inventory = _schema(
    {
        "supplier": _col(pl.String),
        "category": _col(pl.String, pa.Check.isin(CATEGORIES)),
        "products": _col(pl.Int64, pa.Check.gt(0)),
        "total_stock": _COUNT,
        "out_of_stock": _col(pl.Int64, pa.Check.ge(0)),
        "low_stock": _col(pl.Int64, pa.Check.ge(0)),
        "avg_price": _MONEY,
        "inventory_value": _MONEY,
    }
)
