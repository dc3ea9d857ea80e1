"""The cloud Google source with the real clients (google-api-python-client, google-auth) against
a local HTTP server: token exchange, sheet values, a paged folder listing, media downloads."""

import dagster as dg

from pdp_assets.definitions import source_definitions
from pdp_assets.defs.health.assets import BLOOD_PRESSURE, DAILY, SETTINGS
from pdp_assets.lib.resources.google import CloudGoogleSource
from pdp_assets_tests.health.conftest import (
    BP_HEADER, GoogleApiServer, build, csv_text, mi_row, observe, service_account_key,
)

health_defs = source_definitions("health")

WEEK = "2024-03-04"
SHEET = [BP_HEADER, ["2024-03-04", "08:00", "121", "79", "64"], ["2024-03-05", "08:10", "118", "77"]]  # ragged, as the API


def _exports() -> dict[str, bytes]:
    hr = mi_row("heart_rate", 1709539200, {"avg_hr": 66, "min_hr": 50, "max_hr": 120})
    sleep = mi_row("sleep", 1709578800, {"total_duration": 420, "sleep_deep_duration": 90, "sleep_light_duration": 250,
                                          "sleep_rem_duration": 60, "sleep_awake_duration": 20, "sleep_score": 81, "has_data": True})
    header = ["Uid", "Sid", "Key", "Time", "Value", "UpdateTime"]
    return {f"export_{i}.csv": csv_text([header, hr, sleep]) for i in range(3)}  # 3 files, pages of 2


def test_cloud_source_reads_sheet_and_folder_through_the_real_clients():
    with GoogleApiServer({"sheet-id": SHEET}, {"folder-id": _exports()}) as api:
        google = CloudGoogleSource(
            service_account_json=service_account_key(api.url + "token"),
            sheets_endpoint=api.url, drive_endpoint=api.url + "drive/v3/",
        )
        assert google.sheet_values("sheet-id", "A:Z") == SHEET
        files = google.list_folder("folder-id")
        assert [f.name for f in files] == ["export_0.csv", "export_1.csv", "export_2.csv"]  # both pages
        assert google.download(files[1]) == _exports()["export_1.csv"]
    token_calls = [r for r in api.requests if r[0] == "POST"]
    assert len(token_calls) == 1  # one token exchange, reused by both services
    gets = [path for method, path, _ in api.requests if method == "GET"]
    assert gets[0].startswith("/v4/spreadsheets/sheet-id/values/A%3AZ")
    assert sum("pageToken=2" in p for p in gets) == 1 and sum("alt=media" in p for p in gets) == 1
    assert all(h.get("authorization") == "Bearer local-token" for m, _, h in api.requests if m == "GET")


def test_pipeline_runs_on_the_cloud_source_with_credentials_from_env(storage, instance, monkeypatch):
    with GoogleApiServer({SETTINGS.bp_sheet: SHEET}, {SETTINGS.mi_band_folder: _exports()}) as api:
        monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT_JSON", service_account_key(api.url + "token"))
        google = CloudGoogleSource(
            service_account_json=dg.EnvVar("GOOGLE_SERVICE_ACCOUNT_JSON"),
            sheets_endpoint=api.url, drive_endpoint=api.url + "drive/v3/",
        )
        defs = dg.Definitions.merge(health_defs, dg.Definitions(resources={"google": google, "storage": storage}))
        observe(defs, instance, [WEEK])
        result = build(defs, instance, [WEEK])
    assert result.success
    bp = instance.get_latest_materialization_event(BLOOD_PRESSURE).asset_materialization.metadata
    assert (bp["rows_read"].value, bp["rows_kept"].value, bp["rows_quarantined"].value) == (2, 1, 1)
    daily = instance.get_latest_materialization_event(DAILY).asset_materialization.metadata
    # 4 March: a reading and heart rate; 5 March: the night that ended that morning (Tbilisi time)
    assert daily["days"].value == 2 and daily["days_without_sleep"].value == 1
    assert daily["days_without_heart_rate"].value == 1
