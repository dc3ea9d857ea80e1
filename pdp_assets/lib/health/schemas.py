"""Pandera schemas of the stored health layers, one per layer, for one week's file.

They restate the rules the normalisers enforce, so a check fails if a file breaks them however it
got there (a bug, a hand edit, an old code version).
"""

import datetime as dt

import pandera.polars as pa
import polars as pl

from pdp_assets.lib.health.normalise import BP_LIMITS, HR_LIMITS, MAX_SLEEP_MINUTES


def _expr_check(expr: pl.Expr, error: str) -> pa.Check:
    """A dataframe-level Pandera check from a per-row boolean Polars expression."""
    return pa.Check(lambda data: data.lazyframe.select(expr.fill_null(True)), error=error)


def _date(first: dt.date, last: dt.date, unique: bool) -> pa.Column:
    return pa.Column(pl.Date, pa.Check.in_range(first, last), unique=unique)


def blood_pressure(first: dt.date, last: dt.date) -> pa.DataFrameSchema:
    limits = {c: pa.Column(pl.Int64, pa.Check.in_range(lo, hi)) for c, (lo, hi) in BP_LIMITS.items()}
    return pa.DataFrameSchema(
        {
            "date": _date(first, last, unique=False),
            "measured_at": pa.Column(pl.Datetime("us", "UTC"), unique=True),
            **limits,
            "row_number": pa.Column(pl.Int64, pa.Check.ge(2)),
        },
        checks=[_expr_check(pl.col("diastolic") < pl.col("systolic"), "diastolic below systolic")],
        strict=True,
    )


def heart_rate(first: dt.date, last: dt.date) -> pa.DataFrameSchema:
    low, high = HR_LIMITS
    bpm = {c: pa.Column(pl.Float64, pa.Check.in_range(low, high)) for c in ["avg_hr", "min_hr", "max_hr"]}
    return pa.DataFrameSchema(
        {"date": _date(first, last, unique=True), **bpm, "records": pa.Column(pl.UInt32, pa.Check.ge(1))},
        checks=[_expr_check((pl.col("min_hr") <= pl.col("avg_hr")) & (pl.col("avg_hr") <= pl.col("max_hr")),
                            "min_hr <= avg_hr <= max_hr")],
        strict=True,
    )


def sleep(first: dt.date, last: dt.date, min_minutes: int) -> pa.DataFrameSchema:
    minutes = {c: pa.Column(pl.Float64, pa.Check.ge(0))
               for c in ["deep_minutes", "light_minutes", "rem_minutes", "awake_minutes"]}
    stages = pl.sum_horizontal(pl.col(list(minutes)))
    return pa.DataFrameSchema(
        {
            "date": _date(first, last, unique=True),
            "sessions": pa.Column(pl.UInt32, pa.Check.ge(1)),
            # A day may hold two sessions, each at least the minimum, each at most a day.
            "total_minutes": pa.Column(pl.Float64, pa.Check.in_range(min_minutes, 2 * MAX_SLEEP_MINUTES)),
            **minutes,
            "sleep_score": pa.Column(pl.Float64, pa.Check.in_range(0, 100), nullable=True),
            "fell_asleep_at": pa.Column(pl.Datetime("us", "UTC")),
            "woke_at": pa.Column(pl.Datetime("us", "UTC")),
        },
        checks=[_expr_check(stages <= pl.col("total_minutes"), "stage minutes sum to at most total_minutes")],
        strict=True,
    )


def daily(first: dt.date, last: dt.date) -> pa.DataFrameSchema:
    flags = {c: pa.Column(pl.Boolean) for c in ["has_blood_pressure", "has_heart_rate", "has_sleep"]}
    return pa.DataFrameSchema(
        {"date": _date(first, last, unique=True), **flags, "missing_sources": pa.Column(pl.String)},
        checks=[
            _expr_check(pl.any_horizontal(pl.col(list(flags))), "every day has data from at least one source"),
            _expr_check(pl.col("has_blood_pressure") == pl.col("bp_readings").is_not_null(), "flag matches data"),
            _expr_check(pl.col("has_sleep") == pl.col("sleep_minutes").is_not_null(), "flag matches data"),
        ],
        strict=False,  # the metric columns are typed by the join; the flags are what is promised
    )
