"""Runs: launch the lab jobs on the Dagster webserver, watch their status live, read the run logs.

Only the table of runs refreshes itself (a fragment polling GraphQL), not the whole page.
"""

import datetime as dt

import polars as pl
import streamlit as st

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.summary import summarise
from pdp_assets.ops.admin import console, settings
from pdp_assets.ops.admin.dagster_runs import Dagster, DagsterGraphQLClientError, describe

st.title("Runs")
dagster = Dagster(settings.dagster_url())
st.caption(f"Runs are Dagster runs on [{dagster.url}]({dagster.url}) (`PDP_DAGSTER_URL`; start it with "
           "`pdp ui`). The sensors launch them by themselves within about 15 s; these buttons do it now.")


def unreachable(e: Exception) -> str:
    return (f"Dagster at {dagster.url} failed: {describe(e)} "
            "(is `pdp ui` running there? PDP_DAGSTER_URL says where)")


store = console.storage()
uploads, requests = console.pending(store, lake.LANDING), console.pending(store, lake.DELETION_REQUESTS)
launched = st.session_state.setdefault("runs_launched", [])  # run ids launched from this session
left, middle, right = st.columns(3)
left.metric("Uploads waiting", len(uploads))
middle.metric("Deletion requests waiting", len(requests))
new = []
try:
    if left.button("Process uploads now", disabled=not uploads, key="process_uploads"):
        new = [run for _, run in dagster.launch_pending(store, lake.LANDING)]
    if middle.button("Process deletion requests now", disabled=not requests, key="process_deletions"):
        new = [run for _, run in dagster.launch_pending(store, lake.DELETION_REQUESTS)]
    if right.button("Refresh the CDC export", key="refresh_export"):
        new = [dagster.launch_export()]
except DagsterGraphQLClientError as e:
    st.error(unreachable(e))
if new:
    launched += new
    st.success(f"Launched {len(new)} run(s); follow them below.")


def when(ts) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


@st.fragment(run_every=settings.poll_seconds())
def live_runs() -> None:
    try:
        runs, sensors = dagster.recent_runs(), dagster.sensor_states()
    except DagsterGraphQLClientError as e:
        st.warning(unreachable(e))
        return
    stopped = sorted(s for s, state in sensors.items() if state != "RUNNING")
    if stopped:
        st.warning(f"Sensors stopped: {', '.join(stopped)}. Nothing they watch is run until they are "
                   "started again (the automation sensor turns processed uploads into lake runs): "
                   f"[start them in the Dagster UI]({dagster.url}/automation).")
    if not runs:
        st.caption("No lab runs yet.")
        return
    table = pl.DataFrame({
        "status": [r.status for r in runs],
        "job": [r.job for r in runs],
        "partition": [r.partition for r in runs],
        "started": [when(r.started) for r in runs],
        "ended": [when(r.ended) for r in runs],
        "launched by": ["this page" if r.run_id in launched else r.launched_by for r in runs],
        "run": [dagster.run_url(r.run_id) for r in runs],
    })
    st.dataframe(table, hide_index=True, column_config={
        "run": st.column_config.LinkColumn("run", display_text=r"runs/([0-9a-f]{8})")})


st.subheader("Recent lab runs")
live_runs()

st.subheader("What the runs did")
WINDOWS = {"the last hour": 1, "the last 24 hours": 24, "the last 7 days": 24 * 7}
window = st.selectbox("Over", list(WINDOWS), index=1, key="summary_window")
done = summarise(store, dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=WINDOWS[window]))
for card, (what, n) in zip(st.columns(len(done.totals)), done.totals.items()):
    card.metric(what, f"{n:,}")
if done.weeks.height:
    st.caption("Lake weeks changed")
    st.dataframe(done.weeks, hide_index=True)
if done.deletions.height:
    st.caption("Deletion requests: what was deleted and what was found nowhere")
    st.dataframe(done.deletions.drop("deleted_count"), hide_index=True)

st.subheader("Recent execution logs")
kind = st.selectbox("Log", list(console.LOG_KINDS),
                    format_func=lambda k: f"{k}_*.csv: {console.LOG_KINDS[k]}")
log = console.recent_logs(store, kind)
if log.height:
    st.dataframe(log, hide_index=True)
else:
    st.caption("No such log yet.")
