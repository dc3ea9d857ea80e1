"""Streamlit pieces more than one page uses."""

import streamlit as st

from pdp_assets.lib.lab_results import actions
from pdp_assets.ops.admin import console


def operator() -> str:
    """Who is acting, for the action log: the name given at sign-in."""
    return console.operator(st.session_state.get("operator"))


def waiting_files(store, container: str, what: str, button: str) -> None:
    """The files (``what``, plural) waiting in a drop container, and a form to withdraw one before a
    run takes it."""
    done = f"withdrawn_{container}"
    if done in st.session_state:
        st.success(st.session_state.pop(done))
    table = console.waiting_table(store, container)
    if not table.height:
        st.caption(f"No {what} waiting.")
        return
    st.dataframe(table, hide_index=True)
    with st.form(f"withdraw_{container}", clear_on_submit=True):
        name = st.selectbox(f"{button} before it is processed", table["file"].to_list(), key=f"{done}_file")
        reason = st.text_input("Reason (kept in the action log)", key=f"{done}_reason")
        if st.form_submit_button(button, key=f"{done}_submit"):
            try:
                claim = actions.withdraw(store, container, name, operator(), reason)
            except (ValueError, FileNotFoundError, actions.Taken) as e:
                st.error(f"Not done: {e}")
            else:
                st.session_state[done] = f"{name}: {actions.describe_withdrawal(claim)}."
                st.rerun()
