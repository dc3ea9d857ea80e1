"""The admin console as people use it: `pdp admin` serving it on 127.0.0.1, Debian's headless
Chromium driving it through Selenium (/usr/bin/chromedriver). A quarantined cell is fixed in the
grid, re-ingested, ingested, and the fixed row is found in the lake. Screenshots of the quarantine
editor and the health dashboard go to test-output/."""

import datetime as dt
import os
import sys

import polars as pl
import pytest

from pdp_assets.lib.lab_results import lake
from pdp_assets_tests.admin.conftest import write_health
from pdp_assets_tests.conftest import csv_bytes, OUTPUT, REPO
from pdp_assets_tests.servers import free_port, group_members, start_http_server, stop

pytestmark = pytest.mark.slow

WAIT = 60  # seconds for a page to show what is awaited; a few on an idle machine


@pytest.fixture
def browser(chromium):
    return chromium(1400, 1700)


@pytest.fixture
def admin_url(console_env, tmp_path):
    """`pdp admin` on a free port, stopped by its process id whatever the test did."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_http_server([sys.executable, "-m", "pdp_assets.ops.cli", "admin", "--port", str(port)],
                                f"{url}/_stcore/health", tmp_path / "admin.log", env=dict(os.environ), cwd=REPO)
    try:
        yield url
    finally:
        stop(process)
        assert group_members(process.pid) == []


def test_fix_a_quarantined_cell_in_the_browser(admin_url, browser, storage, ingest):
    from selenium.webdriver import ActionChains, Keys
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    storage.write(lake.LANDING, "partner.csv", csv_bytes("B1,2024-02-05,POS,5", "B2,2024-02-06,Positive,7"))
    ingest()
    assert lake.read_lake(storage)["sample_id"].to_list() == ["B1"]
    wait = WebDriverWait(browser, WAIT, poll_frequency=0.2)

    def body() -> str:
        return browser.find_element(By.TAG_NAME, "body").text

    browser.get(f"{admin_url}/quarantine")
    grids = wait.until(lambda d: (g := d.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"]'))[1:] and g)

    # The grid is drawn on a canvas: select the first cell (pipeline_error), move to result (the
    # 4th column), open its editor with Enter, replace the value, commit with Enter.
    canvas = grids[1].find_element(By.CSS_SELECTOR, '[data-testid="data-grid-canvas"]')
    w, h = canvas.rect["width"], canvas.rect["height"]
    ActionChains(browser).move_to_element_with_offset(canvas, -w / 2 + 20, -h / 2 + 35 + 17).click().perform()
    ActionChains(browser).send_keys(Keys.ARROW_RIGHT * 3 + Keys.ENTER).perform()
    editor = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "textarea.gdg-input"))
    assert editor.get_attribute("value") == "Positive"
    for keys in ((Keys.CONTROL, "a"), (Keys.BACKSPACE,), ("POS",), (Keys.ENTER,)):  # one call each: none lost
        editor.send_keys(*keys)
    wait.until(lambda d: "1 cell(s) edited, not sent yet." in body())  # the app has the edit
    browser.save_screenshot(str(OUTPUT / "admin_quarantine_editor.png"))

    next(b for b in browser.find_elements(By.TAG_NAME, "button") if b.text == "Re-ingest").click()
    wait.until(lambda d: "Sent 1 row(s) to the landing zone" in body())
    assert storage.list_blobs(lake.QUARANTINE) == []

    ingest()
    stored = lake.read_lake(storage).sort("sample_id")
    assert stored.select("sample_id", "result").rows() == [("B1", "POS"), ("B2", "POS")]
    assert stored.filter(pl.col("sample_id") == "B2")["viral_load"].item() == 7

    # The health dashboard, on four weeks of daily metrics with gaps.
    monday = dt.date(2024, 5, 6)
    write_health(storage, monday, weeks=4, skip={monday + dt.timedelta(days=d) for d in (3, 4, 17)},
                 no_sleep={monday + dt.timedelta(days=d) for d in (9, 22)})
    browser.get(f"{admin_url}/health")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"] canvas, '
                                                             '[data-testid="stVegaLiteChart"] svg')) >= 3)
    # 28 days: 3 without a row, 2 without sleep
    assert "Complete days\n23\n" in body() and "Days missing data\n5\n" in body()
    browser.save_screenshot(str(OUTPUT / "admin_health_dashboard.png"))


def test_a_page_under_another_host_name_gets_nothing(admin_url, chromium):
    """DNS rebinding: a site whose name now points at 127.0.0.1 loads the console in the browser."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chromium(1200, 900, "--host-resolver-rules=MAP rebound.example 127.0.0.1")
    wait = WebDriverWait(browser, WAIT, poll_frequency=0.2)
    port = admin_url.rsplit(":", 1)[1]
    browser.get(f"http://rebound.example:{port}/upload")
    wait.until(lambda d: "This console answers to" in d.find_element(By.TAG_NAME, "body").text)
    text = browser.find_element(By.TAG_NAME, "body").text
    assert f"not 'rebound.example:{port}'" in text and "Drop CSV files here" not in text
    browser.get(f"{admin_url}/upload")  # the same console under its own name
    wait.until(lambda d: "Drop CSV files here" in d.find_element(By.TAG_NAME, "body").text)
    assert "No sign-in" in browser.find_element(By.TAG_NAME, "body").text  # the opt-out says so on every page
