"""What assets and checks show in the Dagster UI, the same way in every source.

Keys: ``dagster/row_count`` (rows stored), ``dagster/uri`` (where they are stored),
``dagster/column_schema`` (from the asset's Pandera schema), ``dagster/table_name`` (a
warehouse table); a source's own figures beside them (``rows_read``, ``rows_quarantined``, ...).
"""

import dagster as dg
import pandera.errors
import polars as pl
from tabulate import tabulate

from pdp_assets.lib.quarantine import shortened


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


def profile(frame: pl.DataFrame, title: str = "", max_values: int = 12) -> dg.MetadataValue:
    """What a frame holds without any of its rows: per column, how many values and distinct
    values, the range of numbers and dates, and the counts of a column with a few values that
    repeat. Metadata stays in the event log for ever, so it never carries a record or an
    identifier (a column whose values are all different shows no value)."""
    if frame.height == 0:
        return dg.MetadataValue.md("_no rows_")
    lines = []
    for name, column in frame.to_dict().items():
        distinct = column.n_unique()
        if column.dtype.is_numeric() or column.dtype.is_temporal():
            shown = f"{column.min()} to {column.max()}" if column.null_count() < column.len() else ""
        elif distinct <= max_values and distinct < column.len():
            counts = column.value_counts(sort=True)
            shown = ", ".join(f"{shortened(v)}: {n:,}" for v, n in counts.rows())
        else:
            shown = "(values not shown)"
        lines.append((name, f"{column.len() - column.null_count():,}", f"{distinct:,}", shown))
    table = tabulate(lines, headers=["column", "values", "distinct", "range or counts"], tablefmt="github")
    return dg.MetadataValue.md(f"{title}\n\n{table}" if title else table)


def pandera_check_result(schema, frame: pl.DataFrame, identifiers: tuple[str, ...] = (),
                         **kwargs) -> dg.AssetCheckResult:
    """Validate a frame with a Pandera schema; the failures, counted per column and check, become
    the check's metadata, with a few failing values as examples except in ``identifiers``
    columns (metadata is kept for ever)."""
    try:
        schema.validate(frame, lazy=True)
        return dg.AssetCheckResult(passed=True, metadata={"rows_checked": frame.height}, **kwargs)
    except pandera.errors.SchemaErrors as e:
        cases = e.failure_cases.with_columns(pl.col("column").cast(pl.String), pl.col("check").cast(pl.String),
                                             pl.col("failure_case").cast(pl.String))
        summary = cases.group_by("column", "check", maintain_order=True).agg(
            pl.len().alias("failures"), pl.col("failure_case").unique(maintain_order=True).head(3).alias("examples")
        ).with_columns(
            examples=pl.when(pl.col("column").is_in(list(identifiers))).then(pl.lit("(not shown)"))
            .otherwise(pl.col("examples").list.join(", "))
        )
        return dg.AssetCheckResult(
            passed=False,
            metadata={"rows_checked": frame.height, "failures": cases.height,
                      "failure_cases": markdown_table(summary, 20)},
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
