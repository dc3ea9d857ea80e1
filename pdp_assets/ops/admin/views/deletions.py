"""Deletion requests: type or upload (sample_id, test_date) pairs, preview what they match, file them.

What is filed is exactly what was previewed: editing the pairs after a preview asks for a new one.
"""

import pandas as pd
import polars as pl
import streamlit as st

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.deletions import MalformedRequest
from pdp_assets.ops.admin import console, settings, widgets

st.title("Deletion requests")
st.caption("Each (sample_id, test_date) pair is removed everywhere: lake, CDC export, quarantine and "
           "archive. The deletion sensor runs a filed request; its log is below.")
if "deletion_done" in st.session_state:
    st.success(st.session_state.pop("deletion_done"))

store = console.storage()
how = st.radio("Records", ["Type them", "Upload a CSV"], horizontal=True)
data, name = None, "deletion_request.csv"
if how == "Upload a CSV":
    f = st.file_uploader("CSV with sample_id and test_date columns", type=["csv"], key="deletion_file",
                         max_upload_size=settings.max_upload_mb())
    if f is not None:
        problem = console.upload_problem(f.name, f.size)
        if problem:
            st.error(problem)
        else:
            data, name = f.getvalue(), f.name
else:
    typed = st.data_editor(
        pd.DataFrame({"sample_id": [""], "test_date": [""]}, dtype=object),
        key="deletion_pairs", num_rows="dynamic", hide_index=True,
        column_config={"test_date": st.column_config.TextColumn(help="YYYY-MM-DD")},
    )
    data = console.pairs_csv(pl.from_pandas(typed))

if data is not None and st.button("Preview", key="preview"):
    try:
        pairs, in_lake, quarantined = console.deletion_preview(store, data)
    except MalformedRequest as e:
        st.error(f"Not a valid request: {e}")
        st.session_state.pop("deletion_preview", None)
    else:
        st.session_state["deletion_preview"] = {"data": data, "name": name, "pairs": pairs,
                                                "in_lake": in_lake, "quarantined": quarantined}

preview = st.session_state.get("deletion_preview")
if preview is not None and preview["data"] == data:
    pairs, in_lake, quarantined = preview["pairs"], preview["in_lake"], preview["quarantined"]
    st.subheader(f"{pairs.height} pair(s): {in_lake.height} lake record(s) and {quarantined.height} "
                 "quarantined row(s) match")
    st.dataframe(in_lake, hide_index=True)
    if quarantined.height:
        st.dataframe(quarantined, hide_index=True)
    missing = console.unmatched_pairs(pairs, in_lake, quarantined)
    if missing.height:
        st.warning("Found nowhere (the deletion log will say so): "
                   + ", ".join(f"{s} {d}" for s, d in missing.iter_rows()))
    if st.button("Submit the deletion request", type="primary", key="submit"):
        blob = console.file_deletion_request(store, preview["data"], widgets.operator(), preview["name"])
        st.session_state.pop("deletion_preview")
        st.session_state["deletion_done"] = f"Filed as deletion-requests/{blob}; the deletion sensor runs it."
        st.rerun()
elif preview is not None:
    st.info("The pairs changed since the preview: preview again before submitting.")

st.subheader("Waiting deletion requests")
widgets.waiting_files(store, lake.DELETION_REQUESTS, "deletion requests", "Cancel a request")

st.subheader("Deletion log")
log = console.recent_logs(store, "deletion")
if log.height:
    st.dataframe(log, hide_index=True)
else:
    st.caption("No deletion has run yet.")
