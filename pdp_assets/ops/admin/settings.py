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
    """``PDP_ADMIN_PASSWORD``: every page asks for it first."""
    return os.environ.get("PDP_ADMIN_PASSWORD", "")


def no_password() -> bool:
    """``PDP_ADMIN_NO_PASSWORD=1`` (what `pdp admin --no-password` sets): the explicit opt-out, for a
    single-user machine. Without it and without a password the console serves nothing."""
    return os.environ.get("PDP_ADMIN_NO_PASSWORD") == "1"


def allowed_hosts(port: int) -> set[str]:
    """Host headers the console answers (DNS rebinding sends another): 127.0.0.1:PORT,
    localhost:PORT and ``PDP_ADMIN_ALLOWED_HOSTS`` (comma-separated, e.g. a proxy's name)."""
    extra = {h.strip() for h in os.environ.get("PDP_ADMIN_ALLOWED_HOSTS", "").split(",") if h.strip()}
    return {f"127.0.0.1:{port}", f"localhost:{port}"} | extra


def dagster_url() -> str:
    """The Dagster webserver the Runs page talks to (``PDP_DAGSTER_URL``)."""
    return os.environ.get("PDP_DAGSTER_URL", DEFAULT_DAGSTER_URL).rstrip("/")


def poll_seconds() -> float:
    """How often the Runs page refreshes run statuses (``PDP_ADMIN_POLL_SECONDS``)."""
    return float(os.environ.get("PDP_ADMIN_POLL_SECONDS", "2"))
