"""A fakesnow server for the session (the real Snowflake connector talks to it over HTTP), lab
lake data, and a warehouse resource that injects faults into chosen statements."""

import datetime as dt
import re
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import dagster as dg
import polars as pl
import pytest

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.lake import LAKE_SCHEMA
from pdp_assets.lib.resources.warehouse import SnowflakeWarehouse, Warehouse
from pdp_assets.lib.warehouse.config import load_config, Retry, WarehouseConfig
from pdp_assets_tests import servers

FAKESNOW_BIN = servers.REPO / ".venv" / "bin" / "fakesnow"
WEEK1, WEEK2 = "2024-01-01", "2024-01-08"


@pytest.fixture(scope="session")
def fakesnow_port(tmp_path_factory) -> Iterator[int]:
    """``fakesnow -s`` on 127.0.0.1, once per session, stopped by its pid at the end."""
    log = tmp_path_factory.mktemp("fakesnow") / "fakesnow.log"
    port = servers.free_port()
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [str(FAKESNOW_BIN), "-s", "--host", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    process.log_path = log
    try:
        servers.wait_for_port(process, port, 30, "fakesnow server")
        yield port
    finally:
        servers.stop(process, timeout=10)


def server_warehouse(port: int, schema: str) -> SnowflakeWarehouse:
    return SnowflakeWarehouse(account="fakesnow", user="fake", password="snow", host="127.0.0.1", port=port,
                              protocol="http", database="PDP", schema_name=schema, network_timeout=5)


@pytest.fixture
def schema() -> str:
    return f"T_{uuid.uuid4().hex[:10].upper()}"  # each test its own schema on the shared server


@pytest.fixture
def warehouse(fakesnow_port, schema) -> SnowflakeWarehouse:
    return server_warehouse(fakesnow_port, schema)


@pytest.fixture
def cfg() -> WarehouseConfig:
    """The real loads.yaml, with retries fast enough for tests."""
    real = load_config()
    fast = Retry(max_retries=3, delay_seconds=0.05)
    return real.model_copy(update={"loads": [load.model_copy(update={"retry": fast}) for load in real.loads]})


@pytest.fixture
def lab(cfg):
    return next(load for load in cfg.loads if load.name == "lab_results")


def lab_frame(week: str, n: int, start: int = 0) -> pl.DataFrame:
    monday = dt.date.fromisoformat(week)
    return pl.DataFrame(
        {
            "sample_id": [f"S{week[:4]}{week[5:7]}{week[8:]}-{i:05d}" for i in range(start, start + n)],
            "test_date": [monday + dt.timedelta(days=i % 7) for i in range(start, start + n)],
            "result": [("POS", "NEG", "N/A")[i % 3] for i in range(start, start + n)],
            "viral_load": [i * 10 for i in range(start, start + n)],
        },
        schema=LAKE_SCHEMA,
    )


def write_week(storage, week: str, frame: pl.DataFrame) -> None:
    storage.write(lake.DATA, lake.lake_blob(week), lake.to_parquet(frame))


def query(warehouse: Warehouse, sql: str, params: tuple = ()) -> list[tuple]:
    with warehouse.connect() as conn:
        cur = conn.cursor()
        cur.execute(sql, params)
        return cur.fetchall()


def drive_rows(warehouse: Warehouse, window: str | None = None) -> list[dict[str, Any]]:
    from pdp_assets.lib.warehouse import drive

    with warehouse.connect() as conn:
        return drive.attempts(conn.cursor(), "PDP_LOAD_DRIVE", "lab_results", window)


# --------------------------------------------------------------------------- fault injection


class FaultyWarehouse(SnowflakeWarehouse):
    """The server warehouse, except that statements matching ``fault_on`` fail (``transient`` or
    ``permanent``) or are followed by ``fault_sql``, as many times as ``faults_file`` says."""

    fault_on: str
    fault: str = "transient"
    fault_sql: str = ""
    faults_file: str

    def take_fault(self, sql: str) -> bool:
        path = Path(self.faults_file)
        left = int(path.read_text()) if path.exists() else 0
        if left > 0 and re.search(self.fault_on, sql):
            path.write_text(str(left - 1))
            return True
        return False

    @contextmanager
    def connect(self) -> Iterator[Any]:
        with super().connect() as conn:
            yield _Conn(conn, self)


class _Conn:
    def __init__(self, conn, owner: FaultyWarehouse):
        self._conn, self._owner = conn, owner

    def cursor(self):
        return _Cursor(self._conn.cursor(), self._owner)

    def __getattr__(self, name):
        return getattr(self._conn, name)


class _Cursor:
    def __init__(self, cur, owner: FaultyWarehouse):
        self._cur, self._owner, self._replay = cur, owner, None

    def execute(self, sql: str, params=None):
        from snowflake.connector import errors

        self._replay = None
        if not self._owner.take_fault(sql):
            return self._cur.execute(sql, params)
        if self._owner.fault == "transient":
            raise errors.OperationalError(msg="connection reset by peer (injected)", errno=250003)
        if self._owner.fault == "permanent":
            raise errors.ProgrammingError(msg="SQL compilation error: invalid identifier 'X' (injected)", errno=904)
        result = self._cur.execute(sql, params)  # run it, then the extra statement, keep the first result
        self._replay = self._cur.fetchall() if self._cur.description else []
        self._cur.execute(self._owner.fault_sql)
        return result

    def fetchone(self):
        if self._replay is not None:
            return self._replay[0] if self._replay else None
        return self._cur.fetchone()

    def fetchall(self):
        return self._replay if self._replay is not None else self._cur.fetchall()

    def __getattr__(self, name):
        return getattr(self._cur, name)


def faulty(port: int, schema: str, tmp_path: Path, fault_on: str, times: int, fault: str = "transient",
           fault_sql: str = "") -> FaultyWarehouse:
    faults = tmp_path / f"faults-{uuid.uuid4().hex[:6]}"
    faults.write_text(str(times))
    return FaultyWarehouse(account="fakesnow", user="fake", password="snow", host="127.0.0.1", port=port,
                           protocol="http", database="PDP", schema_name=schema, network_timeout=5,
                           fault_on=fault_on, fault=fault, fault_sql=fault_sql, faults_file=str(faults))


def step_events(result, event_type: str) -> list[str]:
    """Step keys that logged an event of this type, in order (e.g. STEP_START, STEP_RESTARTED)."""
    return [e.step_key for e in result.all_events if e.event_type_value == event_type]


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture(autouse=True)
def _quiet_fakesnow():
    import warnings

    warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")  # fakesnow's own
    yield
