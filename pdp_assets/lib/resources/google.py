"""Google Sheets and Google Drive: the cells of a sheet range, the files of a Drive folder.

Asset code only sees :class:`GoogleSource`. ``LocalGoogleSource`` reads the same data from files
under ``$PDP_HOME/google`` (a sheet is a CSV, a Drive folder is a folder); ``CloudGoogleSource``
calls the Sheets v4 and Drive v3 APIs with google-api-python-client and a service account.
"""

import csv
import hashlib
import io
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import NamedTuple, Optional

import dagster as dg
from pydantic import PrivateAttr

SCOPES = [
    "https://www.googleapis.com/auth/spreadsheets.readonly",
    "https://www.googleapis.com/auth/drive.readonly",
]
_FOLDER_MIME = "application/vnd.google-apps.folder"


class DriveFile(NamedTuple):
    id: str  # Drive file id; locally the file's path relative to the Drive root
    name: str
    md5: str  # content checksum: the same bytes give the same md5
    size: int


class GoogleSource(dg.ConfigurableResource, ABC):
    """Read-only access to Google Sheets and Google Drive."""

    @abstractmethod
    def sheet_values(self, spreadsheet: str, cell_range: str) -> list[list[str]]:
        """The cells of a range as displayed, one list per row (header first). Trailing empty
        cells and rows may be missing, as in the Sheets API."""

    @abstractmethod
    def list_folder(self, folder: str) -> list[DriveFile]:
        """The files (not subfolders, not trashed) directly in a folder, sorted by name."""

    @abstractmethod
    def download(self, file: DriveFile) -> bytes: ...

    @abstractmethod
    def location(self, kind: str, name: str) -> str:
        """Where a sheet (kind ``sheet``) or folder (kind ``folder``) lives, for the UI."""


class LocalGoogleSource(GoogleSource):
    """Sheets as ``<root>/sheets/<spreadsheet>.csv`` (the range is ignored: the file is the
    sheet), Drive folders as ``<root>/drive/<folder>/``. ``root`` is ``$PDP_HOME/google``."""

    root: str = ".pdp/google"

    def _sheet(self, spreadsheet: str) -> Path:
        return Path(self.root) / "sheets" / f"{spreadsheet}.csv"

    def _folder(self, folder: str) -> Path:
        return Path(self.root) / "drive" / folder

    def sheet_values(self, spreadsheet: str, cell_range: str) -> list[list[str]]:
        path = self._sheet(spreadsheet)
        if not path.is_file():
            raise FileNotFoundError(f"no sheet {path}")
        text = path.read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff")
        return [row for row in csv.reader(io.StringIO(text, newline=""))]

    def list_folder(self, folder: str) -> list[DriveFile]:
        base = self._folder(folder)
        if not base.is_dir():
            raise FileNotFoundError(f"no Drive folder {base}")
        files = []
        for path in sorted(base.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                data = path.read_bytes()
                rel = path.relative_to(Path(self.root) / "drive").as_posix()
                files.append(DriveFile(rel, path.name, hashlib.md5(data).hexdigest(), len(data)))
        return files

    def download(self, file: DriveFile) -> bytes:
        return (Path(self.root) / "drive" / file.id).read_bytes()

    def location(self, kind: str, name: str) -> str:
        return str((self._sheet(name) if kind == "sheet" else self._folder(name)).resolve())


class CloudGoogleSource(GoogleSource):
    """The Sheets and Drive APIs with a service account (share the sheet and the folder with the
    account's e-mail). Give the key as JSON text or as a file path, both through ``EnvVar``.
    The endpoints default to Google's; tests point them at a local server."""

    service_account_json: Optional[str] = None
    service_account_file: Optional[str] = None
    sheets_endpoint: Optional[str] = None  # e.g. http://127.0.0.1:8123/
    drive_endpoint: Optional[str] = None  # the base incl. its path, e.g. http://127.0.0.1:8123/drive/v3/
    num_retries: int = 3  # the client's own retry with backoff on 429/5xx

    _services: dict = PrivateAttr(default_factory=dict)
    _creds = PrivateAttr(default=None)

    def _credentials(self):
        """One credentials object for both services: one token, refreshed when it expires."""
        if self._creds is None:
            self._creds = self._load_credentials()
        return self._creds

    def _load_credentials(self):
        from google.oauth2 import service_account

        if self.service_account_json:
            info = json.loads(self.service_account_json)
        elif self.service_account_file:
            info = json.loads(Path(self.service_account_file).read_text())
        else:
            raise dg.DagsterInvariantViolationError(
                "Google needs GOOGLE_SERVICE_ACCOUNT_JSON or GOOGLE_APPLICATION_CREDENTIALS (a service-account key)"
            )
        return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)

    def _service(self, name: str, version: str, endpoint: Optional[str]):
        if name not in self._services:
            from googleapiclient.discovery import build

            self._services[name] = build(
                name,
                version,
                credentials=self._credentials(),
                client_options={"api_endpoint": endpoint} if endpoint else None,
                static_discovery=True,  # the discovery document ships with the client: no fetch
                cache_discovery=False,
            )
        return self._services[name]

    def sheet_values(self, spreadsheet: str, cell_range: str) -> list[list[str]]:
        sheets = self._service("sheets", "v4", self.sheets_endpoint)
        request = sheets.spreadsheets().values().get(
            spreadsheetId=spreadsheet, range=cell_range, valueRenderOption="FORMATTED_VALUE"
        )
        values = request.execute(num_retries=self.num_retries).get("values", [])
        return [[str(cell) for cell in row] for row in values]

    def list_folder(self, folder: str) -> list[DriveFile]:
        drive = self._service("drive", "v3", self.drive_endpoint)
        query = f"'{folder.replace(chr(39), '')}' in parents and trashed = false and mimeType != '{_FOLDER_MIME}'"
        files, token = [], None
        while True:
            page = drive.files().list(
                q=query,
                fields="nextPageToken, files(id, name, md5Checksum, size)",
                pageSize=1000,
                pageToken=token,
                supportsAllDrives=True,
                includeItemsFromAllDrives=True,
            ).execute(num_retries=self.num_retries)
            for f in page.get("files", []):
                files.append(DriveFile(f["id"], f["name"], f.get("md5Checksum", ""), int(f.get("size", 0))))
            token = page.get("nextPageToken")
            if not token:
                return sorted(files, key=lambda f: (f.name, f.id))

    def download(self, file: DriveFile) -> bytes:
        drive = self._service("drive", "v3", self.drive_endpoint)
        return drive.files().get_media(fileId=file.id, supportsAllDrives=True).execute(num_retries=self.num_retries)

    def location(self, kind: str, name: str) -> str:
        if kind == "sheet":
            return f"https://docs.google.com/spreadsheets/d/{name}"
        return f"https://drive.google.com/drive/folders/{name}"
