"""Pandera asset checks on every retail table, per week.

Silver checks are blocking: gold is not computed from silver data that fails its schema. Bronze
checks warn (raw data is messy by nature; they catch a broken feed, not the expected mess). Gold
checks fail the table but block nothing (nothing is downstream).

In a one-week run a check's result is recorded for that week; in a single-run backfill over a
range it validates every week of the range, fails if any fails, and lists each week's outcome.
"""

import dagster as dg
import pandera.polars as pa
import polars as pl

from pdp_assets.defs.retail.assets import asset_key
from pdp_assets.lib.metadata import markdown_table, pandera_check_result
from pdp_assets.lib.partitions import week_path, weekly_partitions
from pdp_assets.lib.resources.spark import SparkResource
from pdp_assets.lib.retail import lake, schemas
from pdp_assets.lib.retail.lake import BRONZE, GOLD, SILVER

SCHEMA_CHECK = "pandera_schema"
# A week larger than this is validated on its first rows only (never at the seed's scales).
MAX_ROWS_PER_WEEK = 1_000_000


def validate_weeks(
    spark: SparkResource, layer: str, table: str, schema: pa.DataFrameSchema, weeks: list[str]
) -> dg.AssetCheckResult:
    """Validate each week with Pandera (on Polars, through Arrow); pass only if all pass."""
    outcomes, first_failure = [], None
    for week in weeks:
        try:
            stored = lake.read_weeks(spark, layer, table, [week])
        except lake.MissingInput:
            outcomes.append((week_path(week), 0, False, "table not written"))
            continue
        frame = pl.from_arrow(stored.limit(MAX_ROWS_PER_WEEK).toArrow())
        if frame.height == 0:
            outcomes.append((week_path(week), 0, False, "no rows"))
            continue
        result = pandera_check_result(schema, frame)
        failures = result.metadata["failures"].value if not result.passed else 0
        outcomes.append((week_path(week), frame.height, result.passed, f"{failures} failure case(s)" if failures else ""))
        if not result.passed and first_failure is None:
            first_failure = result.metadata["failure_cases"]
    table_md = pl.DataFrame(outcomes, schema=["week", "rows", "passed", "problem"], orient="row")
    failing = [o for o in outcomes if not o[2]]
    metadata = {
        "weeks_checked": len(outcomes),
        "weeks_failing": len(failing),
        "outcome_by_week": markdown_table(table_md.sort("passed"), rows=60),
    }
    if first_failure is not None:
        metadata["failure_cases_first_failing_week"] = first_failure
    return dg.AssetCheckResult(passed=not failing, metadata=metadata)


def _schema_check(
    layer: str, table: str, schema: pa.DataFrameSchema, blocking: bool, severity: dg.AssetCheckSeverity
) -> dg.AssetChecksDefinition:
    what = {BRONZE: "raw", SILVER: "clean", GOLD: "analytics"}[layer]

    @dg.asset_check(
        asset=asset_key(layer, table),
        name=SCHEMA_CHECK,
        blocking=blocking,
        partitions_def=weekly_partitions,
        description=f"Pandera: every week of {layer}/{table} matches the {what} schema (columns, types, "
        "allowed values, ranges, unique keys)" + ("; gold waits for it" if blocking else ""),
    )
    def check(context: dg.AssetCheckExecutionContext, spark: SparkResource) -> dg.AssetCheckResult:
        result = validate_weeks(spark, layer, table, schema, context.partition_keys)
        return dg.AssetCheckResult(passed=result.passed, metadata=result.metadata, severity=severity)

    return check


_WARN, _ERROR = dg.AssetCheckSeverity.WARN, dg.AssetCheckSeverity.ERROR
retail_checks = [
    _schema_check(BRONZE, "customers", schemas.bronze_customers, False, _WARN),
    _schema_check(BRONZE, "products", schemas.bronze_products, False, _WARN),
    _schema_check(BRONZE, "transactions", schemas.bronze_transactions, False, _WARN),
    _schema_check(SILVER, "transactions", schemas.silver_transactions, True, _ERROR),
    _schema_check(SILVER, "products", schemas.silver_products, True, _ERROR),
    _schema_check(SILVER, "customers", schemas.silver_customers, True, _ERROR),
    _schema_check(GOLD, "customer_segments", schemas.gold_customer_segments, False, _ERROR),
    _schema_check(GOLD, "category_performance", schemas.gold_category_performance, False, _ERROR),
    _schema_check(GOLD, "payment_methods", schemas.gold_payment_methods, False, _ERROR),
    _schema_check(GOLD, "devices", schemas.gold_devices, False, _ERROR),
    _schema_check(GOLD, "supplier_inventory", schemas.gold_supplier_inventory, False, _ERROR),
]
