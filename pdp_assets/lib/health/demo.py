"""Demo data in the local Google layout: a year of blood pressure in a sheet and Mi Band exports in
a Drive folder, with the gaps, typos, duplicates and impossible readings real data has."""

import csv
import datetime as dt
import io
import json
import random
import zoneinfo
from pathlib import Path

from pdp_assets.lib.health.settings import HealthSettings


def _csv(rows: list[list]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def blood_pressure_sheet(days: list[dt.date], rnd: random.Random) -> bytes:
    """Morning and evening readings on most days; a vacation without any; some slips."""
    rows: list[list] = [[" Date", "Time ", "SYSTOLIC", "Diastolic (mmHg)", "pulse"]]  # header variants
    for day in days:
        for hour in (8, 21):
            if rnd.random() < 0.15:  # forgot
                continue
            s, d = rnd.randint(108, 142), rnd.randint(66, 92)
            rows.append([day.isoformat(), f"{hour:02d}:{rnd.randint(0, 59):02d}", s, d, rnd.randint(55, 88)])
    body = rows[1:]
    # A few of the slips people make, at fixed places so every seed has them.
    body[5][2] = "12O"  # letter O for zero
    body[11][0] = body[11][0].replace("-", "/")  # 2024/01/05: not a date format we accept
    body[17][2], body[17][3] = 400, 80  # impossible systolic
    body[23][2], body[23][3] = 90, 120  # diastolic above systolic
    body[29][4] = ""  # pulse not typed
    d0 = dt.date.fromisoformat(body[31][0])
    body[31][0] = d0.strftime("%d.%m.%Y")  # a valid variant
    body.insert(40, list(body[39]))  # the same reading typed twice
    body.insert(50, [])  # a blank line
    return _csv([rows[0], *body])


def mi_band_exports(days: list[dt.date], tz: str, rnd: random.Random) -> dict[str, bytes]:
    """Two overlapping exports (the second repeats the end of the first), as Mi Fitness makes."""
    zone = zoneinfo.ZoneInfo(tz)
    header = ["Uid", "Sid", "Tag", "Key", "Time", "Value", "UpdateTime"]
    records = []
    for i, day in enumerate(days):
        if rnd.random() < 0.08:  # band not worn
            continue
        noon = int(dt.datetime.combine(day, dt.time(12), zone).timestamp())
        avg = rnd.randint(62, 78)
        hr = {"avg_hr": avg, "min_hr": avg - rnd.randint(8, 15), "max_hr": avg + rnd.randint(40, 70)}
        records.append(["heart_rate", noon, hr])
        # the night that ends on this day
        bed = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(22), zone)
        bed += dt.timedelta(minutes=rnd.randint(0, 150))
        total = rnd.randint(330, 520)
        deep, rem, awake = int(total * 0.2), int(total * 0.2), rnd.randint(5, 30)
        sleep = {
            "total_duration": total, "sleep_deep_duration": deep, "sleep_light_duration": total - deep - rem - awake,
            "sleep_rem_duration": rem, "sleep_awake_duration": awake, "sleep_score": rnd.randint(55, 95),
            "has_data": True,
        }
        records.append(["sleep", int(bed.timestamp()), sleep])
        if i % 9 == 0:  # an afternoon nap: left out by the minimum sleep rule
            nap = dt.datetime.combine(day, dt.time(15), zone)
            records.append(["sleep", int(nap.timestamp()), {**sleep, "total_duration": 40, "sleep_deep_duration": 5,
                            "sleep_light_duration": 30, "sleep_rem_duration": 0, "sleep_awake_duration": 5}])
        records.append(["steps", noon, {"steps": rnd.randint(2000, 15000)}])  # counted and ignored
    rows = [["1001", "band", "daily_report", key, t, json.dumps(v, separators=(",", ":")), t + 60]
            for key, t, v in records]
    hr = [r for r in rows if r[3] == "heart_rate"]
    sleeps = [r for r in rows if r[3] == "sleep" and '"total_duration":40,' not in r[5]]
    hr[2][5] = '{"avg_hr": 71, "min_hr": 50'  # truncated JSON
    hr[5][5] = hr[5][5].replace('"avg_hr":', '"avg_hr":3')  # e.g. 70 -> 370: impossible
    hr[8][4] = "yesterday"  # not a Unix time
    sleeps[3][5] = sleeps[3][5].replace('"sleep_deep_duration":', '"sleep_deep_duration":-')  # negative stage
    sleeps[6][5] = sleeps[6][5].replace('"total_duration":', '"total_duration":1')  # e.g. 420 -> 1420 ...
    sleeps[6][5] = sleeps[6][5].replace('"sleep_light_duration":', '"sleep_light_duration":9')  # ... stages past it
    half = len(rows) // 2
    return {
        "mi_fitness_export_1.csv": _csv([header, *rows[: half + 40]]),
        "mi_fitness_export_2.csv": _csv([header, *rows[half:]]),  # 40 rows overlap: duplicates
    }


def write_demo_data(
    google_root: Path, days: int = 365, seed: int = 0, end: dt.date | None = None,
    settings: HealthSettings | None = None,
) -> list[Path]:
    """Write the demo sheet and Drive folder under ``google_root`` (``$PDP_HOME/google``) in the
    layout of :class:`~pdp_assets.lib.resources.google.LocalGoogleSource`; return the files written."""
    settings = settings or HealthSettings.from_env()
    rnd = random.Random(seed)
    end = end or dt.date.today()
    all_days = [end - dt.timedelta(days=days - 1 - i) for i in range(days)]
    gap = set(all_days[days // 2: days // 2 + 12])  # two weeks away: no readings at all
    kept = [d for d in all_days if d not in gap]
    sheet = Path(google_root) / "sheets" / f"{settings.bp_sheet}.csv"
    folder = Path(google_root) / "drive" / settings.mi_band_folder
    folder.mkdir(parents=True, exist_ok=True)
    sheet.parent.mkdir(parents=True, exist_ok=True)
    written = [sheet]
    sheet.write_bytes(blood_pressure_sheet(kept, rnd))
    for name, data in mi_band_exports(kept, settings.timezone, rnd).items():
        (folder / name).write_bytes(data)
        written.append(folder / name)
    return written
