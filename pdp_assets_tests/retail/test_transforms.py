"""The rules of silver and gold on small hand-made frames, and the lake's week folders."""

import datetime as dt
from pathlib import Path

import pytest

from pdp_assets.lib.retail import lake, transforms

MON = dt.date(2024, 12, 30)
TS = dt.datetime(2025, 1, 4, 15, 30, tzinfo=dt.timezone.utc)  # a Saturday
TXN = (
    "week_start date, transaction_id string, customer_id string, product_id string, transaction_ts timestamp,"
    " quantity int, amount double, payment_method string, device_type string, browser string, status string"
)
PRODUCT = (
    "week_start date, product_id string, product_name string, category string, supplier string, price double,"
    " stock_quantity int, is_active boolean"
)
CUSTOMER = (
    "week_start date, customer_id string, first_name string, last_name string, email string, age int, city string,"
    " registration_date date"
)


def _txn(tid, customer="C0000001", amount=10.0, status="completed", payment="paypal", product="P00001"):
    return (MON, tid, customer, product, TS, 1, amount, payment, "mobile", "chrome", status)


def _fates(cleaned) -> dict[str, int]:
    return dict(cleaned.fates.groupBy(transforms.FATE).count().collect())


def test_silver_transactions_keep_completed_unique_usable_orders(spark_session):
    bronze = spark_session.createDataFrame(
        [
            _txn("T1"),
            _txn("T1"),  # sent twice
            _txn("T2", status=" COMPLETED "),  # case and spaces do not matter
            _txn("T3", status="pending"),
            _txn("T4", status="refunded"),
            _txn("T5", customer=None),
            _txn("T6", amount=None),
            _txn("T7", amount=0.0),
            _txn("T8", payment=None),
        ],
        TXN,
    )
    cleaned = transforms.clean_transactions(bronze)
    rows = {r.transaction_id: r for r in cleaned.frame.collect()}
    assert sorted(rows) == ["T1", "T2", "T8"]
    assert _fates(cleaned) == {"kept": 3, "duplicate": 1, "not_completed": 2, "unusable": 3}
    assert rows["T8"].payment_method == "unknown"
    t1 = rows["T1"]
    assert (t1.transaction_date, t1.hour, t1.day_of_week, t1.is_weekend) == (dt.date(2025, 1, 4), 15, 7, True)


def test_silver_products_keep_active_priced_products_with_bands(spark_session):
    rows = [
        (MON, "P1", "a", "Books", "Acme", 20.0, 0, True),
        (MON, "P1", "a", "Books", "Acme", 20.0, 0, True),
        (MON, "P2", "b", "Toys", None, 120.0, 5, True),
        (MON, "P3", "c", "Toys", "Acme", 900.0, 50, True),
        (MON, "P4", "d", "Toys", "Acme", 10.0, 50, False),
        (MON, "P5", "e", "Toys", "Acme", None, 50, True),
    ]
    cleaned = transforms.active_products(spark_session.createDataFrame(rows, PRODUCT))
    got = {r.product_id: (r.supplier, r.price_band, r.stock_status, r.inventory_value) for r in cleaned.frame.collect()}
    assert got == {
        "P1": ("Acme", "budget", "out_of_stock", 0.0),
        "P2": ("unknown", "mid", "low_stock", 600.0),
        "P3": ("Acme", "premium", "in_stock", 45000.0),
    }
    assert _fates(cleaned) == {"kept": 3, "duplicate": 1, "inactive": 1, "unpriced": 1}


def test_silver_customers_segment_by_weekly_spend(spark_session):
    people = [
        (MON, f"C{i}", "Ann", "Berg", f"ann{i}@x.no", age, "Oslo", dt.date(2024, 1, 1))
        for i, age in enumerate([22, 30, 45, 70, None])
    ]
    customers = spark_session.createDataFrame(people + people[:1], CUSTOMER)
    orders = [("C0", 3000.0), ("C0", 2000.0), ("C1", 2000.0), ("C2", 799.99), ("C3", 800.0)]
    txns = transforms.clean_transactions(
        spark_session.createDataFrame([_txn(f"T{n}", c, a) for n, (c, a) in enumerate(orders)], TXN)
    ).frame
    cleaned = transforms.enrich_customers(customers, txns)
    got = {r.customer_id: r for r in cleaned.frame.collect()}
    assert {c: r.segment for c, r in got.items()} == {
        "C0": "Premium", "C1": "Gold", "C2": "Bronze", "C3": "Silver", "C4": "Bronze"
    }
    assert _fates(cleaned) == {"kept": 5, "duplicate": 1}
    c0, c4 = got["C0"], got["C4"]
    assert (c0.total_spent, c0.order_count, c0.avg_order_value, c0.days_since_last_purchase) == (5000.0, 2, 2500.0, 1)
    assert (c0.age_group, got["C3"].age_group, c4.age_group) == ("18-25", "65+", None)
    assert (c4.total_spent, c4.order_count, c4.avg_order_value, c4.last_purchase_ts) == (0.0, 0, None, None)
    assert (c0.full_name, c0.email_domain, c0.tenure_days, c0.registration_year) == ("Ann Berg", "x.no", 370, 2024)


def test_gold_tables_aggregate_per_week(spark_session):
    txns = transforms.clean_transactions(
        spark_session.createDataFrame(
            [_txn("T1", amount=30.0), _txn("T2", "C2", 10.0, payment="vipps"), _txn("T3", amount=60.0, product="P09")],
            TXN,
        )
    ).frame
    products = transforms.active_products(
        spark_session.createDataFrame(
            [(MON, "P00001", "a", "Books", "Acme", 20.0, 0, True), (MON, "P00002", "b", "Books", "Acme", 10.0, 10, True)],
            PRODUCT,
        )
    ).frame
    payments = {r.payment_method: (r.orders, r.revenue, r.order_share_pct) for r in transforms.payment_methods(txns).collect()}
    assert payments == {"paypal": (2, 90.0, 66.67), "vipps": (1, 10.0, 33.33)}
    categories = {r.category: (r.orders, r.revenue, r.customers) for r in transforms.category_performance(txns, products).collect()}
    assert categories == {"Books": (2, 40.0, 2), "inactive or unknown": (1, 60.0, 1)}
    (inventory,) = transforms.supplier_inventory(products).collect()
    assert (inventory.products, inventory.total_stock, inventory.out_of_stock, inventory.low_stock) == (2, 10, 1, 1)
    (device,) = transforms.devices(txns).collect()
    assert (device.device_type, device.browser, device.orders, device.customers) == ("mobile", "chrome", 3, 2)


def test_lake_writes_iso_week_folders_and_replaces_only_the_weeks_written(spark, spark_session):
    frame = spark_session.createDataFrame(
        [(dt.date(2024, 12, 30), 1), (dt.date(2020, 12, 28), 2), (dt.date(2021, 1, 4), 3)], "week_start date, v int"
    )
    root = Path(lake.write_weeks(spark, frame, "gold", "t"))
    folders = sorted(str(p.relative_to(root)) for p in root.glob("year=*/week=*"))
    assert folders == ["year=2020/week=53", "year=2021/week=01", "year=2025/week=01"]

    again = spark_session.createDataFrame([(dt.date(2024, 12, 30), 10)], "week_start date, v int")
    lake.write_weeks(spark, again, "gold", "t")  # replaces 2025-W01 only
    stored = lake.read_weeks(spark, "gold", "t", ["2024-12-30", "2020-12-28", "2021-01-04"])
    assert sorted((r.week_start.isoformat(), r.v) for r in stored.collect()) == [
        ("2020-12-28", 2), ("2021-01-04", 3), ("2024-12-30", 10)
    ]
    assert not [p for p in root.rglob(".spark-staging*")]
    with pytest.raises(lake.MissingInput, match="materialize it first"):
        lake.read_weeks(spark, "gold", "never_written", ["2024-12-30"])
