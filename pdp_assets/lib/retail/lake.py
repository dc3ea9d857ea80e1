"""The retail lake: ``<lake root>/retail/<layer>/<table>/year=YYYY/week=WW/*.parquet``.

Every table keeps its week's Monday in a ``week_start`` column. A write replaces exactly the
weeks present in the frame, all in one Spark job, with Spark's dynamic partition overwrite: the
files go to a staging folder beside the table (``.spark-staging-*``) and each week's folder is
swapped in at commit (old folder deleted, staged folder renamed), so a week is never half
written, and a re-run of the same input gives the same folders. Other weeks are never touched.
A week that comes out empty writes nothing and keeps what it had (never the case for generated
data; see docs/retail.md).
"""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

from pdp_assets.lib.partitions import week_path
from pdp_assets.lib.resources.spark import SparkResource

BRONZE, SILVER, GOLD = "bronze", "silver", "gold"
WEEK = "week_start"


class MissingInput(Exception):
    """An upstream table has not been written yet."""


def table_path(spark: SparkResource, layer: str, table: str) -> str:
    return spark.path("retail", layer, table)


def week_dir(spark: SparkResource, layer: str, table: str, week: str) -> str:
    return f"{table_path(spark, layer, table)}/{week_path(week)}"


def iso_year(day: Column) -> Column:
    # The ISO year of a Monday's week is the calendar year of that week's Thursday.
    return F.year(F.date_add(day, 3))


def write_weeks(spark: SparkResource, frame: DataFrame, layer: str, table: str) -> str:
    """Replace the weeks present in ``frame`` (one folder per ISO week); returns the table path."""
    path = table_path(spark, layer, table)
    parted = frame.withColumns(
        {
            "year": iso_year(F.col(WEEK)).cast("string"),
            "week": F.lpad(F.weekofyear(F.col(WEEK)).cast("string"), 2, "0"),  # weekofyear is ISO
        }
    )
    (
        parted.repartition("year", "week")  # one file per week
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")  # only the weeks written, never the table
        .partitionBy("year", "week")
        .parquet(path)
    )
    return path


def read_weeks(spark: SparkResource, layer: str, table: str, weeks: list[str]) -> DataFrame:
    """The rows of ``weeks`` (partition keys); a week never written has no rows."""
    path = table_path(spark, layer, table)
    try:
        frame = spark.session.read.option("basePath", path).parquet(path)
    except AnalysisException as e:
        raise MissingInput(f"{layer} table {table} not found at {path}: materialize it first") from e
    # A predicate on the partition columns only: Spark lists and reads just these weeks' folders.
    where = F.format_string("year=%d/week=%02d", F.col("year").cast("int"), F.col("week").cast("int"))
    return frame.where(where.isin([week_path(w) for w in weeks])).drop("year", "week")
