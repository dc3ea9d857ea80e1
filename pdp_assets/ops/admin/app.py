"""The admin console's entry script: `pdp admin` runs `streamlit run` on it, bound to 127.0.0.1.

Every page goes through here first, so the Host check and the sign-in (``PDP_ADMIN_PASSWORD``)
guard them all.
"""

import hmac

import streamlit as st

from pdp_assets.ops.admin import console, settings

st.set_page_config(page_title="pdp admin", page_icon=":material/science:", layout="wide")


@st.cache_resource
def throttle() -> console.SignInThrottle:  # one for every session of this console
    return console.SignInThrottle()


def host_allowed() -> bool:
    """A page served under another Host name (DNS rebinding: a site whose name now points at
    127.0.0.1) gets nothing. No headers at all: not a web request (Streamlit's AppTest)."""
    host = st.context.headers.get("Host")
    allowed = settings.allowed_hosts(st.get_option("server.port"))
    if host is None or host in allowed:
        return True
    st.title("pdp admin")
    st.error(f"This console answers to {', '.join(sorted(allowed))}, not {host!r} "
             "(PDP_ADMIN_ALLOWED_HOSTS adds a name).")
    return False


def signed_in() -> bool:
    expected = settings.password()
    if not expected:
        if settings.no_password():
            st.warning("No sign-in (`pdp admin --no-password`): anyone who can reach this machine's 127.0.0.1 "
                       "can use this console. Set PDP_ADMIN_PASSWORD unless you are its only user.")
            return True
        st.title("pdp admin")
        st.error("No password is set: set PDP_ADMIN_PASSWORD, or start `pdp admin --no-password` on a "
                 "machine only you use.")
        return False
    if st.session_state.get("signed_in"):
        return True
    st.title("pdp admin")
    with st.form("sign_in"):
        typed = st.text_input("Password", type="password")
        name = st.text_input("Your name (the action log records who did what)")
        if st.form_submit_button("Sign in"):
            wait = throttle().wait()
            if wait:
                st.error(f"Too many failed sign-ins: try again in {wait:.0f} s.")
            elif not hmac.compare_digest(typed.encode(), expected.encode()):  # no timing hint
                throttle().failed()
                wait = throttle().wait()
                st.error("Wrong password." + (f" Too many failed sign-ins: the next attempt waits {wait:.0f} s."
                                              if wait else ""))
            elif not name.strip():
                st.error("Give your name: uploads, fixes and deletions are recorded under it.")
            else:
                throttle().succeeded()
                st.session_state.signed_in, st.session_state.operator = True, name.strip()
                st.rerun()
    return False


if not (host_allowed() and signed_in()):
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
