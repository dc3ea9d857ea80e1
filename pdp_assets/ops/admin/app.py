"""The admin console's entry script: `pdp admin` runs `streamlit run` on it, bound to 127.0.0.1.

Every page goes through here first, so the password gate (``PDP_ADMIN_PASSWORD``) guards them all.
"""

import hmac

import streamlit as st

from pdp_assets.ops.admin import settings

st.set_page_config(page_title="pdp admin", page_icon=":material/science:", layout="wide")


def signed_in() -> bool:
    expected = settings.password()
    if not expected or st.session_state.get("signed_in"):
        return True
    st.title("pdp admin")
    with st.form("sign_in"):
        typed = st.text_input("Password", type="password")
        name = st.text_input("Your name (the action log records who did what)")
        if st.form_submit_button("Sign in"):
            if not hmac.compare_digest(typed.encode(), expected.encode()):  # no timing hint
                st.error("Wrong password.")
            elif not name.strip():
                st.error("Give your name: uploads, fixes and deletions are recorded under it.")
            else:
                st.session_state.signed_in, st.session_state.operator = True, name.strip()
                st.rerun()
    return False


if not signed_in():
    st.stop()  # before st.navigation: no page of any URL runs

st.navigation({
    "Lab results": [
        st.Page("views/upload.py", title="Upload", icon=":material/upload_file:", default=True),
        st.Page("views/quarantine.py", title="Fix quarantine", icon=":material/edit_note:"),
        st.Page("views/deletions.py", title="Deletion requests", icon=":material/delete:"),
        st.Page("views/runs.py", title="Runs", icon=":material/play_circle:"),
        st.Page("views/reports.py", title="Reports", icon=":material/download:"),
    ],
    "Health": [st.Page("views/health.py", title="Health dashboard", icon=":material/monitor_heart:")],
}).run()
