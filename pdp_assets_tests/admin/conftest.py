"""The admin console under test: a temporary PDP_HOME, the app in Streamlit's AppTest, ingest runs
on a test instance, and daily health metrics written where the asset writes them."""

import datetime as dt

import polars as pl
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from pdp_assets.lib.health import store as health_store
from pdp_assets.lib.health.normalise import DAILY_SCHEMA
from pdp_assets.ops.admin.settings import APP
from pdp_assets_tests.servers import free_port


@pytest.fixture
def console_env(pdp_env, monkeypatch):
    """PDP_HOME as in pdp_env, no sign-in (the explicit opt-out), a fresh count of failed
    sign-ins, and a Dagster URL where nothing listens."""
    for name in ("PDP_ADMIN_PASSWORD", "PDP_ADMIN_MAX_UPLOAD_MB", "PDP_ADMIN_ALLOWED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PDP_ADMIN_NO_PASSWORD", "1")
    monkeypatch.setenv("PDP_DAGSTER_URL", f"http://127.0.0.1:{free_port()}")
    st.cache_resource.clear()
    return pdp_env


@pytest.fixture
def open_page(console_env):
    """A new browser session (AppTest) on one page: ``open_page("quarantine")``."""

    def open_(page: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=30).run()
        return at.switch_page(f"views/{page}.py").run()

    return open_


@pytest.fixture
def ingest(console_env, instance):
    """What `pdp ingest` does, in process: tick the lab sensors once and run what they ask."""
    from pdp_assets.definitions import build_definitions
    from pdp_assets.ops.runner import evaluate_and_run

    def run():
        summary = evaluate_and_run(build_definitions(), instance)
        assert summary.runs and not summary.failed, summary
        return summary

    return run


SLEEP_COLUMNS = [
    "sleep_minutes", "deep_minutes", "light_minutes", "rem_minutes", "awake_minutes", "sleep_score",
]


def health_day(day: dt.date, sleep: bool = True) -> dict:
    """One row of health_daily_metrics: every source, or every source but sleep."""
    n = day.toordinal() % 7  # some variation from day to day
    row = {
        "date": day, "bp_readings": 2, "systolic_mean": 120.0 + n, "diastolic_mean": 78.0 + n,
        "pulse_mean": 66.0, "systolic_max": 125 + n, "diastolic_max": 82 + n,
        "avg_hr": 64.0 + n, "min_hr": 52.0, "max_hr": 118.0,
        "sleep_minutes": 400.0 + 10 * n, "deep_minutes": 80.0, "light_minutes": 220.0, "rem_minutes": 70.0,
        "awake_minutes": 20.0, "sleep_score": 75.0,
        "has_blood_pressure": True, "has_heart_rate": True, "has_sleep": sleep,
        "missing_sources": "" if sleep else "sleep",
    }
    return row if sleep else {**row, **dict.fromkeys(SLEEP_COLUMNS)}


def write_health(storage, monday: dt.date, weeks: int, skip: set, no_sleep: set) -> None:
    """health_daily_metrics for ``weeks`` ISO weeks from ``monday``, by week, as the asset stores
    it; days in ``skip`` have no row at all, days in ``no_sleep`` have no sleep data."""
    days = [monday + dt.timedelta(days=i) for i in range(7 * weeks)]
    rows = [health_day(d, sleep=d not in no_sleep) for d in days if d not in skip]
    frame = pl.DataFrame(rows, schema=DAILY_SCHEMA)
    for w in range(weeks):
        first = monday + dt.timedelta(weeks=w)
        part = frame.filter(pl.col("date").is_between(first, first + dt.timedelta(days=6)))
        health_store.write_week(storage, "health_daily_metrics", first.isoformat(), part)
