import datetime as dt
import os
import signal
from pathlib import Path

import dagster as dg
import pytest

from pdp_assets.lib.resources.storage import LocalBlobStorage

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "test-output"  # screenshots and other artefacts tests leave for people

HEADER = "sample_id,test_date,result,viral_load\n"


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return (header + "".join(r + "\n" for r in rows)).encode()


@pytest.fixture
def storage(tmp_path) -> LocalBlobStorage:
    return LocalBlobStorage(root=str(tmp_path / "pdp"))


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


@pytest.fixture
def pdp_env(tmp_path, monkeypatch):
    """PDP_HOME and DAGSTER_HOME in a temporary folder, local storage."""
    home = tmp_path / "pdp"
    monkeypatch.setenv("PDP_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    monkeypatch.delenv("PDP_STORAGE", raising=False)
    monkeypatch.delenv("PDP_ENV", raising=False)
    return home


def pytest_configure(config):
    OUTPUT.mkdir(exist_ok=True)
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    # A run ended by SIGTERM (a CI timeout, `kill PID`) unwinds as Ctrl-C does, so fixtures still
    # stop the servers they started. Those live in sessions of their own (servers.py), which a
    # signal to the run's process group does not reach; by default SIGTERM ends Python at once.
    signal.signal(signal.SIGTERM, signal.default_int_handler)


CHROMIUM = "/usr/bin/chromium"  # Debian's chromium and chromium-driver (make debian-packages)
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture
def chromium(tmp_path):
    """Opens Debian's headless Chromium through Selenium at a window size (no downloaded
    browser, a fresh profile); every browser opened is quit at teardown, with its chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers = []

    def open_browser(width: int, height: int, *flags: str):
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", f"--window-size={width},{height}",
                     f"--user-data-dir={tmp_path / f'chromium-profile-{len(drivers)}'}", *flags):
            options.add_argument(flag)
        service = Service(CHROMEDRIVER, log_output=str(tmp_path / f"chromedriver-{len(drivers)}.log"))
        drivers.append(webdriver.Chrome(service=service, options=options))
        return drivers[-1]

    try:
        yield open_browser
    finally:
        for driver in drivers:
            driver.quit()
