"""Realistic demo lab results: mostly clean rows, plus the typos partners really send."""

import datetime as dt

import numpy as np
import polars as pl

RESULT_TYPOS = ["Positive", "neg", "POSITIVE", "n/a", "?"]


def lab_results_csv(rows: int, first_day: dt.date, days: int, seed: int = 0, bad_share: float = 0.03) -> bytes:
    """A CSV of ``rows`` lab results dated over ``days`` days from ``first_day``.

    About ``bad_share`` of the rows carry one realistic mistake (a typo in result, a negative or
    non-numeric viral load, an impossible or future date, a missing sample_id); some values
    are padded with spaces. Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    ids = np.char.add(f"S{seed:02d}-", np.arange(rows).astype(str))
    offsets = rng.integers(0, days, rows)
    dates = (np.datetime64(first_day) + offsets).astype(str)
    results = rng.choice(["POS", "NEG", "N/A"], rows, p=[0.2, 0.75, 0.05])
    loads = np.where(results == "POS", rng.integers(100, 5_000_000, rows), 0).astype(str)
    frame = pl.DataFrame({"sample_id": ids, "test_date": dates, "result": results, "viral_load": loads})

    kind = rng.integers(0, 6, rows)
    bad = rng.random(rows) < bad_share
    padded = rng.random(rows) < 0.01
    frame = frame.with_columns(
        pl.when(pl.Series(bad & (kind == 0))).then(pl.lit("")).otherwise("sample_id").alias("sample_id"),
        pl.when(pl.Series(bad & (kind == 1))).then(pl.lit("2023-02-30"))
        .when(pl.Series(bad & (kind == 2))).then(pl.lit((dt.date.today() + dt.timedelta(days=400)).isoformat()))
        .otherwise("test_date").alias("test_date"),
        pl.when(pl.Series(bad & (kind == 3))).then(pl.Series(rng.choice(RESULT_TYPOS, rows)))
        .when(pl.Series(padded)).then(pl.lit(" ") + pl.col("result") + pl.lit(" "))
        .otherwise("result").alias("result"),
        pl.when(pl.Series(bad & (kind == 4))).then(pl.lit("-12"))
        .when(pl.Series(bad & (kind == 5))).then(pl.lit("high"))
        .otherwise("viral_load").alias("viral_load"),
    )
    return frame.write_csv().encode()


def deletion_request_csv(pairs: list[tuple[str, str]]) -> bytes:
    return pl.DataFrame(pairs, schema=["sample_id", "test_date"], orient="row").write_csv().encode()
