"""Each page of the admin console in Streamlit's AppTest, on real local storage and real ingest runs."""

import datetime as dt
import io
import re

import polars as pl
import pytest
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from pdp_assets.lib.lab_results import actions, lake
from pdp_assets.ops.admin import console
from pdp_assets.ops.admin.settings import APP
from pdp_assets_tests.admin.conftest import write_health
from pdp_assets_tests.conftest import csv_bytes

EDITOR = "quarantine_editor"
PARTNER_FILE = csv_bytes("A1,2024-01-01,POS,5", "A2,2024-01-02,Positive,7", "A3,2024-01-03,NEG,-1")


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def page_warnings(at) -> list[str]:
    """The page's warnings, less the one every page shows when there is no sign-in."""
    return [w for w in texts(at.warning) if not w.startswith("No sign-in")]


def landed(storage, container=lake.LANDING) -> list[str]:
    return [b.name for b in storage.list_blobs(container)]


@pytest.fixture
def quarantined(storage, ingest) -> str:
    """A partner file ingested: A1 in the lake, A2 and A3 quarantined. The quarantine file's name."""
    storage.write(lake.LANDING, "partner.csv", PARTNER_FILE)
    ingest()
    (blob,) = storage.list_blobs(lake.QUARANTINE)
    return blob.name


def test_without_a_password_or_the_opt_out_no_page_is_served(open_page, monkeypatch):
    monkeypatch.delenv("PDP_ADMIN_NO_PASSWORD")
    for page in ("upload", "quarantine", "runs"):
        at = open_page(page)
        assert texts(at.title) == ["pdp admin"] and not at.dataframe and not at.file_uploader, page
        assert "No password is set: set PDP_ADMIN_PASSWORD" in texts(at.error)[0]
    monkeypatch.setenv("PDP_ADMIN_NO_PASSWORD", "1")  # the explicit opt-out: served, with a warning
    at = open_page("upload")
    assert texts(at.title) == ["Upload lab results"] and "No sign-in" in texts(at.warning)[0]


def test_pdp_admin_will_not_start_without_a_password_or_the_opt_out(console_env, monkeypatch):
    from click.testing import CliRunner

    from pdp_assets.ops.cli import main

    monkeypatch.delenv("PDP_ADMIN_NO_PASSWORD")
    result = CliRunner().invoke(main, ["admin"])
    assert result.exit_code == 1 and "set PDP_ADMIN_PASSWORD" in result.output and "--no-password" in result.output


def test_repeated_failed_sign_ins_are_slowed_down(open_page, monkeypatch):
    monkeypatch.setenv("PDP_ADMIN_PASSWORD", "s3cret")
    attempts = [open_page("upload") for _ in range(console.SignInThrottle.FREE + 1)]  # new sessions too
    for at in attempts:
        at.text_input[0].input("guess")
        at.text_input[1].input("Mallory")
        at.button[0].click().run()
    assert [texts(at.error) for at in attempts[:-1]] == [["Wrong password."]] * (console.SignInThrottle.FREE - 1) + [
        ["Wrong password. Too many failed sign-ins: the next attempt waits 5 s."]]
    assert texts(attempts[-1].error)[0].startswith("Too many failed sign-ins: try again in")
    at = attempts[-1]
    at.text_input[0].input("s3cret")
    at.button[0].click().run()  # even the right password waits
    assert texts(at.title) == ["pdp admin"] and "Too many failed sign-ins" in texts(at.error)[0]


def test_the_throttle_doubles_the_wait_and_forgets_after_a_success():
    now = [100.0]
    throttle = console.SignInThrottle(clock=lambda: now[0])
    waits = []
    for _ in range(6):
        waits.append(throttle.wait())
        throttle.failed()
    assert waits == [0, 0, 0, 5, 10, 20]  # asked right after each failure
    now[0] += 39
    assert throttle.wait() == 1
    now[0] += 1
    assert throttle.wait() == 0  # the sixth failure's wait is over
    throttle.succeeded()
    throttle.failed()
    assert throttle.wait() == 0


def test_password_guards_every_page(open_page, monkeypatch):
    monkeypatch.setenv("PDP_ADMIN_PASSWORD", "s3cret")
    for page in ("upload", "quarantine", "deletions", "runs", "reports", "health"):
        at = open_page(page)
        assert texts(at.title) == ["pdp admin"], page  # the sign-in form, nothing of the page
        assert len(at.text_input) == 2 and not at.dataframe and not at.file_uploader
    at.text_input[0].input("wrong")
    at.text_input[1].input("Ada")
    at.button[0].click().run()
    assert texts(at.error) == ["Wrong password."] and texts(at.title) == ["pdp admin"]
    at.text_input[0].input("s3cret")
    at.text_input[1].input(" ")
    at.button[0].click().run()
    assert "Give your name" in texts(at.error)[0] and texts(at.title) == ["pdp admin"]
    at.text_input[1].input("Ada")
    at.button[0].click().run()
    assert texts(at.title) == ["Health dashboard"] and at.session_state["operator"] == "Ada"


def signed_in(page: str, monkeypatch, name: str = "Ada") -> AppTest:
    """A browser session signed in under ``name`` (with a password set), on one page."""
    monkeypatch.setenv("PDP_ADMIN_PASSWORD", "s3cret")
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    at.text_input[0].input("s3cret")
    at.text_input[1].input(name)
    at.button[0].click().run()
    return at.switch_page(f"views/{page}.py").run()


def actions_done(storage) -> list[tuple]:
    return actions.action_log(storage).select("action", "file", "by", "reason").rows()


def test_a_waiting_upload_is_removed_under_the_signed_in_name(console_env, storage, monkeypatch):
    at = signed_in("upload", monkeypatch)
    at.file_uploader[0].upload("wrong.csv", PARTNER_FILE, "text/csv").run()
    at.button(key="send_uploads").click().run()
    (name,) = landed(storage)
    (waiting,) = [d.value for d in at.dataframe if "by" in d.value.columns]
    assert waiting["file"].tolist() == [name] and waiting["by"].tolist() == ["Ada"]

    at.button(key="withdrawn_landing-zone_submit").click().run()  # no reason given
    assert any("give a reason" in e for e in texts(at.error)) and landed(storage) == [name]
    at.selectbox(key="withdrawn_landing-zone_file").select(name)
    at.text_input(key="withdrawn_landing-zone_reason").input("the wrong partner's file")
    at.button(key="withdrawn_landing-zone_submit").click().run()
    assert landed(storage) == [] and any("removed from the landing zone by Ada" in s for s in texts(at.success))
    assert actions_done(storage) == [(actions.REMOVE_UPLOAD, name, "Ada", "the wrong partner's file"),
                                     (actions.UPLOAD, name, "Ada", "")]
    assert "No uploads waiting." in [c.value for c in at.caption]


def test_a_waiting_deletion_request_is_cancelled_and_a_quarantine_file_discarded(
        console_env, storage, ingest, quarantined, monkeypatch):
    storage.write(lake.DELETION_REQUESTS, "r.csv", b"sample_id,test_date\nA1,2024-01-01\n")  # dropped in by hand
    at = signed_in("deletions", monkeypatch, name="Bo")
    (waiting,) = [d.value for d in at.dataframe if "by" in d.value.columns]
    assert waiting["file"].tolist() == ["r.csv"] and waiting["by"].tolist() == [actions.UNKNOWN]
    at.text_input(key="withdrawn_deletion-requests_reason").input("not ours")
    at.button(key="withdrawn_deletion-requests_submit").click().run()
    assert landed(storage, lake.DELETION_REQUESTS) == [] and any("cancelled by Bo" in s for s in texts(at.success))

    at.switch_page("views/quarantine.py").run()
    at.text_input(key="discard_reason").input("test rows")
    at.button(key="discard").click().run()
    assert landed(storage, lake.QUARANTINE) == []
    assert any(f"Discarded {quarantined} (2 row(s))" in s for s in texts(at.success))
    assert actions_done(storage)[:2] == [(actions.DISCARD_QUARANTINE, quarantined, "Bo", "test rows"),
                                         (actions.CANCEL_REQUEST, "r.csv", "Bo", "not ours")]


def test_upload_previews_then_lands_under_the_safe_name(open_page, storage):
    at = open_page("upload")
    at.file_uploader[0].upload("partner file.csv", PARTNER_FILE, "text/csv").run()
    (preview,) = at.expander
    assert preview.label == "partner file.csv: 3 rows, 1 valid, 2 would be quarantined"
    assert landed(storage) == []  # a preview stores nothing

    at.button(key="send_uploads").click().run()
    (name,) = landed(storage)
    assert re.fullmatch(r"\d{8}T\d{12}_partner_file\.csv", name)
    assert storage.read(lake.LANDING, name) == PARTNER_FILE
    at.run()  # the file is still in the uploader: it is not sent twice
    assert not [b for b in at.button if b.key == "send_uploads"] and landed(storage) == [name]
    assert f"partner file.csv was sent as {name}" in texts(at.success)


def test_upload_refuses_path_separators_and_oversized_files(open_page, storage, monkeypatch):
    monkeypatch.setenv("PDP_ADMIN_MAX_UPLOAD_MB", "1")
    at = open_page("upload")
    big = PARTNER_FILE + b"B1,2024-01-01,POS,5\n" * 60_000  # 1.2e6 bytes, 1.1 MiB
    uploader = at.file_uploader[0]
    uploader.upload("../etc/evil.csv", PARTNER_FILE, "text/csv").upload("big.csv", big, "text/csv").run()
    errors = texts(at.error)
    assert any("'../etc/evil.csv'" in e and "path separator" in e for e in errors), errors
    assert any(e.startswith("big.csv: 1.1 MB is more than the 1 MB limit") for e in errors), errors
    assert not [b for b in at.button if b.key == "send_uploads"] and landed(storage) == []
    assert console.upload_problem("a\\b.csv", 10) and console.upload_problem("notes.txt", 10)


def test_console_storage_only_reaches_the_containers_it_needs(console_env, storage):
    store = console.storage()
    storage.write(lake.ARCHIVE, "raw/x.csv", b"x")
    with pytest.raises(PermissionError, match="does not read in the 'archive' container"):
        store.read(lake.ARCHIVE, "raw/x.csv")
    with pytest.raises(PermissionError, match="does not write in the 'data' container"):
        store.write(lake.DATA, "final_cdc_export.csv", b"")
    with pytest.raises(PermissionError, match="does not write in the 'quarantine' container"):
        store.write(lake.QUARANTINE, "forged.csv", b"")  # it only removes quarantine files
    with pytest.raises(PermissionError, match="does not delete in the 'data' container"):
        store.delete(lake.DATA, "final_cdc_export.csv")
    store.write(lake.LANDING, "ok.csv", b"a\n")  # and it does reach its own
    assert storage.read(lake.LANDING, "ok.csv") == b"a\n"


def test_edit_and_reingest_round_trip(open_page, storage, ingest, quarantined):
    at = open_page("quarantine")
    listing = at.dataframe[0].value
    assert listing["file"].tolist() == [quarantined] and listing["rows"].tolist() == [2]
    (editor,) = at.data_editor
    shown = editor.value
    assert shown["sample_id"].tolist() == ["A2", "A3"]
    assert "result" in shown["pipeline_error"][0] and "viral_load" in shown["pipeline_error"][1]

    # A person fixes A2's result; A3's negative viral load stays wrong.
    at.session_state[EDITOR] = {"edited_rows": {0: {"result": "POS"}}, "added_rows": [], "deleted_rows": []}
    at.button(key="reingest").click().run()
    assert any("Sent 2 row(s) to the landing zone" in s for s in texts(at.success)), texts(at.error)
    assert landed(storage, lake.QUARANTINE) == []  # removed once the landing file was written
    (sent,) = landed(storage)
    assert "reingest_" in sent
    columns = pl.read_csv(storage.read(lake.LANDING, sent)).columns
    assert columns == ["sample_id", "test_date", "result", "viral_load"]  # the pipeline's columns dropped

    ingest()
    assert sorted(lake.read_lake(storage)["sample_id"]) == ["A1", "A2"]
    assert lake.read_lake(storage).filter(pl.col("sample_id") == "A2")["result"].item() == "POS"
    at.run()  # the still-invalid row is back, with its reason, under the re-ingested file's name
    (editor,) = at.data_editor
    assert editor.value["sample_id"].tolist() == ["A3"] and "reingest_" in at.selectbox[0].value


def test_a_ragged_row_is_in_the_grid_whole_and_comes_back_unfixed(open_page, storage, ingest):
    storage.write(lake.LANDING, "loads.csv", csv_bytes("RT-001,2026-11-23,POS,4,000", "RT-002,2026-11-23,NEG,0"))
    ingest()
    for _ in range(2):  # re-ingested unedited: quarantined again with all its fields, never stored as 4
        at = open_page("quarantine")
        (editor,) = at.data_editor
        row = editor.value.iloc[0]
        assert (row["sample_id"], row["viral_load"], row["surplus_fields"]) == ("RT-001", "4", "000")
        at.button(key="reingest").click().run()
        ingest()
        assert lake.read_lake(storage)["sample_id"].to_list() == ["RT-002"]
    at = open_page("quarantine")
    at.session_state[EDITOR] = {"edited_rows": {0: {"viral_load": "4000", "surplus_fields": None}},
                                "added_rows": [], "deleted_rows": []}
    at.button(key="reingest").click().run()
    ingest()
    assert dict(lake.read_lake(storage).select("sample_id", "viral_load").rows()) == {"RT-001": 4000, "RT-002": 0}


def test_a_second_save_of_the_same_file_is_refused(open_page, storage, quarantined):
    alice, bob = open_page("quarantine"), open_page("quarantine")  # both open the same version
    alice.session_state[EDITOR] = {"edited_rows": {0: {"result": "POS"}}, "added_rows": [], "deleted_rows": []}
    alice.button(key="reingest").click().run()
    assert not alice.error
    bob.session_state[EDITOR] = {"edited_rows": {1: {"viral_load": "0"}}, "added_rows": [], "deleted_rows": []}
    bob.button(key="reingest").click().run()
    (error,) = texts(bob.error)
    assert error.startswith(f"Not saved. {quarantined} is no longer in quarantine")
    # Bob's work stays his: still in his editor, and his to download.
    assert "Download your edited rows" in [b.label for b in bob.get("download_button")]
    assert bob.session_state[EDITOR]["edited_rows"] == {1: {"viral_load": "0"}}
    assert f"{quarantined} is no longer in quarantine" in page_warnings(bob)[0]
    assert len(landed(storage)) == 1  # only alice's rows were sent


def test_deletion_preview_then_submit(open_page, storage, ingest, quarantined):
    at = open_page("deletions")
    at.session_state["deletion_pairs"] = {
        "edited_rows": {0: {"sample_id": "A1", "test_date": "2024-01-01"}},  # in the lake
        "added_rows": [{"sample_id": "A2", "test_date": "2024-01-02"},  # quarantined
                       {"sample_id": "NOPE", "test_date": "2024-01-05"},
                       {"sample_id": "A1", "test_date": "2024-02-02"}],  # a stored id, another date
        "deleted_rows": [],
    }
    at.button(key="preview").click().run()
    assert texts(at.subheader)[0] == "4 pair(s): 1 lake record(s) and 1 quarantined row(s) match"
    assert at.dataframe[1].value["sample_id"].tolist() == ["A1"]  # the lake records
    assert at.dataframe[2].value["quarantine_file"].tolist() == [quarantined]
    assert page_warnings(at)[0].endswith(": NOPE 2024-01-05, A1 2024-02-02")
    assert landed(storage, lake.DELETION_REQUESTS) == []  # a preview files nothing

    at.button(key="submit").click().run()
    (request,) = landed(storage, lake.DELETION_REQUESTS)
    assert texts(at.success) == [f"Filed as deletion-requests/{request}; the deletion sensor runs it."]
    ingest()
    assert lake.read_lake(storage).height == 0
    log = open_page("deletions").dataframe[-1].value  # the deletion log, below the form
    assert sorted(zip(log["sample_id"], log["status"])) == [
        ("A1", "deleted"), ("A1", "not_found"), ("A2", "deleted"), ("NOPE", "not_found")]


def test_a_malformed_deletion_request_is_not_filed(open_page, storage):
    at = open_page("deletions")
    at.session_state["deletion_pairs"] = {"edited_rows": {0: {"sample_id": "A1", "test_date": "01/02/2024"}},
                                          "added_rows": [], "deleted_rows": []}
    at.button(key="preview").click().run()
    assert "YYYY-MM-DD test_date" in texts(at.error)[0]
    assert not [b for b in at.button if b.key == "submit"] and landed(storage, lake.DELETION_REQUESTS) == []


def test_a_deletion_request_can_be_uploaded(open_page, storage):
    at = open_page("deletions")
    at.radio[0].set_value("Upload a CSV").run()
    at.file_uploader[0].upload("gdpr.csv", b"sample_id,test_date\nZ1,2024-01-01\n", "text/csv").run()
    at.button(key="preview").click().run()
    assert texts(at.subheader)[0] == "1 pair(s): 0 lake record(s) and 0 quarantined row(s) match"
    at.button(key="submit").click().run()
    (request,) = landed(storage, lake.DELETION_REQUESTS)
    assert request.endswith("_gdpr.csv") and storage.read(lake.DELETION_REQUESTS, request).startswith(b"sample_id")


def test_runs_page_without_dagster_says_so_and_shows_logs(open_page, quarantined):
    at = open_page("runs")
    assert "failed:" in page_warnings(at)[0] and "Connection refused" in page_warnings(at)[0]
    cards = {m.label: m.value for m in at.metric}
    assert (cards["Uploads waiting"], cards["Deletion requests waiting"]) == ("0", "0")  # the upload was processed
    # What the runs of the last 24 hours did, as cards and the weeks they changed.
    assert [cards[c] for c in ("files processed", "rows quarantined", "rows inserted", "rows updated",
                               "rows removed", "records deleted")] == ["1", "2", "1", "0", "0", "0"]
    (weeks,) = [d.value for d in at.dataframe if "inserted" in d.value.columns]
    assert weeks["week"].tolist() == ["2024-01-01"] and weeks["inserted"].tolist() == [1]
    log = at.dataframe[-1].value  # execution logs
    assert log["rows_read"].tolist() == ["3"] and log["rows_quarantined"].tolist() == ["2"]


def test_reports_page_offers_the_export(open_page, storage, quarantined):
    at = open_page("reports")
    export = pl.read_csv(storage.read(lake.DATA, lake.EXPORT_BLOB))
    assert export["sample_id"].to_list() == ["A1"]
    assert texts(at.caption)[0].startswith("1 records, newest test first")
    assert at.get("download_button")[0].label == "Download final_cdc_export.csv"
    assert at.dataframe[0].value["sample_id"].tolist() == ["A1"]


def _datasets(chart) -> list:
    return [dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data) for d in chart.proto.datasets]


def test_health_dashboard_marks_missing_days_and_draws_thresholds(open_page, storage):
    monday = dt.date(2024, 3, 4)
    write_health(storage, monday, weeks=2, skip={dt.date(2024, 3, 6)}, no_sleep={dt.date(2024, 3, 12)})
    at = open_page("health")
    assert at.date_input[0].value == (monday, dt.date(2024, 3, 17))  # every stored day
    assert [m.value for m in at.metric] == ["14", "12", "2"]
    missing = at.dataframe[0].value
    assert missing["missing_sources"].tolist() == ["blood_pressure,heart_rate,sleep", "sleep"]

    charts = at.get("vega_lite_chart")
    assert len(charts) == 3
    thresholds = [set(d["value"]) for c in charts for d in _datasets(c) if "threshold" in d.columns]
    assert thresholds == [{130, 80, 90, 60}, {60, 100}, {7, 9}]
    gaps = [len(d) for c in charts for d in _datasets(c) if "missing" in d.columns]
    assert gaps == [1, 1, 2]  # grey bands: blood pressure and heart rate miss one day, sleep two

    at.date_input[0].set_value((monday, monday + dt.timedelta(days=6))).run()  # filter to the first week
    assert [m.value for m in at.metric] == ["7", "6", "1"]


def test_pages_on_empty_storage(open_page):
    assert "The quarantine is empty." in texts(open_page("quarantine").info)
    assert texts(open_page("reports").info)[0].startswith("No export yet")
    assert texts(open_page("health").info)[0].startswith("No daily health metrics yet")


def test_pairs_csv_drops_blank_rows():
    frame = pl.DataFrame({"sample_id": ["A1", " ", None], "test_date": ["2024-01-01", "", None]})
    assert pl.read_csv(io.BytesIO(console.pairs_csv(frame))).height == 1
