"""Which warehouse errors are retried: by class, Snowflake error number and SQL state, with the
connector's and DuckDB's own exception classes; never by words in the message."""

import duckdb
import pytest
from snowflake.connector import errors as sf

from pdp_assets.defs.warehouse.assets import is_transient, TRANSIENT_ERRNOS
from pdp_assets.lib.warehouse import sql


def case_id(error: BaseException) -> str:
    return f"{type(error).__name__}-{getattr(error, 'errno', '')}"


@pytest.mark.parametrize("error", [
    sf.ProgrammingError(msg="Statement reached its statement or warehouse timeout of 10 second(s)", errno=630,
                        sqlstate="57014"),
    sf.ProgrammingError(msg="Statement 01b2 has locked table 'LAB_RESULTS' ... waiting", errno=625),
    sf.ProgrammingError(msg="SQL execution canceled", errno=604, sqlstate="57014"),
    sf.OperationalError(msg="Failed to connect to DB", errno=250001, sqlstate="08001"),
    sf.OperationalError(msg="connection reset by peer", errno=250003),
    sf.DatabaseError(msg="Authentication token has expired", errno=390114),
    sf.DatabaseError(msg="could not serialize", errno=1, sqlstate="40001"),
    sf.DatabaseError(msg="connection lost", errno=2, sqlstate="08006"),
    duckdb.IOException('Could not set lock on file "PDP.db": Conflicting lock is held'),
    duckdb.TransactionException("Conflict on update"),
    sql.TransientLoadError("stage file vanished"),
    TimeoutError("read timed out"),
    ConnectionResetError("reset"),
], ids=case_id)
def test_retried(error):
    assert is_transient(error)


@pytest.mark.parametrize("error", [
    sf.ProgrammingError(msg="SQL compilation error: invalid identifier 'BLOCK_ID'", errno=904, sqlstate="42000"),
    sf.ProgrammingError(msg="Numeric value '1503 rows' is not recognized; timeout lock 503", errno=100038,
                        sqlstate="22018"),
    sf.ProgrammingError(msg="Object 'LAB_RESULTS' does not exist or not authorized.", errno=2003, sqlstate="42S02"),
    sf.DatabaseError(msg="Incorrect username or password was specified.", errno=390100, sqlstate="08004"),
    duckdb.CatalogException("Table with name X does not exist"),
    duckdb.IOException("No such file or directory: lock.parquet"),
    sql.PermanentLoadError("schema drift"),
    ValueError("a bug, lock timeout 503"),
], ids=case_id)
def test_not_retried(error):
    assert not is_transient(error)


def test_every_transient_number_is_documented():
    doc = (sql.__file__.rsplit("/pdp_assets/", 1)[0] + "/docs/warehouse.md")
    text = open(doc).read()
    assert all(f"{n:06d}" in text for n in TRANSIENT_ERRNOS)
