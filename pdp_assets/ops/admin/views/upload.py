"""Upload: drop lab CSVs, preview what validation will make of them, send them to the landing zone."""

import datetime as dt

import streamlit as st

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.validation import validate_upload
from pdp_assets.ops.admin import console, settings, widgets

st.title("Upload lab results")
st.caption("Files go into the landing zone under a safe, unique name (as `pdp upload` does); the landing "
           "sensor then validates them: good rows go to the lake, bad rows to the quarantine.")

store = console.storage()
limit = settings.max_upload_mb()
files = st.file_uploader("Drop CSV files here", type=["csv"], accept_multiple_files=True,
                         max_upload_size=limit, key="upload_files")
sent = st.session_state.setdefault("uploads_sent", {})  # file id -> landing name: one send per file
today = dt.datetime.now(dt.timezone.utc).date()

ready = []
for f in files or []:
    data = f.getvalue()
    problem = console.upload_problem(f.name, len(data), limit)
    if problem:
        st.error(problem)
        continue
    if f.file_id in sent:
        st.success(f"{f.name} was sent as {sent[f.file_id]}")
        continue
    # The same validation the pipeline runs, as a preview: nothing is stored yet.
    result = validate_upload(data, f.name, today)
    with st.expander(f"{f.name}: {result.rows_read} rows, {result.rows_valid} valid, "
                     f"{result.rows_quarantined} would be quarantined", expanded=True):
        for note in result.notes:
            st.info(note)
        if result.rows_quarantined:
            st.dataframe(result.quarantine.head(50), hide_index=True)
        st.dataframe(result.valid.head(20), hide_index=True)
    ready.append(f)

if ready and st.button(f"Send {len(ready)} file(s) to the landing zone", type="primary", key="send_uploads"):
    for f in ready:
        sent[f.file_id] = console.upload(store, f.name, f.getvalue(), widgets.operator())
        st.success(f"{f.name} -> {store.location(lake.LANDING, sent[f.file_id])}")

st.subheader("Waiting in the landing zone")
widgets.waiting_files(store, lake.LANDING, "uploads", "Remove an upload")
