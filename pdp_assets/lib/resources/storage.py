"""Blob storage: containers of named blobs, on local disk or in Azure Blob Storage.

Asset code only sees :class:`BlobStorage`. Every write replaces a blob atomically (temp file +
rename locally, one committed put in Azure), so a reader never sees half a file.
"""

import ctypes
import datetime as dt
import os
import tempfile
import urllib.parse
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator, Mapping, NamedTuple, Optional

import dagster as dg
from pydantic import PrivateAttr


class BlobInfo(NamedTuple):
    name: str
    etag: str  # changes whenever the content is replaced
    size: int
    last_modified: dt.datetime


class BlobStorage(dg.ConfigurableResource, ABC):
    """Containers of blobs. Names use ``/`` as the folder separator."""

    @abstractmethod
    def list_blobs(self, container: str, prefix: str = "") -> list[BlobInfo]:
        """Blobs whose name starts with ``prefix``, sorted by name."""

    @abstractmethod
    def info(self, container: str, name: str) -> Optional[BlobInfo]:
        """The blob's properties, or None when it does not exist."""

    @abstractmethod
    def read(self, container: str, name: str) -> bytes: ...

    @abstractmethod
    def write(self, container: str, name: str, data: bytes) -> None:
        """Create or atomically replace a blob."""

    @property
    def parallel_requests(self) -> int:
        """How many reads and listings to keep in flight when working through many blobs: a
        network store waits on each call; a local disk answers at once, and threads would only
        contend for the GIL."""
        return 1

    def write_many(self, container: str, blobs: Mapping[str, bytes]) -> None:
        """Write several blobs, each created or replaced atomically as by :meth:`write`; all are
        durable when this returns."""
        with ThreadPoolExecutor(max_workers=self.parallel_requests) as pool:
            list(pool.map(lambda item: self.write(container, *item), blobs.items()))

    @abstractmethod
    def create(self, container: str, name: str, data: bytes) -> bool:
        """Write a blob only if none of that name exists, atomically: True if this call created
        it, False if it was there already (someone else's write won)."""

    @abstractmethod
    def delete(self, container: str, name: str, etag: Optional[str] = None) -> bool:
        """Delete a blob; with ``etag``, only if it still has that etag. True if deleted."""

    @abstractmethod
    def location(self, container: str, name: str = "") -> str:
        """Where a blob lives, for logs and UI metadata."""

    def exists(self, container: str, name: str) -> bool:
        return self.info(container, name) is not None


def _check_name(name: str) -> None:
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in name.split("/")):
        raise ValueError(f"invalid blob name {name!r}")


def _in_progress(file_name: str) -> bool:
    """A write's temp file (``_temp_file``): not a blob yet. Other names starting with '.' are blobs."""
    return file_name.startswith(".") and file_name.endswith(".tmp")


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


try:  # syncfs(2): Linux only, and not in the os module
    _syncfs = ctypes.CDLL(None, use_errno=True).syncfs
except (AttributeError, OSError, TypeError):
    _syncfs = None


def _make_durable(paths: Iterable[str], folder: Path) -> None:
    """Put ``paths`` (files or folders, all under ``folder``) on disk. On Linux one syncfs(2) of
    their file system does it for the whole batch: in 8 alternating rounds of the 1 M-row lab
    ingest it beat an fsync per file every time (docs/PERFORMANCE.md). It also writes whatever
    else is unwritten on that file system, so another process writing a lot makes it wait longer.
    Elsewhere every path's fsync, all in flight at once so their waits overlap."""
    if _syncfs is None:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(_fsync, paths))
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        if _syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(folder))
    finally:
        os.close(fd)


class LocalBlobStorage(BlobStorage):
    """Containers are folders under ``root`` (``$PDP_HOME``): ``root/<container>/<blob name>``."""

    root: str = ".pdp"

    def _path(self, container: str, name: Optional[str] = None) -> Path:
        if name is None:
            return Path(self.root) / container
        _check_name(name)
        return Path(self.root) / container / name

    def _folders(self, paths: Iterable[Path]) -> Iterator[str]:
        """The folders whose entries writing ``paths`` changed, each once: each path's folder, and
        every folder above it up to the root, as any of them may have been made for it. A rename, a
        removal or a new folder is on disk only once the folder holding its entry is synced. Lazy:
        a batch synced by syncfs never walks its paths."""
        root, seen = Path(self.root), set()
        for path in paths:
            for folder in path.parents:
                if folder in seen:
                    break  # and so is every folder above it
                seen.add(folder)
                yield str(folder)
                if folder == root:
                    break

    @staticmethod
    def _info(name: str, path: str) -> BlobInfo:
        st = os.stat(path)
        return BlobInfo(
            name=name,
            etag=f"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}",
            size=st.st_size,
            last_modified=dt.datetime.fromtimestamp(st.st_mtime, tz=dt.timezone.utc),
        )

    def list_blobs(self, container: str, prefix: str = "") -> list[BlobInfo]:
        base = str(self._path(container))
        # Walk only the folder the prefix names: listing a week must not scan the whole lake.
        # Strings, not Path objects: a lake rebuild lists each week it touches twice.
        folder, _, _ = prefix.rpartition("/")
        found = []
        for dirpath, dirnames, filenames in os.walk(os.path.join(base, folder) if folder else base):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = os.path.relpath(dirpath, base).replace(os.sep, "/")
            for f in filenames:
                name = f if rel_dir == "." else f"{rel_dir}/{f}"
                if _in_progress(f) or not name.startswith(prefix):
                    continue
                try:
                    found.append(self._info(name, os.path.join(dirpath, f)))
                except FileNotFoundError:  # deleted while listing
                    pass
        return sorted(found)

    def info(self, container: str, name: str) -> Optional[BlobInfo]:
        path = self._path(container, name)
        return self._info(name, str(path)) if path.is_file() else None

    def read(self, container: str, name: str) -> bytes:
        path = self._path(container, name)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"no blob {self.location(container, name)}") from None

    def write(self, container: str, name: str, data: bytes) -> None:
        self._put(container, name, data, replace=True)

    def create(self, container: str, name: str, data: bytes) -> bool:
        return self._put(container, name, data, replace=False)

    def write_many(self, container: str, blobs: Mapping[str, bytes]) -> None:
        # Every temp file, then all made durable at once, then the renames, made durable too: a
        # reader sees each blob old or new, every new one is on disk before any replaces an old
        # one, and all are in place on disk when this returns.
        if not blobs:
            return
        temps: list[tuple[str, Path]] = []
        try:
            for name, data in blobs.items():
                path = self._path(container, name)
                temps.append((self._temp_file(path, data, sync=False), path))
            _make_durable([tmp for tmp, _ in temps], self._path(container))
            for tmp, path in temps:
                os.replace(tmp, path)
            temps.clear()  # every temp file is in place: none is left to remove
            _make_durable(self._folders(self._path(container, name) for name in blobs), self._path(container))
        finally:
            for tmp, _ in temps:
                Path(tmp).unlink(missing_ok=True)

    @staticmethod
    def _temp_file(path: Path, data: bytes, sync: bool) -> str:
        """``data`` in a hidden temp file beside ``path`` (listings skip it), on disk if ``sync``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # Named after the blob for whoever looks, cut so that a name as long as the disk allows fits.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:200]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return tmp

    def _put(self, container: str, name: str, data: bytes, replace: bool) -> bool:
        """A durable temp file moved into place, its new entry durable too: replacing (rename), or
        only if the name is free (a hard link fails atomically when it exists)."""
        path = self._path(container, name)
        tmp = self._temp_file(path, data, sync=True)
        try:
            if replace:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    return False
            for folder in self._folders([path]):
                _fsync(folder)
            return True
        finally:
            Path(tmp).unlink(missing_ok=True)

    def delete(self, container: str, name: str, etag: Optional[str] = None) -> bool:
        path = self._path(container, name)
        if etag is not None:
            current = self.info(container, name)
            if current is None or current.etag != etag:
                return False
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync(str(path.parent))  # the removal on disk, as a write's rename is
        return True

    def location(self, container: str, name: str = "") -> str:
        return str((Path(self.root) / container / name).resolve())  # name may be "" (the container)


class AzureBlobStorage(BlobStorage):
    """Azure Blob Storage: a connection string, or an account URL with DefaultAzureCredential.

    Uses the Blob API only (works against Azurite, which has no ADLS2/dfs endpoint).
    """

    connection_string: Optional[str] = None
    account_url: Optional[str] = None

    _client = PrivateAttr(default=None)
    _known_containers: set = PrivateAttr(default_factory=set)

    def _service(self):
        if self._client is None:
            from azure.storage.blob import BlobServiceClient

            # The SDK's default backoff starts long and grows fast, so a command stays silent for a
            # long while before it can say the account is unreachable: retry as often, sooner.
            retry = {"retry_total": 3, "retry_connect": 2, "initial_backoff": 1, "increment_base": 2}
            if self.connection_string:
                self._client = BlobServiceClient.from_connection_string(self.connection_string, **retry)
            elif self.account_url:
                from azure.identity import DefaultAzureCredential

                self._client = BlobServiceClient(self.account_url, credential=DefaultAzureCredential(), **retry)
            else:
                raise dg.DagsterInvariantViolationError(
                    "Azure storage needs AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT_URL"
                )
        return self._client

    def _container(self, container: str, create: bool = False):
        client = self._service().get_container_client(container)
        if create and container not in self._known_containers:
            from azure.core.exceptions import ResourceExistsError

            try:
                client.create_container()
            except ResourceExistsError:
                pass
            self._known_containers.add(container)
        return client

    @staticmethod
    def _to_info(props) -> BlobInfo:
        # Listing gives etags bare, get_blob_properties quoted: one form, so they compare equal.
        return BlobInfo(props.name, props.etag.strip('"'), props.size, props.last_modified)

    def list_blobs(self, container: str, prefix: str = "") -> list[BlobInfo]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            blobs = self._container(container).list_blobs(name_starts_with=prefix or None)
            return sorted(self._to_info(b) for b in blobs)
        except ResourceNotFoundError:
            return []

    def info(self, container: str, name: str) -> Optional[BlobInfo]:
        from azure.core.exceptions import ResourceNotFoundError

        _check_name(name)
        try:
            return self._to_info(self._container(container).get_blob_client(name).get_blob_properties())
        except ResourceNotFoundError:
            return None

    def read(self, container: str, name: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        _check_name(name)
        try:
            return self._container(container).download_blob(name).readall()
        except ResourceNotFoundError:
            raise FileNotFoundError(f"no blob {self.location(container, name)}") from None

    def write(self, container: str, name: str, data: bytes) -> None:
        _check_name(name)
        # A single put, or staged blocks committed at once: readers see old or new, never half.
        self._container(container, create=True).upload_blob(name, data, overwrite=True)

    @property
    def parallel_requests(self) -> int:
        return 8

    def create(self, container: str, name: str, data: bytes) -> bool:
        from azure.core.exceptions import ResourceExistsError

        _check_name(name)
        try:  # the service refuses the put if the blob exists (If-None-Match: *)
            self._container(container, create=True).upload_blob(name, data, overwrite=False)
        except ResourceExistsError:
            return False
        return True

    def delete(self, container: str, name: str, etag: Optional[str] = None) -> bool:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        _check_name(name)
        kwargs = {"etag": etag, "match_condition": MatchConditions.IfNotModified} if etag else {}
        try:
            self._container(container).delete_blob(name, **kwargs)
        except (ResourceNotFoundError, ResourceModifiedError):
            return False
        return True

    def location(self, container: str, name: str = "") -> str:
        # The client's URL carries a SAS token when the connection string has one: never shown.
        account = urllib.parse.urlsplit(self._service().url)._replace(query="", fragment="").geturl()
        return f"{account.rstrip('/')}/{container}/{name}"
