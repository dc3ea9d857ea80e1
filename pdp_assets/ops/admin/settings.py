"""The console's settings, read from the environment when used (never at import time)."""

import os
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"  # what `streamlit run` is given

DEFAULT_MAX_UPLOAD_MB = 50
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"  # where `pdp ui` serves the Dagster UI


def max_upload_mb() -> int:
    """Largest accepted upload, in MB (``PDP_ADMIN_MAX_UPLOAD_MB``)."""
    return int(os.environ.get("PDP_ADMIN_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB))


def password() -> str:
    """``PDP_ADMIN_PASSWORD``: when set, every page asks for it first."""
    return os.environ.get("PDP_ADMIN_PASSWORD", "")


def dagster_url() -> str:
    """The Dagster webserver the Runs page talks to (``PDP_DAGSTER_URL``)."""
    return os.environ.get("PDP_DAGSTER_URL", DEFAULT_DAGSTER_URL).rstrip("/")


def poll_seconds() -> float:
    """How often the Runs page refreshes run statuses (``PDP_ADMIN_POLL_SECONDS``)."""
    return float(os.environ.get("PDP_ADMIN_POLL_SECONDS", "2"))
