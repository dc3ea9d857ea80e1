"""The admin console: one Streamlit app for people who do not use a terminal (``pdp admin``).

``app.py`` is the entry script (password gate, navigation), ``views/`` holds one module per page,
``console.py`` the logic the pages share (on the same storage and lab modules the assets use)
and ``dagster_runs.py`` the talk with the Dagster webserver. See docs/admin.md.
"""
