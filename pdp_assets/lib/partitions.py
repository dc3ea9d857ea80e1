"""ISO-week partitions shared by every source, and the week <-> storage path mapping.

A partition key is the Monday of an ISO week (``2024-12-30``); its storage path uses the ISO
year and ISO week (``%G``/``%V``), so 2024-12-30 is ``year=2025/week=01`` and 2021-01-03 (a
Sunday) belongs to ``year=2020/week=53``.
"""

import datetime as dt

import dagster as dg

FIRST_MONDAY = dt.date(2019, 12, 30)  # ISO 2020-W01

# end_offset=1 includes the current, still running week.
weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=FIRST_MONDAY.isoformat(), day_offset=1, end_offset=1
)


# One partition per file dropped for the lab pipeline: each landing upload, each deletion request.
upload_partitions = dg.DynamicPartitionsDefinition(name="lab_uploads")
deletion_partitions = dg.DynamicPartitionsDefinition(name="lab_deletion_requests")


def week_start(day: dt.date) -> dt.date:
    """The Monday of the ISO week that holds ``day``."""
    return day - dt.timedelta(days=day.weekday())


def week_key(day: dt.date) -> str:
    """The partition key of the week that holds ``day``."""
    return week_start(day).isoformat()


def weeks_ending(count: int, last: dt.date) -> list[str]:
    """The partition keys of the ``count`` weeks that end with the week holding ``last``."""
    if count < 1:
        raise ValueError("the number of weeks must be at least 1")
    monday = week_start(last)
    first = monday - dt.timedelta(weeks=count - 1)
    if first < FIRST_MONDAY:
        most = (monday - FIRST_MONDAY).days // 7 + 1
        raise ValueError(f"at most {most} weeks end with {monday} (the first week is {FIRST_MONDAY})")
    return [(first + dt.timedelta(weeks=i)).isoformat() for i in range(count)]


def week_path(partition_key: str) -> str:
    """``year=YYYY/week=WW`` (ISO year, two-digit ISO week) for a week's partition key."""
    monday = dt.date.fromisoformat(partition_key)
    return monday.strftime("year=%G/week=%V")


def week_key_from_path(path: str) -> str:
    """Inverse of :func:`week_path`: ``year=2025/week=01`` -> ``2024-12-30``."""
    parts = dict(p.split("=", 1) for p in path.strip("/").split("/") if "=" in p)
    return dt.date.fromisocalendar(int(parts["year"]), int(parts["week"]), 1).isoformat()


def week_bounds(partition_key: str) -> tuple[dt.date, dt.date]:
    """First and last day (inclusive) of a week partition."""
    monday = dt.date.fromisoformat(partition_key)
    return monday, monday + dt.timedelta(days=6)
