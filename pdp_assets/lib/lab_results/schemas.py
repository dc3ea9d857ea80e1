"""Pandera schemas for lab results: the raw upload (strings, as typed by a partner) and the lake.

The raw schema's checks are the validation rules; each check's ``error`` is the reason a
quarantined row shows in ``pipeline_error`` ({value} is the offending value).
"""

import datetime as dt

import pandera.polars as pa
import polars as pl

from pdp_assets.lib.partitions import FIRST_MONDAY

COLUMNS = ["sample_id", "test_date", "result", "viral_load"]
RESULTS = ["POS", "NEG", "N/A"]
DATE_FORMAT = "%Y-%m-%d"


_PARSERS = {
    "test_date": lambda c: pl.col(c).str.to_date(DATE_FORMAT, strict=False),
    "viral_load": lambda c: pl.col(c).cast(pl.Int64, strict=False),
}


def parsed(key: str) -> str:
    """The column holding ``key``'s text parsed to its type, null where it does not parse."""
    return f"{key}__parsed"


def with_parsed(frame: pl.DataFrame) -> pl.DataFrame:
    """The upload's text columns, plus each typed one parsed once: the checks test the parsed
    value and report the text as typed, and the valid rows keep the parsed value."""
    return frame.with_columns(parse(c).alias(parsed(c)) for c, parse in _PARSERS.items() if c in frame.columns)


def _rows(check):
    """A Pandera custom check from a per-row boolean Polars expression of the column.

    Missing values pass here: the column's ``nullable=False`` reports them once, as missing. So does
    a null result of the check (a value another check reports, such as a date that does not parse).
    """
    return lambda data: data.lazyframe.select(pl.col(data.key).is_null() | check(data.key).fill_null(True))


def raw_schema(today: dt.date) -> pa.DataFrameSchema:
    """Rules for one uploaded row; values arrive as stripped strings, parsed beside (with_parsed)."""

    # A value that does not parse compares as null, which _rows lets pass: parses reports it.
    def after_start(k):
        return pl.col(parsed(k)) >= FIRST_MONDAY

    def not_future(k):
        return pl.col(parsed(k)) <= today

    def parses(k):
        return pl.col(parsed(k)).is_not_null()

    def shaped(k):  # digits where a YYYY-MM-DD date has them
        return pl.col(k).str.contains(r"^\d{4}-\d{1,2}-\d{1,2}$")

    def in_form(k):
        return parses(k) | shaped(k)

    def exists(k):  # in the form but no such day (2026-02-29, 2023-04-31, month 13): said so
        return parses(k) | ~shaped(k)

    def non_negative(k):
        return pl.col(parsed(k)) >= 0

    def column(*checks):
        return pa.Column(str, checks=list(checks), nullable=False)

    return pa.DataFrameSchema(
        {
            "sample_id": column(
                pa.Check(_rows(lambda k: pl.col(k).str.len_chars() > 0), error="sample_id is empty"),
            ),
            "test_date": column(
                pa.Check(_rows(in_form), error="test_date {value!r} is not a date in YYYY-MM-DD form"),
                pa.Check(_rows(exists), error="test_date {value!r} is in YYYY-MM-DD form but no such day exists"),
                pa.Check(
                    _rows(after_start),
                    error=f"test_date {{value}} is before {FIRST_MONDAY} (the first week, ISO 2020-W01)",
                ),
                pa.Check(_rows(not_future), error=f"test_date {{value}} is in the future (today is {today})"),
            ),
            "result": column(
                pa.Check.isin(RESULTS, error="result {value!r} is not one of " + ", ".join(RESULTS)),
            ),
            "viral_load": column(
                pa.Check(_rows(parses), error="viral_load {value!r} is not a whole number (64-bit)"),
                pa.Check(_rows(non_negative), error="viral_load {value} is negative"),
            ),
        },
        strict=False,  # extra columns are reported by the reader, not here
    )


class LabResult(pa.DataFrameModel):
    """One row of the lake: one test of one sample, at most one row per sample_id per week."""

    sample_id: str = pa.Field(unique=True, str_length={"min_value": 1})
    test_date: dt.date = pa.Field(ge=FIRST_MONDAY)
    result: str = pa.Field(isin=RESULTS)
    viral_load: pl.Int64 = pa.Field(ge=0)

    class Config:
        strict = True
        coerce = False

