"""The drive table: one row per (load, window, attempt), in the warehouse next to the data.

A row is written when pre-validation opens an attempt and updated as each phase starts and ends:
status, the phase reached, the failed phase, counts, durations, error kind/class/text. Dagster's
event log has the same story per run; this table is what SQL users (and the seed's queries) read.
"""

import datetime as dt
from typing import Any, Optional

from pdp_assets.lib.warehouse.config import PHASES
from pdp_assets.lib.warehouse.sql import q

RUNNING, SUCCEEDED, FAILED, STALE = "RUNNING", "SUCCEEDED", "FAILED", "STALE"

COLUMNS: dict[str, str] = {
    "LOAD_ID": "VARCHAR",  # <load>__<window>__a<attempt>; also tags the stage and target rows
    "LOAD_NAME": "VARCHAR",
    "WINDOW_KEY": "VARCHAR",  # the week partition key (its Monday)
    "WINDOW_START": "DATE",
    "WINDOW_END": "DATE",
    "ATTEMPT": "NUMBER(38,0)",
    "RUN_KIND": "VARCHAR",  # FRESH | RETRY (the previous attempt failed or went stale)
    "STATUS": "VARCHAR",  # RUNNING | SUCCEEDED | FAILED | STALE
    "PHASE": "VARCHAR",  # the phase reached
    "FAILED_PHASE": "VARCHAR",
    "ERROR_KIND": "VARCHAR",  # transient | permanent | stale
    "ERROR_CLASS": "VARCHAR",
    "ERROR_TEXT": "VARCHAR",
    "RETRIES": "NUMBER(38,0)",  # phases re-entered after a failure (step retries and resumes)
    "RUN_ID": "VARCHAR",  # the Dagster run that last worked on the attempt
    "SOURCE_FILES": "NUMBER(38,0)",
    "SOURCE_ROWS": "NUMBER(38,0)",
    "STAGE_ROWS": "NUMBER(38,0)",
    "INSERTED_ROWS": "NUMBER(38,0)",
    "UPDATED_ROWS": "NUMBER(38,0)",
    "TARGET_ROWS": "NUMBER(38,0)",
    "STAGE_CLEANED_ROWS": "NUMBER(38,0)",
    "TARGET_CLEANED_ROWS": "NUMBER(38,0)",
    "AUDIT_STATUS": "VARCHAR",  # PASSED | FAILED
    "AUDIT_DIFF_PERCENT": "FLOAT",
    "TOLERANCE_PERCENT": "FLOAT",
    "SCHEMA_CHANGES": "VARCHAR",
    **{f"{p.upper()}_SECONDS": "FLOAT" for p in PHASES},
    "STARTED_AT": "TIMESTAMP_TZ",
    "UPDATED_AT": "TIMESTAMP_TZ",  # the heartbeat stale handling looks at
    "FINISHED_AT": "TIMESTAMP_TZ",
}


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def ensure(cur, table: str) -> None:
    cols = ", ".join(f"{q(c)} {t}" for c, t in COLUMNS.items())
    cur.execute(f"CREATE TABLE IF NOT EXISTS {q(table)} ({cols})")


def _rows(cur) -> list[dict[str, Any]]:
    names = [d[0].upper() for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def attempts(cur, table: str, load_name: str, window_key: Optional[str] = None) -> list[dict[str, Any]]:
    """Attempts of a load (of one window), oldest first."""
    sql = f"SELECT * FROM {q(table)} WHERE {q('LOAD_NAME')} = %s"
    params: tuple = (load_name,)
    if window_key:
        sql += f" AND {q('WINDOW_KEY')} = %s"
        params += (window_key,)
    cur.execute(sql + f" ORDER BY {q('WINDOW_KEY')}, {q('ATTEMPT')}", params)
    return _rows(cur)


def get(cur, table: str, load_id: str) -> Optional[dict[str, Any]]:
    cur.execute(f"SELECT * FROM {q(table)} WHERE {q('LOAD_ID')} = %s", (load_id,))
    rows = _rows(cur)
    return rows[0] if rows else None


def insert(cur, table: str, row: dict[str, Any]) -> None:
    unknown = set(row) - set(COLUMNS)
    assert not unknown, f"not drive columns: {unknown}"
    cols = list(row)
    cur.execute(
        f"INSERT INTO {q(table)} ({', '.join(q(c) for c in cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
        tuple(row[c] for c in cols),
    )


def update(cur, table: str, load_id: str, **fields: Any) -> None:
    unknown = set(fields) - set(COLUMNS)
    assert not unknown, f"not drive columns: {unknown}"  # names are ours, never config values
    fields.setdefault("UPDATED_AT", now())
    sets = ", ".join(f"{q(c)} = %s" for c in fields)
    cur.execute(f"UPDATE {q(table)} SET {sets} WHERE {q('LOAD_ID')} = %s", (*fields.values(), load_id))
