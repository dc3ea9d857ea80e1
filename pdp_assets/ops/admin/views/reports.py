"""Reports: view and download the CDC export (data/final_cdc_export.csv), or have it refreshed."""

import polars as pl
import streamlit as st

from pdp_assets.lib.lab_results import lake
from pdp_assets.ops.admin import console, settings
from pdp_assets.ops.admin.dagster_runs import Dagster, DagsterGraphQLClientError, describe

st.title("CDC export")
store = console.storage()
info = store.info(lake.DATA, lake.EXPORT_BLOB)
if info is None:
    st.info("No export yet: the lake run after the first ingest writes it.")
else:
    data = store.read(lake.DATA, lake.EXPORT_BLOB)
    export = pl.read_csv(data, infer_schema=False)  # as written: formula-safe text
    st.caption(f"{export.height} records, newest test first; written {info.last_modified:%Y-%m-%d %H:%M:%S} "
               f"UTC at {store.location(lake.DATA, lake.EXPORT_BLOB)}")
    st.download_button(f"Download {lake.EXPORT_BLOB}", data, file_name=lake.EXPORT_BLOB, mime="text/csv",
                       type="primary")
    st.dataframe(export.head(1000), hide_index=True)

if st.button("Refresh the export now", key="refresh_export"):
    dagster = Dagster(settings.dagster_url())
    try:
        run = dagster.launch_export()
    except DagsterGraphQLClientError as e:
        st.error(f"Dagster at {dagster.url} failed: {describe(e)} "
                 "(is `pdp ui` running there? PDP_DAGSTER_URL says where)")
    else:
        st.success(f"Launched lab_export_job: [{run[:8]}]({dagster.run_url(run)}); "
                   "reload this page when it is done.")
