"""The warehouse: Snowflake in the cloud, fakesnow (DuckDB underneath) on this machine.

Asset code only sees :class:`Warehouse` and the DB-API connection its ``connect()`` yields; it
speaks Snowflake SQL with ``%s`` parameters either way. Files are loaded the Snowflake way,
``PUT`` to an internal stage then ``COPY INTO`` (fakesnow supports both, in process and as a
server), so the local path and the cloud path run the same statements.
"""

import os
import warnings
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import dagster as dg
from pydantic import field_validator

from pdp_assets.lib.warehouse.config import identifier

# fakesnow notes an extra copy on every Arrow fetch of the local warehouse: nothing to act on.
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)


class Warehouse(dg.ConfigurableResource, ABC):
    """A Snowflake-compatible warehouse: one database and schema that the loads write to."""

    database: str = "PDP"
    schema_name: str = "WAREHOUSE"

    @field_validator("database", "schema_name")
    @classmethod
    def _plain(cls, v: str) -> str:
        if isinstance(v, dg.EnvVar):  # resolved at run time; never written into SQL text anyway
            return v
        return identifier(v)  # defence in depth: only plain names

    @abstractmethod
    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A DB-API connection (Snowflake connector semantics, autocommit), closed on exit."""

    @abstractmethod
    def describe(self) -> str:
        """Where the data lives, for logs and UI metadata (never a secret)."""

    def reclaim_deleted(self) -> str:
        """Make deleted rows unrecoverable from storage, not only invisible to SQL; says what it did."""
        return "nothing to do"


class LocalWarehouse(Warehouse):
    """fakesnow in this process, its databases kept as DuckDB files in ``db_path`` (``$PDP_HOME/warehouse``),
    so a demo's warehouse survives between runs. DuckDB lets one process at a time open a file:
    a second one gets a lock error, which the loads treat as transient (retried)."""

    db_path: str = ".pdp/warehouse"

    @contextmanager
    def connect(self) -> Iterator[Any]:
        from fakesnow.instance import FakeSnow

        Path(self.db_path).mkdir(parents=True, exist_ok=True)
        _keep_stages_in(Path(self.db_path) / "stages")
        fs = FakeSnow(db_path=self.db_path)
        try:
            conn = fs.connect(self.database, self.schema_name)
            try:
                yield conn
            finally:
                conn.close()
        finally:
            fs.duck_conn.close()  # releases the file lock for the next step or process

    def describe(self) -> str:
        return f"fakesnow {Path(self.db_path).resolve()}/{self.database}.db, schema {self.schema_name}"

    def reclaim_deleted(self) -> str:
        """DuckDB keeps a deleted row's bytes in the file (a checkpoint only marks them free), so
        the database is copied into a fresh file that replaces it. The old file stays open, and
        so locked against other writers, until the new one is in place; a crash leaves the old
        file whole (and a ``.compacting`` file that the next reclaim removes)."""
        import duckdb

        path = Path(self.db_path) / f"{self.database}.db"
        fresh = path.with_name(path.name + ".compacting")
        if "'" in str(fresh):
            raise ValueError(f"warehouse folder {fresh.parent} holds a quote; choose a plain folder")
        fresh.unlink(missing_ok=True)
        if not path.exists():
            return "no local warehouse yet"
        before = path.stat().st_size
        con = duckdb.connect(str(path))
        try:
            con.execute("CHECKPOINT")  # the WAL folded in, so closing the old file later writes nothing
            con.execute(f"ATTACH '{fresh}' AS fresh")
            con.execute(f"COPY FROM DATABASE {self.database} TO fresh")  # a plain identifier (validated)
            con.execute("DETACH fresh")
            os.replace(fresh, path)
        finally:
            con.close()
        return f"{path.name} rewritten without deleted rows ({before:,} -> {path.stat().st_size:,} bytes)"


def _keep_stages_in(folder: Path) -> None:
    """fakesnow keeps internal stages under a temporary folder it makes on import, one per
    process and never removed; keep them beside the warehouse instead (PUT files are purged by
    the COPY that reads them), and remove the empty folder it made."""
    from fakesnow.transforms import stage

    if Path(stage.LOCAL_BUCKET_PATH) != folder:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            os.rmdir(stage.LOCAL_BUCKET_PATH)
        except OSError:
            pass  # not empty: another warehouse in this process staged there; leave it
        stage.LOCAL_BUCKET_PATH = str(folder)


class SnowflakeWarehouse(Warehouse):
    """Snowflake through ``dagster_snowflake.SnowflakeResource`` (imported only when used: ~10 s).

    Bind the fields to ``dg.EnvVar`` values so secrets are read at run time. ``host``, ``port``
    and ``protocol`` are for a fakesnow server (tests): leave them unset for real Snowflake.
    """

    account: str
    user: str
    password: Optional[str] = None
    private_key_path: Optional[str] = None
    role: Optional[str] = None
    warehouse: Optional[str] = None
    host: Optional[str] = None
    port: Optional[int] = None
    protocol: Optional[str] = None
    network_timeout: int = 60

    def _resource(self):
        from dagster_snowflake import SnowflakeResource

        extra = {k: v for k, v in (("host", self.host), ("port", self.port), ("protocol", self.protocol)) if v}
        extra["session_parameters"] = {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False}
        return SnowflakeResource(
            account=self.account,
            user=self.user,
            password=self.password,
            private_key_path=self.private_key_path,
            role=self.role,
            warehouse=self.warehouse,
            database=self.database,
            schema=self.schema_name,
            network_timeout=self.network_timeout,
            additional_snowflake_connection_args=extra,
        )

    @contextmanager
    def connect(self) -> Iterator[Any]:
        with self._resource().get_connection() as conn:
            yield conn

    def reclaim_deleted(self) -> str:
        return ("deleted rows stay in Snowflake Time Travel for the table's DATA_RETENTION_TIME_IN_DAYS, "
                "then 7 days in Fail-safe (docs/warehouse.md)")

    def describe(self) -> str:
        where = f"{self.protocol or 'https'}://{self.host}:{self.port}" if self.host else f"account {self.account}"
        return f"Snowflake {where}, {self.database}.{self.schema_name}"
