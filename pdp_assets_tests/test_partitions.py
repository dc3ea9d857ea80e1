import datetime as dt

import pytest

from pdp_assets.lib.partitions import week_bounds, week_key, week_key_from_path, week_path, weekly_partitions


@pytest.mark.parametrize(
    "day, path",
    [
        (dt.date(2024, 12, 30), "year=2025/week=01"),  # ISO year differs from calendar year
        (dt.date(2021, 1, 3), "year=2020/week=53"),  # a Sunday in the 53rd week of 2020
        (dt.date(2019, 12, 30), "year=2020/week=01"),  # the first partition
        (dt.date(2026, 1, 1), "year=2026/week=01"),
        (dt.date(2027, 1, 1), "year=2026/week=53"),
    ],
)
def test_iso_week_path(day, path):
    assert week_path(week_key(day)) == path
    assert week_key_from_path(path) == week_key(day)
    first, last = week_bounds(week_key(day))
    assert first <= day <= last and first.weekday() == 0 and (last - first).days == 6


def test_partitions_start_monday_2020_w01_and_include_the_current_week():
    keys = weekly_partitions.get_partition_keys()
    assert keys[0] == "2019-12-30"
    assert all(dt.date.fromisoformat(k).weekday() == 0 for k in keys)
    assert keys[-1] == week_key(dt.datetime.now(dt.timezone.utc).date())
