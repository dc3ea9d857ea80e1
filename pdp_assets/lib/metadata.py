"""Shared helpers for what assets and checks show in the Dagster UI."""

import dagster as dg
import pandera.errors
import polars as pl
from tabulate import tabulate


def markdown_table(frame: pl.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """The first rows of a frame as a markdown table."""
    if frame.height == 0:
        return dg.MetadataValue.md("_no rows_")
    head = frame.head(rows)
    return dg.MetadataValue.md(tabulate(head.rows(), headers=head.columns, tablefmt="github"))


def pandera_check_result(schema, frame: pl.DataFrame, **kwargs) -> dg.AssetCheckResult:
    """Validate a frame with a Pandera schema; the failure cases become the check's metadata."""
    try:
        schema.validate(frame, lazy=True)
        return dg.AssetCheckResult(passed=True, metadata={"rows_checked": frame.height}, **kwargs)
    except pandera.errors.SchemaErrors as e:
        cases = e.failure_cases
        return dg.AssetCheckResult(
            passed=False,
            metadata={"rows_checked": frame.height, "failures": cases.height, "failure_cases": markdown_table(cases, 20)},
            **kwargs,
        )


def weeks_check_result(failures_by_week: dict[str, int], **metadata) -> dg.AssetCheckResult:
    """One result for every week a check saw (a single-run backfill checks a whole range at
    once and records one result): it passes only if no week has a failure."""
    failing = {week: n for week, n in failures_by_week.items() if n}
    return dg.AssetCheckResult(
        passed=not failing,
        metadata={
            "weeks_checked": len(failures_by_week),
            "weeks_failing": len(failing),
            "failing": dg.MetadataValue.json(dict(list(failing.items())[:50])),
            **metadata,
        },
    )
