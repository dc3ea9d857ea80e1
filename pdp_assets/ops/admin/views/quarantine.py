"""Fix quarantine: list quarantined files, edit one in a grid beside each row's reasons, re-ingest.

The file's etag is kept from the moment it is opened: if someone else re-ingests it (or the
pipeline rewrites it) meanwhile, the save is refused and the edits stay on screen to download.
"""

import polars as pl
import streamlit as st

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.intake import (
    discard_quarantine, quarantine_files, QuarantineChanged, read_quarantine, reingest,
)
from pdp_assets.lib.quarantine import ERROR, ROW, SOURCE, SURPLUS
from pdp_assets.ops.admin import console, widgets

EDITOR = "quarantine_editor"  # the data editor's key: its edits live in session state under it

st.title("Fix quarantined rows")
st.caption("Edit the values, then re-ingest: the rows go back through the landing zone and the same "
           "validation. Rows still invalid come back here with their new reasons.")
if "quarantine_done" in st.session_state:
    st.success(st.session_state.pop("quarantine_done"))

store = console.storage()
files = quarantine_files(store)
names = [q.name for q in files]
opened = st.session_state.get("quarantine_open")  # the version this person is editing
if files:
    st.dataframe(
        pl.DataFrame({"file": names, "rows": [q.rows for q in files],
                      "most common reasons": ["; ".join(f"{r} ({n})" for r, n in q.reasons) for q in files]}),
        hide_index=True,
    )
elif opened is None:
    st.info("The quarantine is empty.")
    st.stop()
if opened is not None and opened["name"] not in names:
    # Gone while being edited: keep the edits on screen (a save is refused, a download is not).
    names.append(opened["name"])
    st.warning(f"{opened['name']} is no longer in quarantine: someone re-ingested it after you opened it. "
               "Download your edits, or discard them.")
choice = st.selectbox("Open", names, index=names.index(opened["name"]) if opened else 0)


def close() -> None:
    st.session_state.pop("quarantine_open", None)
    st.session_state.pop(EDITOR, None)  # edits belong to the version they were made on


if opened is None or opened["name"] != choice:
    close()
    rows, etag = read_quarantine(store, choice)
    opened = st.session_state["quarantine_open"] = {"name": choice, "etag": etag, "rows": rows.to_pandas()}

data_columns = [c for c in opened["rows"].columns if c not in (ERROR, SOURCE, ROW)]
edited = st.data_editor(
    opened["rows"], key=EDITOR, hide_index=True, num_rows="fixed",
    column_order=[ERROR, *data_columns, SOURCE, ROW], disabled=[ERROR, SOURCE, ROW],
    column_config={SURPLUS: st.column_config.TextColumn(
        help="Fields this row had beyond the header's (often a number split at its thousands "
             "separator). They are sent again as they are: move them where they belong, then clear this cell.")},
)
fixed = pl.from_pandas(edited).cast(pl.String)  # typed values stay text: validation reads them as typed
changed = sum(len(cells) for cells in st.session_state[EDITOR]["edited_rows"].values())
if changed:
    st.caption(f"{changed} cell(s) edited, not sent yet.")

left, middle, right = st.columns(3)
if left.button("Re-ingest", type="primary", key="reingest"):
    try:
        sent = reingest(store, fixed, opened["name"], widgets.operator(), etag=opened["etag"])
    except QuarantineChanged as e:
        st.error(f"Not saved. {e}")
        st.download_button("Download your edited rows", lake.to_csv(fixed), mime="text/csv",
                           file_name=f"fixed_{opened['name']}")
    else:
        note = "" if sent.removed else (f" {opened['name']} changed while saving, so it was kept: check it "
                                         "for rows someone else fixed.")
        st.session_state["quarantine_done"] = (
            f"Sent {sent.rows} row(s) to the landing zone as {sent.landing_blob}; they are validated on the "
            f"next ingest run.{note}"
        )
        close()
        st.rerun()
if middle.button("Discard edits and reload", key="reload"):
    close()
    st.rerun()
right.download_button("Download as CSV", lake.to_csv(fixed), file_name=opened["name"], mime="text/csv")

with st.expander("Discard this file: its rows are not sent back (they stay in the upload's archived copy)"):
    with st.form("discard", clear_on_submit=True):
        reason = st.text_input("Reason (kept in the action log)", key="discard_reason")
        if st.form_submit_button("Discard the whole file", key="discard"):
            try:
                rows = discard_quarantine(store, opened["name"], widgets.operator(), reason, etag=opened["etag"])
            except (ValueError, FileNotFoundError, QuarantineChanged) as e:
                st.error(f"Not discarded: {e}")
            else:
                st.session_state["quarantine_done"] = f"Discarded {opened['name']} ({rows} row(s)): {reason.strip()}"
                close()
                st.rerun()
