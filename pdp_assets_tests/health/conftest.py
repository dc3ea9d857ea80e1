"""Health fixtures: the local Google layout in a temporary folder, definitions bound to it, a
fake-free local HTTP server that answers the real Google clients, and run helpers."""

import csv
import io
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest

from pdp_assets.definitions import source_definitions
from pdp_assets.defs.health.assets import SETTINGS
from pdp_assets.lib.resources.google import LocalGoogleSource

health_defs = source_definitions("health")

BP_HEADER = ["Date", "Time", "Systolic", "Diastolic", "Pulse"]
MI_HEADER = ["Uid", "Sid", "Key", "Time", "Value", "UpdateTime"]


def csv_text(rows: list[list]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def write_sheet(root: Path, rows: list[list], header: list[str] = BP_HEADER) -> None:
    path = root / "sheets" / f"{SETTINGS.bp_sheet}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(csv_text([header, *rows]))


def mi_row(key: str, time: int | str, value: dict | str) -> list:
    return ["1", "band", key, time, value if isinstance(value, str) else json.dumps(value), 0]


def write_export(root: Path, name: str, rows: list[list], header: list[str] = MI_HEADER) -> None:
    folder = root / "drive" / SETTINGS.mi_band_folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(csv_text([header, *rows]))


@pytest.fixture
def google_root(tmp_path) -> Path:
    root = tmp_path / "google"
    (root / "drive" / SETTINGS.mi_band_folder).mkdir(parents=True)
    return root


@pytest.fixture
def google(google_root) -> LocalGoogleSource:
    return LocalGoogleSource(root=str(google_root))


@pytest.fixture
def defs(google, storage) -> dg.Definitions:
    return dg.Definitions.merge(health_defs, dg.Definitions(resources={"google": google, "storage": storage}))


def range_tags(first: str, last: str) -> dict:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def observe(defs: dg.Definitions, instance, weeks: list[str]) -> dg.ExecuteInProcessResult:
    result = defs.resolve_job_def("health_observe_job").execute_in_process(
        instance=instance, tags=range_tags(min(weeks), max(weeks))
    )
    assert result.success
    return result


def build(defs: dg.Definitions, instance, weeks: list[str], raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    """One run over a range of weeks, as a single-run backfill launches it."""
    return defs.resolve_job_def("health_job").execute_in_process(
        instance=instance, tags=range_tags(min(weeks), max(weeks)), raise_on_error=raise_on_error
    )


class GoogleApiServer:
    """Answers what the real clients send: the OAuth token exchange of a service account, Sheets
    v4 values.get, Drive v3 files.list (paged) and files.get?alt=media. Records the requests."""

    def __init__(self, sheets: dict[str, list[list[str]]], folders: dict[str, dict[str, bytes]], page_size: int = 2):
        self.sheets, self.folders, self.page_size = sheets, folders, page_size
        self.requests: list[tuple[str, str, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                server.requests.append(("POST", self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.path == "/token" and form.get("grant_type") == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
                    return self._send(200, json.dumps({"access_token": "local-token", "expires_in": 3600, "token_type": "Bearer"}).encode())
                self._send(400, b'{"error": "unsupported"}')

            def do_GET(self):
                server.requests.append(("GET", self.path, {k.lower(): v for k, v in self.headers.items()}))
                if self.headers.get("Authorization") != "Bearer local-token":
                    return self._send(401, b'{"error": {"code": 401, "message": "no token"}}')
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
                if parts[:2] == ["v4", "spreadsheets"] and parts[3] == "values" and parts[2] in server.sheets:
                    body = {"range": parts[4], "majorDimension": "ROWS", "values": server.sheets[parts[2]]}
                    return self._send(200, json.dumps(body).encode())
                if parts == ["drive", "v3", "files"]:
                    folder = query["q"][0].split("'")[1]
                    names = sorted(server.folders.get(folder, {}))
                    start = int(query.get("pageToken", ["0"])[0])
                    page = names[start:start + server.page_size]
                    body = {"files": [{"id": f"{folder}:{n}", "name": n, "md5Checksum": "x", "size": str(len(server.folders[folder][n]))} for n in page]}
                    if start + server.page_size < len(names):
                        body["nextPageToken"] = str(start + server.page_size)
                    return self._send(200, json.dumps(body).encode())
                if parts[:3] == ["drive", "v3", "files"] and query.get("alt") == ["media"]:
                    folder, name = parts[3].split(":", 1)
                    return self._send(200, server.folders[folder][name], "text/csv")
                self._send(404, b'{"error": {"code": 404, "message": "not found"}}')

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "GoogleApiServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def service_account_key(token_uri: str) -> str:
    """A throwaway service-account key (made here, known to no one) whose token URI is local."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return json.dumps({
        "type": "service_account", "project_id": "pdp-test", "private_key_id": "test",
        "private_key": pem.decode(), "client_email": "pdp-test@pdp-test.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": token_uri,
    })
