"""A service that is down or refuses the credentials: every `pdp` command says so in one line,
exits non-zero, and prints no secret. Real servers and real client errors, not stand-ins."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pdp_assets.ops.service_errors import describe, redact
from pdp_assets_tests.servers import free_port, start_azurite, stop

KEY = "UExBTlRFRFNFQ1JFVEtFWTAxMjM0NTY3ODk="  # planted: must never be printed


def pdp(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PDP_", "AZURE_STORAGE_", "SNOWFLAKE_"))}
    clean.update(PDP_HOME=str(tmp_path / "pdp"), DAGSTER_HOME=str(tmp_path / "pdp" / "dagster"), **env)
    return subprocess.run([str(Path(sys.executable).with_name("pdp")), *args], env=clean, capture_output=True,
                          text=True, timeout=300)


def azure_env(endpoint: str, key: str = KEY) -> dict:
    return {"PDP_STORAGE": "azure", "AZURE_STORAGE_CONNECTION_STRING":
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint={endpoint};"}


def assert_one_clear_line(out: subprocess.CompletedProcess, *expected: str) -> str:
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert "Traceback" not in text and KEY not in text, text
    (line,) = [ln for ln in out.stderr.splitlines() if ln.startswith("Error: ")]
    for word in expected:
        assert word in line, line
    return line


@pytest.mark.parametrize("command", [("ingest",), ("quarantine", "list"), ("export",)])
def test_unreachable_azure_is_one_line_naming_the_endpoint(tmp_path, command):
    endpoint = f"http://127.0.0.1:{free_port()}/devstoreaccount1"  # nothing listens there
    out = pdp(tmp_path, *command, **azure_env(endpoint))
    assert_one_clear_line(out, "Azure Blob Storage", endpoint, "AZURE_STORAGE_CONNECTION_STRING")


def test_azure_refusing_the_key_is_one_line_about_credentials(tmp_path):
    azurite, good = start_azurite(tmp_path / "az")
    try:
        endpoint = next(p.split("=", 1)[1] for p in good.split(";") if p.startswith("BlobEndpoint="))
        out = pdp(tmp_path, "quarantine", "list", **azure_env(endpoint))  # a key Azurite does not know
        assert_one_clear_line(out, "Azure Blob Storage", "refused", "account key")
    finally:
        stop(azurite)


def test_snowflake_and_spark_errors_read_as_one_line():
    from snowflake.connector.errors import DatabaseError, OperationalError

    down = OperationalError(msg="Failed to connect to DB: xy12345.snowflakecomputing.com:443", errno=250001)
    assert describe(RuntimeError("a bug, not a service")) is None
    wrapped = RuntimeError("the run failed")
    wrapped.__cause__ = down
    assert describe(wrapped).startswith("Snowflake")
    assert "SNOWFLAKE_ACCOUNT" in describe(wrapped)
    refused = DatabaseError(msg="Incorrect username or password was specified.", errno=250001)
    assert "refused" in describe(refused) and "SNOWFLAKE_PASSWORD" in describe(refused)


def test_secrets_in_library_text_are_masked():
    text = ("https://acct.blob.core.windows.net/c/b?sv=2024&sig=abc%2Fdef&se=1 "
            f"AccountKey={KEY};password=hunter2 token: xyz")
    masked = redact(text)
    assert "abc%2Fdef" not in masked and KEY not in masked and "hunter2" not in masked and "xyz" not in masked
    assert "https://acct.blob.core.windows.net/c/b" in masked
