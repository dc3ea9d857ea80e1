"""What assets and checks show in the Dagster UI, the same way in every source.

Keys: ``dagster/row_count`` (rows stored), ``dagster/uri`` (where they are stored),
``dagster/column_schema`` (from the asset's Pandera schema), ``dagster/table_name`` (a
warehouse table); a source's own figures beside them (``rows_read``, ``rows_quarantined``, ...).
"""

import dagster as dg
import pandera.errors
import polars as pl
from tabulate import tabulate


ROW_COUNT = "dagster/row_count"
URI = "dagster/uri"
COLUMN_SCHEMA = "dagster/column_schema"
TABLE_NAME = "dagster/table_name"


def _describe(check) -> str:
    if check.error:
        return str(check.error)
    stats = ", ".join(f"{k}={v}" for k, v in (check.statistics or {}).items())
    return f"{check.name}({stats})"


def column_schema(schema, checks: bool = True) -> dg.TableSchema:
    """A Pandera schema (or model) as the UI's column list: name, type, nullability, uniqueness
    and, with ``checks``, what each check requires (off where a check's bounds are a run's)."""
    if isinstance(schema, type):
        schema = schema.to_schema()
    return dg.TableSchema(columns=[
        dg.TableColumn(
            name,
            str(column.dtype),
            description=column.description,
            constraints=dg.TableColumnConstraints(
                nullable=column.nullable, unique=column.unique,
                other=[_describe(c) for c in column.checks] if checks else [],
            ),
        )
        for name, column in schema.columns.items()
    ])


def record_weeks(context: dg.AssetExecutionContext, table: pl.DataFrame, asset_key=None) -> None:
    """Each week's own figures on its own materialization (a range run records every week): the
    table's columns, ``rows`` as ``dagster/row_count`` and ``uri`` as ``dagster/uri``."""
    names = {"rows": ROW_COUNT, "uri": URI}
    for row in table.iter_rows(named=True):
        week = row.pop("week")
        context.add_asset_metadata({names.get(k, k): v for k, v in row.items()}, asset_key=asset_key,
                                   partition_key=week)


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
