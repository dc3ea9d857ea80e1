"""Cache awareness with Dagster's own versioning: observations give each week a data version from
its content; automation requests a week only if that version or the code version changed."""

import datetime as dt
import zoneinfo

import dagster as dg

from pdp_assets.defs.health import assets as health_assets
from pdp_assets.defs.health.assets import BLOOD_PRESSURE, DAILY, HEART_RATE, RAW_BP, RAW_MI_BAND, SLEEP
from pdp_assets_tests.health.conftest import build, mi_row, observe, write_export, write_sheet

WEEKS = ["2024-01-01", "2024-01-08", "2024-01-15"]
LAYERS = [BLOOD_PRESSURE, HEART_RATE, SLEEP, DAILY]


def _write_sources(root, week2_systolic: str = "121") -> None:
    write_sheet(root, [
        ["2024-01-02", "08:00", "120", "80", "60"],
        ["2024-01-09", "08:00", week2_systolic, "80", "60"],
        ["2024-01-16", "08:00", "122", "80", "60"],
    ])
    rows = []
    for day in ("2024-01-02", "2024-01-09", "2024-01-16"):
        noon = int(dt.datetime.fromisoformat(f"{day}T12:00:00+00:00").timestamp())
        rows.append(mi_row("heart_rate", noon, {"avg_hr": 70, "min_hr": 50, "max_hr": 120}))
        rows.append(mi_row("sleep", noon - 14 * 3600, {"total_duration": 420, "sleep_light_duration": 400, "has_data": True}))
    write_export(root, "export.csv", rows)


def _requested(tick) -> dict[str, list[str]]:
    found = {k.to_user_string(): sorted(tick.get_requested_partitions(k)) for k in LAYERS}
    return {k: v for k, v in found.items() if v}


def _files(storage) -> dict[str, str]:
    return {b.name: b.etag for b in storage.list_blobs("health")}


def test_unchanged_weeks_are_not_launched_and_a_changed_week_rebuilds_alone(defs, google_root, storage, instance):
    _write_sources(google_root)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)  # the sensor's first tick
    observe(defs, instance, WEEKS)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert _requested(tick) == {k.to_user_string(): WEEKS for k in LAYERS}  # never built: all of it
    assert build(defs, instance, WEEKS).success
    before = _files(storage)

    # Next morning: same sheet, same exports. The observation reads them and finds the same
    # versions; nothing is stale, so no run is requested: nothing read, nothing written.
    observe(defs, instance, WEEKS)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.total_requested == 0
    versions = instance.get_latest_data_version_record(RAW_BP, is_source=True, partition_key=WEEKS[1])
    assert versions is not None

    # One reading of the second week is corrected: only that week and what depends on it.
    _write_sources(google_root, week2_systolic="131")
    observe(defs, instance, WEEKS)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert _requested(tick) == {"health_blood_pressure": [WEEKS[1]], "health_daily_metrics": [WEEKS[1]]}
    run = defs.resolve_job_def("health_job").execute_in_process(
        instance=instance, partition_key=WEEKS[1],
        asset_selection=[BLOOD_PRESSURE, DAILY],
    )
    assert run.success
    after = _files(storage)
    changed = sorted(name for name in after if after[name] != before.get(name))
    assert changed == ["blood_pressure/year=2024/week=02/data.parquet", "health_daily_metrics/year=2024/week=02/data.parquet"]
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.total_requested == 0


def test_a_new_code_version_makes_every_built_week_stale(defs, google_root, instance):
    _write_sources(google_root)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    observe(defs, instance, WEEKS)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert build(defs, instance, WEEKS).success
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=tick.cursor)
    assert tick.total_requested == 0

    # As after editing the normaliser or changing PDP_HEALTH_TZ (both change the code version).
    bumped = health_assets.health_blood_pressure.map_asset_specs(lambda s: s.replace_attributes(code_version="2;changed"))
    others = [health_assets.health_raw_blood_pressure, health_assets.health_raw_mi_band,
              health_assets.health_mi_band, health_assets.health_daily_metrics]
    new_defs = dg.Definitions(assets=[bumped, *others], resources=defs.resources)
    tick = dg.evaluate_automation_conditions(defs=new_defs, instance=instance, cursor=tick.cursor)
    assert _requested(tick) == {"health_blood_pressure": WEEKS, "health_daily_metrics": WEEKS}


def test_the_sources_are_observed_each_morning_this_week_and_the_last(defs, instance):
    zone = zoneinfo.ZoneInfo(health_assets.SETTINGS.timezone)
    raw = [RAW_BP, RAW_MI_BAND]

    def tick(hour: int, cursor=None):
        at = dt.datetime(2024, 1, 16, hour, 0, tzinfo=zone)  # a Tuesday, in the configured zone
        return dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor, evaluation_time=at,
                                                 asset_selection=dg.AssetSelection.assets(*raw))

    night = tick(5)
    assert night.total_requested == 0  # before 06:00
    morning = tick(7, night.cursor)
    assert {k: sorted(morning.get_requested_partitions(k)) for k in raw} == {k: ["2024-01-08", "2024-01-15"] for k in raw}
    assert tick(8, morning.cursor).total_requested == 0  # once a morning
