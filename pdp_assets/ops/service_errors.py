"""A service that is down, refuses the credentials or the permission, in one sentence.

``pdp`` commands talk to Azure Blob Storage, Google, Snowflake and Spark; when one of them cannot
be reached the user gets which service, which endpoint and what to check, instead of a
traceback. Nothing secret is printed: connection strings, keys, SAS signatures and passwords
are masked in whatever text a library put in its error.
"""

import os
import re
from typing import Optional

_SECRET = re.compile(
    r"(?i)((?:AccountKey|SharedAccessSignature|sig|password|private_key|token|client_secret)\s*[=:]\s*)"
    r"[^;&\s'\"]+"
)
_QUERY = re.compile(r"(https?://[^\s?'\"]+)\?[^\s'\"]*")  # a URL's query string can carry a SAS


def redact(text: str) -> str:
    """``text`` with secrets and URL query strings masked."""
    return _SECRET.sub(r"\1***", _QUERY.sub(r"\1?***", text))


def _chain(error: BaseException):
    """(qualified class name, first line of text) of the error and each of its causes."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        lines = str(error).strip().splitlines()
        yield f"{type(error).__module__}.{type(error).__name__}", lines[0] if lines else type(error).__name__
        error = error.__cause__ or error.__context__


def _info_chain(info):
    """The same for an error a run recorded (Dagster's serialised error: "module.Class: text")."""
    while info is not None:
        name, _, text = (info.message or "").strip().partition(": ")
        yield name if "." in name else f"builtins.{name}", (text.splitlines() or [info.cls_name or ""])[0]
        info = info.cause or info.context


def _azure_endpoint() -> str:
    if url := os.environ.get("AZURE_STORAGE_ACCOUNT_URL"):
        return url
    parts = dict(p.split("=", 1) for p in os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "").split(";") if "=" in p)
    if "BlobEndpoint" in parts:
        return parts["BlobEndpoint"]
    if "AccountName" in parts:
        return f"https://{parts['AccountName']}.blob.{parts.get('EndpointSuffix', 'core.windows.net')}"
    return ""


_ENDPOINTS = {
    "Azure Blob Storage": _azure_endpoint,
    "Snowflake": lambda: os.environ.get("SNOWFLAKE_ACCOUNT", ""),
    "Spark": lambda: os.environ.get("PDP_SPARK_MASTER", ""),
}

# (module prefix of the error's class, service, what to check when it cannot be reached,
# what to check when it refuses the credentials or the permission)
_SERVICES = [
    ("azure.", "Azure Blob Storage", "that the storage account (or Azurite) is running and reachable; "
     "AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL",
     "the account key, SAS or identity in AZURE_STORAGE_CONNECTION_STRING / AZURE_STORAGE_ACCOUNT_URL, "
     "and its role on the containers"),
    ("snowflake.", "Snowflake", "SNOWFLAKE_ACCOUNT and the network route to it",
     "SNOWFLAKE_USER, SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY_PATH, and SNOWFLAKE_ROLE's grants"),
    ("google", "Google (Sheets / Drive)", "the network route to googleapis.com",
     "GOOGLE_APPLICATION_CREDENTIALS / GOOGLE_SERVICE_ACCOUNT_JSON and that the sheet and folder are "
     "shared with the service account"),
    ("py4j", "Spark", "PDP_SPARK_MASTER and that Java 17 is installed (JAVA_HOME)", "the cluster's access rules"),
    ("pyspark", "Spark", "PDP_SPARK_MASTER and that Java 17 is installed (JAVA_HOME)", "the cluster's access rules"),
]
_REFUSED = re.compile(r"(?i)\b(401|403|unauthori[sz]ed|forbidden|authenticat|authori[sz]ation|"
                      r"permission|access denied|incorrect username or password|invalid credentials)")


def _sentence(chain) -> Optional[str]:
    for name, text in chain:
        text = redact(text)[:300]
        for prefix, service, reach, creds in _SERVICES:
            if name.startswith(prefix):
                endpoint = _ENDPOINTS.get(service, str)()
                where = f" at {redact(endpoint)}" if endpoint else ""
                if _REFUSED.search(f"{name} {text}"):
                    return f"{service}{where} refused the request ({text}): check {creds}"
                return f"{service}{where} failed ({text}): check {reach}"
        if name.split(".")[-1] in _CONNECTION_ERRORS:
            return f"could not connect to a service ({text}): check the network and the service's address"
    return None


_CONNECTION_ERRORS = {"ConnectionError", "ConnectionRefusedError", "ConnectionResetError", "TimeoutError"}


def describe(error: BaseException) -> Optional[str]:
    """One line for a service error anywhere in ``error``'s chain; None if it is not one."""
    return _sentence(_chain(error))


def run_failure(instance, run_id: str) -> str:
    """Why a run failed, in one line: the service error, else its first failed step's error."""
    import dagster as dg

    first = None
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
        error = entry.dagster_event.step_failure_data.error
        sentence = _sentence(_info_chain(error))
        if sentence:
            return sentence
        first = first or f"step {entry.step_key}: {redact(next(_info_chain(error))[1])[:300]}"
    return f"run {run_id} failed: {first or 'see it in the UI'}"
