"""Where health outputs live in the ``health`` container, and reading/writing them.

- ``<layer>/year=YYYY/week=WW/data.parquet``                  normalised layers and daily metrics
- ``quarantine/<source>/year=YYYY/week=WW/data.csv``          rows of a week that failed a rule
- ``quarantine/<source>/undated.csv``                         rows that belong to no week (no usable date)

A week with no rows has no file: writing an empty week removes the old one, so a re-run always
leaves exactly what the week holds now. Every write replaces a blob atomically.
"""

import io

import polars as pl

from pdp_assets.lib.partitions import week_path
from pdp_assets.lib.resources.storage import BlobStorage

CONTAINER = "health"


def week_blob(layer: str, week: str) -> str:
    return f"{layer}/{week_path(week)}/data.parquet"


def quarantine_blob(source: str, week: str) -> str:
    return f"quarantine/{source}/{week_path(week)}/data.csv"


def undated_blob(source: str) -> str:
    return f"quarantine/{source}/undated.csv"


def _replace(storage: BlobStorage, name: str, frame: pl.DataFrame, as_csv: bool) -> None:
    if frame.height == 0:
        storage.delete(CONTAINER, name)
        return
    buf = io.BytesIO()
    if as_csv:
        frame.write_csv(buf)
    else:
        frame.write_parquet(buf, compression="zstd", statistics=True)
    storage.write(CONTAINER, name, buf.getvalue())


def write_week(storage: BlobStorage, layer: str, week: str, frame: pl.DataFrame) -> None:
    _replace(storage, week_blob(layer, week), frame, as_csv=False)


def write_quarantine(storage: BlobStorage, source: str, week: str, frame: pl.DataFrame) -> None:
    _replace(storage, quarantine_blob(source, week), frame, as_csv=True)


def write_undated(storage: BlobStorage, source: str, frame: pl.DataFrame) -> None:
    _replace(storage, undated_blob(source), frame, as_csv=True)


def read_week(storage: BlobStorage, layer: str, week: str, schema: dict) -> pl.DataFrame:
    name = week_blob(layer, week)
    if not storage.exists(CONTAINER, name):
        return pl.DataFrame(schema=schema)
    return pl.read_parquet(storage.read(CONTAINER, name))


def read_weeks(storage: BlobStorage, layer: str, weeks: list[str], schema: dict) -> pl.DataFrame:
    return pl.concat([read_week(storage, layer, w, schema) for w in weeks] or [pl.DataFrame(schema=schema)])


def split_by_week(frame: pl.DataFrame, weeks: list[str]) -> dict[str, pl.DataFrame]:
    """The rows of each week (column ``week``), every asked week present, without ``week``."""
    empty = frame.clear().drop("week")
    parts = {k[0]: v.drop("week") for k, v in frame.partition_by("week", as_dict=True).items()} if frame.height else {}
    return {w: parts.get(w, empty) for w in weeks}
