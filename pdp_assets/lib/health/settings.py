"""Where the health data is read from and the rules that shape it, from the environment.

The rules (time zone, shortest sleep kept) change what every day holds, so they are part of every
asset's ``code_version``: changing one makes every week stale, as a code change would.
"""

import datetime as dt
import os
import zoneinfo
from dataclasses import dataclass

import polars as pl

DEFAULT_TIMEZONE = "Asia/Tbilisi"  # the seed's owner; set PDP_HEALTH_TZ for anyone else


@dataclass(frozen=True)
class HealthSettings:
    timezone: str = DEFAULT_TIMEZONE
    min_sleep_minutes: int = 240  # shorter sessions (naps) are left out and counted, as the seed
    bp_sheet: str = "blood_pressure"  # Google: the spreadsheet id; local: sheets/<name>.csv
    bp_range: str = "A:Z"  # A1 range of the readings (header row first)
    mi_band_folder: str = "mi_band"  # Google: the Drive folder id; local: drive/<name>/
    date_order: str = ""  # of D/M/YYYY-or-M/D/YYYY dates: "dmy", "mdy", or "" (read from the sheet's own dates)

    def __post_init__(self):
        try:
            zoneinfo.ZoneInfo(self.timezone)
            pl.Series([dt.datetime(2024, 1, 1)]).dt.replace_time_zone(self.timezone)  # Polars' own database
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, pl.exceptions.PolarsError):
            raise ValueError(f"time zone {self.timezone!r} is not an IANA time zone (e.g. Asia/Tbilisi, UTC)") from None
        if self.date_order not in ("", "dmy", "mdy"):
            raise ValueError(f"PDP_HEALTH_DATE_ORDER is {self.date_order!r}: dmy, mdy, or unset (from the sheet)")
        if self.min_sleep_minutes < 0:
            raise ValueError("PDP_HEALTH_MIN_SLEEP_MINUTES must be >= 0")

    @classmethod
    def from_env(cls) -> "HealthSettings":
        env = os.environ.get
        return cls(
            timezone=env("PDP_HEALTH_TZ", DEFAULT_TIMEZONE),
            min_sleep_minutes=int(env("PDP_HEALTH_MIN_SLEEP_MINUTES", "240")),
            bp_sheet=env("PDP_HEALTH_BP_SHEET", "blood_pressure"),
            bp_range=env("PDP_HEALTH_BP_RANGE", "A:Z"),
            mi_band_folder=env("PDP_HEALTH_MI_BAND_FOLDER", "mi_band"),
            date_order=env("PDP_HEALTH_DATE_ORDER", ""),
        )

    @property
    def rules(self) -> str:
        """The settings that change results, as they appear in code versions."""
        order = f";date_order={self.date_order}" if self.date_order else ""
        return f"tz={self.timezone};min_sleep={self.min_sleep_minutes}{order}"
