"""The health definitions load; a backfill over the demo's weeks runs as one run with every check
passing and every row accounted for; re-runs are idempotent; blocking checks stop bad data; the
malformed-input corpus never crashes a run."""

import datetime as dt

import dagster as dg
import polars as pl

from pdp_assets.definitions import source_definitions
from pdp_assets.defs.health.assets import BLOOD_PRESSURE, DAILY, HEART_RATE, SLEEP
from pdp_assets.lib.health import normalise as n, store
from pdp_assets.lib.health.demo import write_demo_data
from pdp_assets.lib.partitions import week_key
from pdp_assets_tests.health.conftest import build, mi_row, observe, write_export, write_sheet

health_defs = source_definitions("health")

LAYERS = [BLOOD_PRESSURE, HEART_RATE, SLEEP, DAILY]


def _meta(instance, key: dg.AssetKey) -> dict:
    event = instance.get_latest_materialization_event(key).asset_materialization
    return {k: v.value for k, v in event.metadata.items()}


def test_definitions_are_partitioned_versioned_checked_and_scheduled(defs):
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    for key in [*LAYERS, dg.AssetKey("health_raw_blood_pressure"), dg.AssetKey("health_raw_mi_band")]:
        node = graph.get(key)
        assert node.partitions_def is not None and node.group_name == "health", key
    for key in LAYERS:
        node = graph.get(key)
        assert node.code_version and "tz=" in node.code_version
        assert node.backfill_policy == dg.BackfillPolicy.single_run() and node.automation_condition is not None
    blocking = {(c.asset_key, c.name) for c in graph.asset_check_keys if graph.get_check_spec(c).blocking}
    assert {(k, "pandera_schema") for k in LAYERS} <= blocking
    assert {(k, "rows_accounted") for k in LAYERS[:3]} <= blocking
    for raw in ("health_raw_blood_pressure", "health_raw_mi_band"):
        assert graph.get(dg.AssetKey(raw)).automation_condition is not None  # observed each morning
    assert health_defs.resources in (None, {})  # resources are bound in pdp_assets.defs.resources only


def test_demo_year_backfills_in_one_run_with_every_row_accounted(defs, google_root, storage, instance):
    today = dt.date.today()
    write_demo_data(google_root, days=63, seed=1, end=today)
    weeks = sorted({week_key(today - dt.timedelta(days=d)) for d in range(63)})
    observe(defs, instance, weeks)
    result = build(defs, instance, weeks)
    assert result.success
    assert len(instance.get_runs()) == 2  # one observation, one run for every week
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 7 and all(c.passed for c in checks)
    counts = {e.asset_key: 0 for e in result.get_asset_materialization_events()}
    for e in result.get_asset_materialization_events():
        counts[e.asset_key] += 1
    assert counts == {k: len(weeks) for k in LAYERS}

    bp = _meta(instance, BLOOD_PRESSURE)
    assert bp["rows_read"] == bp["rows_kept"] + bp["rows_quarantined"] and bp["rows_quarantined"] >= 4
    assert bp["rows_read"] + bp["rows_undated"] == bp["sheet_rows"] and bp["blank_rows"] == 1
    hr, sleep = _meta(instance, HEART_RATE), _meta(instance, SLEEP)
    assert sleep["rows_read"] == sleep["rows_kept"] + sleep["rows_quarantined"] + sleep["rows_left_out"]
    assert sleep["short_sessions_left_out"] > 0 and hr["duplicates_merged"] > 0 and hr["other_keys_ignored"]["steps"] > 0
    records = hr["rows_read"] + sleep["rows_read"] + hr["rows_undated"]
    assert records + hr["duplicates_merged"] + sum(hr["other_keys_ignored"].values()) == hr["export_rows"]

    quarantine = pl.concat([
        pl.read_csv(storage.read(store.CONTAINER, b.name), infer_schema=False)
        for b in storage.list_blobs(store.CONTAINER, "quarantine/blood_pressure/year=")
    ])
    assert quarantine[n.ERROR].str.len_chars().min() > 0
    assert "systolic '12O' is not a number" in quarantine[n.ERROR].to_list()
    undated = pl.read_csv(storage.read(store.CONTAINER, store.undated_blob("blood_pressure")), infer_schema=False)
    assert undated[n.ERROR].str.contains("is not a date").all()

    daily = pl.concat([pl.read_parquet(storage.read(store.CONTAINER, b.name))
                       for b in storage.list_blobs(store.CONTAINER, "health_daily_metrics/")])
    assert daily["date"].is_unique().all() and daily.filter(pl.col("missing_sources") == "").height > 20

    # The same backfill again: the same bytes in every file (idempotent), still one file per week.
    before = {b.name: storage.read(store.CONTAINER, b.name) for b in storage.list_blobs(store.CONTAINER)}
    assert build(defs, instance, weeks).success
    after = {b.name: storage.read(store.CONTAINER, b.name) for b in storage.list_blobs(store.CONTAINER)}
    assert after == before


def test_a_failing_blocking_check_keeps_bad_rows_out_of_daily_metrics(defs, google_root, instance, monkeypatch):
    week = "2024-01-01"
    write_sheet(google_root, [["2024-01-02", "08:00", "120", "80", "60"]])
    real = n.normalise_blood_pressure

    def buggy(*args, **kwargs):  # a bug that lets an impossible reading through
        split = real(*args, **kwargs)
        return n.Split(split.kept.with_columns(systolic=pl.lit(999, pl.Int64)), split.quarantine)

    monkeypatch.setattr(n, "normalise_blood_pressure", buggy)
    observe(defs, instance, [week])
    result = build(defs, instance, [week], raise_on_error=False)
    failed = {(e.asset_key, e.check_name) for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed == {(BLOOD_PRESSURE, "pandera_schema")}
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert DAILY not in materialized and BLOOD_PRESSURE in materialized


def test_malformed_inputs_are_reported_not_crashed_on(defs, google_root, storage, instance):
    week = "2024-01-01"
    write_sheet(google_root, [], header=["Date", "Time", "Systolic"])  # empty, and two columns short
    write_export(google_root, "bad_json.csv", [
        mi_row("heart_rate", 1704196800, '{"avg_hr": 70, "min_hr": '),
        mi_row("heart_rate", 1704196800, {"avg_hr": "n/a", "min_hr": 50, "max_hr": 100}),
    ])
    write_export(google_root, "no_value.csv", [["heart_rate", "1704196800"]], header=["Key", "Time"])
    (google_root / "drive" / "mi_band" / "notes.txt").write_text("not an export")  # ignored: not .csv
    observe(defs, instance, [week])
    assert build(defs, instance, [week]).success
    bp, hr = _meta(instance, BLOOD_PRESSURE), _meta(instance, HEART_RATE)
    assert bp["rows_read"] == 0 and "no diastolic, pulse column" in bp["notes"]
    assert (hr["rows_read"], hr["rows_kept"], hr["rows_quarantined"], hr["rows_undated"]) == (2, 0, 2, 1)
    assert "no_value.csv: no value column" in hr["notes"]
    reasons = pl.read_csv(storage.read(store.CONTAINER, store.quarantine_blob("heart_rate", week)))[n.ERROR].to_list()
    assert reasons[0].startswith("Value is not a JSON object") and reasons[1].startswith("avg_hr 'n/a' is not a number")


def test_demo_data_has_the_promised_faults(google_root):
    files = write_demo_data(google_root, days=365, seed=0, end=dt.date(2024, 12, 31))
    assert [f.name for f in files] == ["blood_pressure.csv", "mi_fitness_export_1.csv", "mi_fitness_export_2.csv"]
    export = n.mi_band_rows([(f.name, f.read_bytes()) for f in files[1:]])
    records = n.with_mi_band_weeks(export.frame, "Asia/Tbilisi", dt.date(2024, 12, 31))
    hr = n.normalise_heart_rate(records, dt.date(2024, 12, 31))
    sl = n.normalise_sleep(records, dt.date(2024, 12, 31), 240)
    assert hr.quarantine.height == 3 and sl.quarantine.height == 2
    assert 0 < export.duplicates <= 40 and int(sl.short_sessions["count"].sum()) > 30
    sheet = n.sheet_rows([r.split(",") for r in files[0].read_text().splitlines()])
    days = n.with_bp_weeks(sheet.frame, dt.date(2024, 12, 31))["day"].drop_nulls().unique()
    assert 300 < days.len() < 366  # a year with gaps
