"""The generator is deterministic per week, sized by scale, and as messy as real data."""

import datetime as dt

from pyspark.sql import functions as F

from pdp_assets.lib.retail import generator
from pdp_assets_tests.retail.conftest import SCALE, WEEK_01, WEEK_52


def _rows(frame, week: str) -> list:
    return sorted(frame.where(F.col("week_start") == dt.date.fromisoformat(week)).collect())


def test_a_week_is_the_same_alone_or_inside_a_range(spark_session):
    for make in (generator.customers, generator.products, generator.transactions):
        alone = _rows(make(spark_session, [WEEK_01], SCALE), WEEK_01)
        in_range = _rows(make(spark_session, [WEEK_52, WEEK_01], SCALE), WEEK_01)
        assert alone == in_range and alone, make.__name__
        assert alone != _rows(make(spark_session, [WEEK_01], SCALE, seed=1), WEEK_01), make.__name__


def test_sizes_follow_the_scale_and_the_data_is_messy(spark_session):
    sizes = generator.Sizes.at(SCALE)
    assert (sizes.customers, sizes.products, sizes.transactions) == (500, 10, 2500)
    assert generator.Sizes.at(1) == generator.Sizes(10_000, 200, 50_000)

    txns = generator.transactions(spark_session, [WEEK_01], SCALE)
    stats = txns.agg(
        F.count("*").alias("rows"),
        F.count_distinct("transaction_id").alias("ids"),
        F.count_if(F.col("status") != "completed").alias("not_completed"),
        F.count_if(F.col("payment_method").isNull()).alias("no_payment"),
        F.min("transaction_ts").alias("first"),
        F.max("transaction_ts").alias("last"),
    ).first()
    assert stats.ids == 2500 and 2500 < stats.rows < 2600  # about 2% sent twice
    assert 200 < stats.not_completed < 550 and stats.no_payment > 0
    monday = dt.datetime(2024, 12, 30, tzinfo=dt.timezone.utc)
    assert monday <= stats.first.astimezone(dt.timezone.utc) and stats.last.astimezone(dt.timezone.utc) < monday + dt.timedelta(days=7)

    customers = generator.customers(spark_session, [WEEK_52, WEEK_01], SCALE)
    # Attributes stay with the customer from week to week; the missing values move.
    names = customers.groupBy("customer_id").agg(F.count_distinct("first_name", "last_name", "registration_date").alias("n"))
    assert names.where("n > 1").count() == 0
    assert customers.where(F.col("email").isNull()).count() > 0
