"""The normalisers and rules, one by one, on small frames (no Dagster)."""

import datetime as dt
import json

import polars as pl
import pytest

from pdp_assets.lib.health import normalise as n
from pdp_assets.lib.health.settings import HealthSettings
from pdp_assets_tests.health.conftest import csv_text, mi_row

TODAY = dt.date(2024, 6, 30)
MI_HEADER = ["Uid", "Sid", "Key", "Time", "Value", "UpdateTime"]


def bp(rows: list[list], header=("Date", "Time", "Systolic", "Diastolic", "Pulse"), tz: str = "UTC") -> n.Split:
    sheet = n.sheet_rows([list(header), *rows])
    return n.normalise_blood_pressure(n.with_bp_weeks(sheet.frame, TODAY), tz, TODAY, "sheet:test")


def reasons(split: n.Split) -> dict[int, str]:
    return dict(split.quarantine.select(n.ROW, n.ERROR).iter_rows())


def mi(rows: list[list], tz: str = "UTC") -> pl.DataFrame:
    export = n.mi_band_rows([("export.csv", csv_text([MI_HEADER, *rows]))])
    return n.with_mi_band_weeks(export.frame, tz, TODAY)


def epoch(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp())


SLEEP = {"total_duration": 480, "sleep_deep_duration": 100, "sleep_light_duration": 260,
         "sleep_rem_duration": 100, "sleep_awake_duration": 20, "sleep_score": 80, "has_data": True}


@pytest.mark.parametrize("header", [
    ["Date", "Time", "Systolic", "Diastolic", "Pulse"],
    [" date ", "TIME", "systolic (mmHg)", "Diastolic_", "PULSE"],
    ["DATE", "time", "SYS", "DIA", "bpm"],
])
def test_header_variants_are_tolerated(header):
    split = bp([["2024-01-01", "07:30", "120", "80", "60"]], header=header)
    assert split.kept.height == 1 and split.quarantine.height == 0


def test_blood_pressure_rules_quarantine_with_every_reason():
    split = bp([
        ["2024-01-01", "07:30", "120", "80", "60"],   # row 2 ok
        ["2024-01-01", "08:00", "12O", "80", "60"],   # 3 typo
        ["2024-01-01", "08:10", "300", "80", "60"],   # 4 systolic impossible
        ["2024-01-01", "08:20", "120", "20", "240"],  # 5 diastolic and pulse impossible
        ["2024-01-01", "08:30", "100", "110", "60"],  # 6 diastolic above systolic
        ["2024-01-01", "08:40", "120.5", "80", "60"],  # 7 not whole
        ["2024-01-01", "", "120", "80", "60"],        # 8 no time
        ["2024-01-01", "25:99", "120", "80", "60"],   # 9 bad time
        ["2024-01-01", "09:00", "120", "80", ""],     # 10 no pulse
    ])
    assert split.kept[n.ROW].to_list() == [2]
    got = reasons(split)
    assert got[3] == "systolic '12O' is not a number"
    assert got[4] == "systolic 300 is outside 60-260"
    assert got[5] == "diastolic 20 is outside 30-160; pulse 240 is outside 25-230"
    assert got[6] == "diastolic 110 is not below systolic 100"
    assert got[7] == "systolic 120.5 is not a whole number"
    assert got[8] == "time is missing"
    assert got[9] == "time '25:99' is not a time (HH:MM, HH:MM:SS or 8:05 AM)"
    assert got[10] == "pulse is missing"
    assert split.quarantine["week"].unique().to_list() == ["2024-01-01"]


def test_dates_in_other_formats_are_read_and_bad_dates_are_undated():
    split = bp([
        ["05.01.2024", "07:30", "120", "80", "60"],
        ["06/01/2024", "07:30", "121", "80", "60"],
        ["2024-13-01", "07:30", "120", "80", "60"],
        ["2031-01-01", "07:30", "120", "80", "60"],
        ["", "07:30", "120", "80", "60"],
        ["13/01/2024", "07:30", "122", "80", "60"],  # the sheet writes day/month
    ])
    assert split.kept["date"].to_list() == [dt.date(2024, 1, 5), dt.date(2024, 1, 6), dt.date(2024, 1, 13)]
    undated = split.quarantine.filter(pl.col("week").is_null())
    assert undated[n.ERROR].to_list() == [
        "date '2024-13-01' is not a date (YYYY-MM-DD, DD.MM.YYYY, DD/MM/YYYY or MM/DD/YYYY)",
        f"date 2031-01-01 is outside 2019-12-30 .. {TODAY}",
        "date is missing",
    ]


def test_a_month_first_sheet_is_read_month_first_and_what_stays_ambiguous_is_quarantined():
    us = bp([["11/05/2023", "8:05:00 AM", "120", "80", "60"], ["11/27/2023", "8:05 PM", "121", "80", "60"]])
    assert us.quarantine.height == 0
    assert us.kept["date"].to_list() == [dt.date(2023, 11, 5), dt.date(2023, 11, 27)]  # not 11 May
    assert [t.time() for t in us.kept["measured_at"]] == [dt.time(8, 5), dt.time(20, 5)]
    unclear = bp([["11/05/2023", "08:05", "120", "80", "60"], ["2023-11-06", "08:05", "121", "80", "60"]])
    assert reasons(unclear) == {2: "date '11/05/2023' could be day/month or month/day, and the sheet's other "
                                   "dates do not say which"}
    sheet = n.sheet_rows([["Date", "Time", "Systolic", "Diastolic", "Pulse"], ["11/05/2023", "08:05", "120", "80", "60"]])
    told = n.normalise_blood_pressure(n.with_bp_weeks(sheet.frame, TODAY, "mdy"), "UTC", TODAY, "sheet:test")
    assert told.kept["date"].to_list() == [dt.date(2023, 11, 5)]  # PDP_HEALTH_DATE_ORDER=mdy


def test_duplicate_readings_are_quarantined_and_conflicts_flagged():
    split = bp([
        ["2024-01-01", "07:30", "120", "80", "60"],
        ["2024-01-01", "07:30", "120", "80", "60"],   # typed twice
        ["2024-01-02", "07:30", "120", "80", "60"],
        ["2024-01-02", "07:30", "130", "85", "60"],   # two different readings, same minute
    ])
    assert split.kept[n.ROW].to_list() == [2]
    got = reasons(split)
    assert got[3] == "same reading as sheet row 2"
    assert got[4] == got[5] == "another reading with different values has the same date and time"


def test_the_sheet_is_local_time_in_the_configured_zone():
    row = [["2024-01-01", "02:30", "120", "80", "60"]]
    utc = bp(row, tz="UTC").kept["measured_at"][0]
    tbilisi = bp(row, tz="Asia/Tbilisi").kept
    assert utc == dt.datetime(2024, 1, 1, 2, 30, tzinfo=dt.timezone.utc)
    assert tbilisi["measured_at"][0] == dt.datetime(2023, 12, 31, 22, 30, tzinfo=dt.timezone.utc)
    assert tbilisi["date"][0] == dt.date(2024, 1, 1)  # the local date, as typed


def test_a_clock_change_gap_is_quarantined():
    split = bp([["2024-03-31", "02:30", "120", "80", "60"]], tz="Europe/Berlin")
    assert reasons(split)[2] == "2024-03-31 02:30 does not exist in Europe/Berlin (clock change)"


def test_empty_sheet_and_missing_columns():
    assert n.sheet_rows([]).notes == ["the sheet is empty (no header row)"]
    assert n.sheet_rows([["Date", "Time", "Systolic", "Diastolic", "Pulse"]]).frame.height == 0
    split = bp([["2024-01-01", "07:30", "120", "80"]], header=("Date", "Time", "Systolic", "Diastolic"))
    assert reasons(split) == {2: "pulse is missing"}
    assert "no pulse column" in n.sheet_rows([["Date", "Time", "Systolic", "Diastolic"]]).notes[0]


def test_blank_rows_are_counted_not_read():
    sheet = n.sheet_rows([["Date", "Time", "Systolic", "Diastolic", "Pulse"], ["2024-01-01", "07:30", "120", "80", "60"], [], ["", " "]])
    assert sheet.frame.height == 1 and sheet.blank_rows == 2


def test_mi_band_reading_counts_other_keys_duplicates_and_files_without_columns():
    hr = mi_row("heart_rate", epoch("2024-01-01T12:00:00+00:00"), {"avg_hr": 70, "min_hr": 50, "max_hr": 120})
    a = csv_text([MI_HEADER, hr, mi_row("steps", 1, {"steps": 9}), mi_row("Sleep ", 2, "{}")])
    b = csv_text([MI_HEADER, hr])  # the next export repeats the record
    c = csv_text([["Key", "Time"], ["heart_rate", "5"]])
    export = n.mi_band_rows([("a.csv", a), ("b.csv", b), ("c.csv", c)])
    assert export.rows_read == 5
    assert export.other_keys == {"steps": 1} and export.duplicates == 1
    assert export.frame["key"].to_list() == ["heart_rate", "sleep"]  # keys matched loosely
    assert export.unreadable[n.ERROR].to_list() == ["the file has no value column"]
    assert export.frame.height + export.duplicates + sum(export.other_keys.values()) + export.unreadable.height == export.rows_read


def test_heart_rate_rules_and_one_row_per_local_day():
    t = epoch("2024-01-01T21:30:00+00:00")  # 01:30 on 2 January in Tbilisi
    records = mi([
        mi_row("heart_rate", t, {"avg_hr": 70, "min_hr": 50, "max_hr": 120}),
        mi_row("heart_rate", t + 3600, {"avg_hr": 80, "min_hr": 45, "max_hr": 110}),
        mi_row("heart_rate", t, {"avg_hr": 20, "min_hr": 50, "max_hr": 120}),
        mi_row("heart_rate", t, {"avg_hr": "fast", "min_hr": 50}),
        mi_row("heart_rate", t, '{"avg_hr": 70, "min_hr": 5'),
        mi_row("heart_rate", "yesterday", {"avg_hr": 70, "min_hr": 50, "max_hr": 120}),
    ], tz="Asia/Tbilisi")
    split = n.normalise_heart_rate(records, TODAY)
    assert split.kept.select("date", "avg_hr", "min_hr", "max_hr", "records").rows() == [(dt.date(2024, 1, 2), 75.0, 45.0, 120.0, 2)]
    got = split.quarantine[n.ERROR].to_list()
    assert got[0] == "avg_hr 20.0 is outside 25-230; not min_hr 50.0 <= avg_hr 20.0 <= max_hr 120.0"
    assert got[1] == "avg_hr 'fast' is not a number; max_hr is missing"
    assert got[2] == """Value is not a JSON object: '{"avg_hr": 70, "min_hr": 5'"""
    assert got[3].startswith("Time 'yesterday' is not a Unix time in seconds")
    assert split.quarantine["week"].null_count() == 1  # the undated one


def test_sleep_across_midnight_belongs_to_the_day_it_ends():
    start = epoch("2024-01-07T23:00:00+00:00")  # Sunday 23:00 UTC, 8 h: ends Monday 07:00
    split = n.normalise_sleep(mi([mi_row("sleep", start, SLEEP)]), TODAY, 240)
    (row,) = split.kept.rows(named=True)
    assert row["date"] == dt.date(2024, 1, 8) and row["week"] == "2024-01-08"  # the next ISO week
    assert (row["total_minutes"], row["deep_minutes"], row["rem_minutes"], row["sleep_score"]) == (480, 100, 100, 80)


def test_sleep_day_depends_on_the_time_zone():
    start = epoch("2024-01-01T14:00:00+00:00")  # ends 22:00 UTC = 02:00 next day in Tbilisi
    nap = {**SLEEP, "total_duration": 480}
    utc = n.normalise_sleep(mi([mi_row("sleep", start, nap)], tz="UTC"), TODAY, 240).kept
    tbilisi = n.normalise_sleep(mi([mi_row("sleep", start, nap)], tz="Asia/Tbilisi"), TODAY, 240).kept
    assert utc["date"].to_list() == [dt.date(2024, 1, 1)]
    assert tbilisi["date"].to_list() == [dt.date(2024, 1, 2)]


def test_sleep_rules_short_sessions_and_no_data():
    t = epoch("2024-01-02T22:00:00+00:00")
    records = mi([
        mi_row("sleep", t, SLEEP),
        mi_row("sleep", t - 40000, {"total_duration": 90, "sleep_light_duration": 80, "has_data": True}),  # nap
        mi_row("sleep", t + 86400, {**SLEEP, "has_data": False}),                           # no data
        mi_row("sleep", t + 2 * 86400, {**SLEEP, "sleep_deep_duration": -5}),               # negative
        mi_row("sleep", t + 3 * 86400, {**SLEEP, "total_duration": 300}),                   # stages > total
        mi_row("sleep", t + 4 * 86400, {**SLEEP, "total_duration": "long"}),                # not a number
        mi_row("sleep", t + 5 * 86400, {**SLEEP, "sleep_score": 140}),
    ])
    split = n.normalise_sleep(records, TODAY, 240)
    assert split.kept["date"].to_list() == [dt.date(2024, 1, 3)]
    assert int(split.short_sessions["count"].sum()) == 1 and int(split.no_data["count"].sum()) == 1
    assert split.quarantine[n.ERROR].to_list() == [
        "sleep_deep_duration -5.0 is negative",
        "sleep stages sum to 480.0 minutes, more than total_duration 300.0",
        "total_duration 'long' is not a number",
        "sleep_score 140.0 is outside 0-100",
    ]
    assert n.normalise_sleep(records, TODAY, 60).kept.height == 2  # the minimum is a setting


def test_a_sleep_record_without_has_data_has_data():
    """Aggregated daily_report sleep records carry segment_details and no has_data key."""
    t = epoch("2024-01-02T22:00:00+00:00")
    record = {k: v for k, v in SLEEP.items() if k != "has_data"}
    record["segment_details"] = [{"bedtime": t, "wake_up_time": t + SLEEP["total_duration"] * 60}]
    split = n.normalise_sleep(mi([mi_row("sleep", t, record)]), TODAY, 240)
    assert split.kept["total_minutes"].to_list() == [SLEEP["total_duration"]]
    assert split.quarantine.height == 0 and split.no_data.height == 0  # every record accounted for


def test_week_versions_ignore_row_order_and_see_changes():
    frame = pl.DataFrame({"week": ["2024-01-01"] * 2, "a": ["1", "2"]})
    weeks = ["2024-01-01", "2024-01-08"]
    v1 = n.week_versions(frame, ["a"], weeks)
    assert v1 == n.week_versions(frame.reverse(), ["a"], weeks)
    assert v1["2024-01-08"] == n.week_versions(frame.clear(), ["a"], ["2024-01-08"])["2024-01-08"]
    changed = n.week_versions(frame.with_columns(a=pl.lit("3")), ["a"], weeks)
    assert changed["2024-01-01"] != v1["2024-01-01"] and changed["2024-01-08"] == v1["2024-01-08"]


def test_readings_at_the_iso_year_boundary_use_the_iso_week():
    split = bp([["2019-12-31", "07:30", "120", "80", "60"], ["2021-01-03", "07:30", "120", "80", "60"]])
    assert split.kept["week"].to_list() == ["2019-12-30", "2020-12-28"]  # year=2020/week=01, year=2020/week=53


def test_daily_metrics_outer_join_flags_missing_sources():
    b = bp([["2024-01-01", "07:30", "120", "80", "60"], ["2024-01-01", "20:00", "130", "90", "70"]]).kept
    h = pl.DataFrame({"date": [dt.date(2024, 1, 2)], "avg_hr": [70.0], "min_hr": [50.0], "max_hr": [120.0], "records": [1]})
    s = n.normalise_sleep(mi([mi_row("sleep", epoch("2024-01-01T22:00:00+00:00"), SLEEP)]), TODAY, 240).kept
    daily = n.daily_metrics(b, h, s)
    assert daily.select("date", "bp_readings", "systolic_mean", "missing_sources").rows() == [
        (dt.date(2024, 1, 1), 2, 125.0, "heart_rate,sleep"),
        (dt.date(2024, 1, 2), None, None, "blood_pressure"),
    ]
    assert daily["has_sleep"].to_list() == [False, True]


def test_settings_validate_the_time_zone_and_go_into_code_versions():
    with pytest.raises(ValueError, match="not an IANA time zone"):
        HealthSettings(timezone="Europe/Tbilisi")  # Tbilisi is in Asia
    assert HealthSettings(timezone="UTC", min_sleep_minutes=180).rules == "tz=UTC;min_sleep=180"


def test_a_revision_or_a_re_tag_of_a_record_counts_once():
    """Exports repeat a Key + Time with a later UpdateTime (a revision) or under another Tag."""
    header = ["Uid", "Sid", "Tag", "Key", "Time", "Value", "UpdateTime"]
    t = epoch("2024-01-02T10:00:00+00:00")
    night = epoch("2024-01-02T22:00:00+00:00")
    hr = {"avg_hr": 60, "min_hr": 50, "max_hr": 90}
    rows = [
        ["1", "band", "daily_report", "heart_rate", t, json.dumps(hr), 100],
        ["1", "band", "daily_report", "heart_rate", t, json.dumps({**hr, "avg_hr": 80}), 200],  # the revision
        ["1", "band", "daily_mark", "sleep", night, json.dumps(SLEEP), 100],
        ["1", "band", "daily_report", "sleep", night, json.dumps(SLEEP), 100],  # the same night, re-tagged
    ]
    export = n.mi_band_rows([("export.csv", csv_text([header, *rows]))])
    assert export.superseded == 2 and export.duplicates == 0
    assert export.frame["tag"].to_list() == ["daily_report", "daily_report"]
    records = n.with_mi_band_weeks(export.frame, "UTC", TODAY)
    assert n.normalise_heart_rate(records, TODAY).kept["avg_hr"].to_list() == [80]
    assert n.normalise_sleep(records, TODAY, 240).kept["total_minutes"].to_list() == [SLEEP["total_duration"]]
