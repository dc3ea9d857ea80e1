"""Health dashboard: daily blood pressure, heart rate and sleep from the health_daily_metrics asset,
with a date filter, physiological threshold lines and the days missing data marked."""

import datetime as dt

import altair as alt
import polars as pl
import streamlit as st

from pdp_assets.ops.admin import console

# Reference lines, adult: ACC/AHA 2017 stage-1 hypertension from 130/80 mmHg, hypotension below
# 90/60; a resting heart rate of 60-100 bpm; 7-9 hours of sleep (AASM/NSF).
BP_LINES = {"systolic 130": 130, "diastolic 80": 80, "systolic 90": 90, "diastolic 60": 60}
HR_LINES = {"60 bpm": 60, "100 bpm": 100}
SLEEP_LINES = {"7 h": 7, "9 h": 9}
SOURCE_FLAG = {"blood pressure": "has_blood_pressure", "heart rate": "has_heart_rate", "sleep": "has_sleep"}

st.title("Health dashboard")
store = console.storage()
weeks = console.health_weeks(store)
if not weeks:
    st.info("No daily health metrics yet: materialize health_daily_metrics (e.g. `pdp demo`).")
    st.stop()
first, last = dt.date.fromisoformat(weeks[0]), dt.date.fromisoformat(weeks[-1]) + dt.timedelta(days=6)
default = (max(first, last - dt.timedelta(days=27)), last)  # the last four weeks
picked = st.date_input("Days", default, min_value=first, max_value=last)
if len(picked) != 2:
    st.stop()  # the second end of the range is still being picked
days = console.daily_health(store, *picked)

missing = days.filter(pl.col("missing_sources") != "")
a, b, c = st.columns(3)
a.metric("Days", days.height)
b.metric("Complete days", days.height - missing.height)
c.metric("Days missing data", missing.height)


def chart(values: pl.DataFrame, flag: str, title: str, unit: str, lines: dict, mark) -> alt.LayerChart:
    """Series over days, dashed threshold lines, and a grey band on each day the source is missing."""
    x = alt.X("date:T", title=None)
    data = values.unpivot(index="date", variable_name="series").drop_nulls("value")
    series = mark(data).encode(x, alt.Y("value:Q", title=unit, scale=alt.Scale(zero=False)), color="series:N",
                               tooltip=["date:T", "series:N", "value:Q"])
    rules = pl.DataFrame({"threshold": list(lines), "value": list(lines.values())})
    threshold = alt.Chart(rules).mark_rule(strokeDash=[6, 4], color="firebrick").encode(
        y="value:Q", tooltip=["threshold:N"])
    gaps = days.filter(~pl.col(flag)).select("date", end=pl.col("date") + pl.duration(days=1),
                                             missing=pl.lit("no data"))
    band = alt.Chart(gaps).mark_rect(color="lightgrey", opacity=0.5).encode(
        x, x2="end:T", tooltip=["date:T", "missing:N"])
    return alt.layer(band, series, threshold).properties(title=title, height=260).interactive(bind_y=False)


def line(data):
    return alt.Chart(data).mark_line(point=True)


st.altair_chart(chart(days.select("date", "systolic_mean", "diastolic_mean"), "has_blood_pressure",
                      "Blood pressure (daily mean)", "mmHg", BP_LINES, line), width="stretch")
st.altair_chart(chart(days.select("date", "min_hr", "avg_hr", "max_hr"), "has_heart_rate",
                      "Heart rate", "bpm", HR_LINES, line), width="stretch")
hours = (pl.col("sleep_minutes") / 60).round(2).alias("sleep hours")
st.altair_chart(chart(days.select("date", hours), "has_sleep", "Sleep", "hours", SLEEP_LINES,
                      lambda d: alt.Chart(d).mark_bar()), width="stretch")

st.subheader("Days missing data")
if missing.height:
    st.dataframe(missing.select(pl.col("date").cast(pl.String), "missing_sources"), hide_index=True)
else:
    st.caption("Every day in the range has all three sources.")
