"""One blob-storage contract, run against local folders and a real Azurite blob server; and the
lab pipeline end to end on Azurite, through its sensors and jobs."""

import datetime as dt
import io
import sys
import urllib.parse
import uuid

import dagster as dg
import polars as pl
import pytest

from pdp_assets.definitions import build_definitions
from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.resources import storage as storage_module
from pdp_assets.lib.resources.storage import AzureBlobStorage, BlobStorage, LocalBlobStorage
from pdp_assets.ops.runner import evaluate_and_run
from pdp_assets_tests.conftest import csv_bytes
from pdp_assets_tests.servers import start_azurite, stop


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> str:
    """One Azurite blob server for the test session; its connection string."""
    process, connection_string = start_azurite(tmp_path_factory.mktemp("azurite"))
    try:
        yield connection_string
    finally:
        stop(process)


@pytest.fixture(params=["local", pytest.param("azure", marks=pytest.mark.slow)])
def blobs(request, tmp_path) -> BlobStorage:
    if request.param == "local":
        return LocalBlobStorage(root=str(tmp_path / "blobs"))
    return AzureBlobStorage(connection_string=request.getfixturevalue("azurite"))


@pytest.fixture
def container() -> str:
    """A fresh container name (Azurite is shared by the whole session)."""
    return f"t-{uuid.uuid4().hex[:16]}"


def names(infos) -> list[str]:
    return [b.name for b in infos]


def test_write_read_and_overwrite(blobs, container):
    blobs.write(container, "a/b.csv", b"one")
    assert blobs.read(container, "a/b.csv") == b"one"
    blobs.write(container, "a/b.csv", b"second version")
    assert blobs.read(container, "a/b.csv") == b"second version"
    assert blobs.exists(container, "a/b.csv")
    assert names(blobs.list_blobs(container)) == ["a/b.csv"]  # replaced, not added


def test_a_name_starting_with_a_dot_is_a_blob_like_any_other(blobs, container):
    blobs.write(container, ".partner.csv", b"x")  # dropped in by another tool: listed, so it is processed
    assert names(blobs.list_blobs(container)) == [".partner.csv"] and blobs.read(container, ".partner.csv") == b"x"


def test_list_is_sorted_and_filtered_by_prefix(blobs, container):
    for name in ["c.txt", "a/sub/3.txt", "a0.txt", "b/2.txt", "a/1.txt"]:
        blobs.write(container, name, name.encode())
    assert names(blobs.list_blobs(container)) == ["a/1.txt", "a/sub/3.txt", "a0.txt", "b/2.txt", "c.txt"]
    assert names(blobs.list_blobs(container, "a/")) == ["a/1.txt", "a/sub/3.txt"]
    assert names(blobs.list_blobs(container, "a")) == ["a/1.txt", "a/sub/3.txt", "a0.txt"]
    assert names(blobs.list_blobs(container, "a/s")) == ["a/sub/3.txt"]
    assert blobs.list_blobs(container, "zzz") == []
    assert blobs.list_blobs(f"{container}-missing") == []
    (info,) = blobs.list_blobs(container, "b/")
    assert info.size == len(b"b/2.txt")


def test_info_describes_a_blob_and_is_none_when_missing(blobs, container):
    assert blobs.info(container, "x.csv") is None
    assert blobs.info(f"{container}-missing", "x.csv") is None
    assert not blobs.exists(container, "x.csv")
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    blobs.write(container, "x.csv", b"12345")
    info = blobs.info(container, "x.csv")
    assert (info.name, info.size) == ("x.csv", 5)
    assert info.etag and info.last_modified.tzinfo is not None and info.last_modified > before


def test_etag_changes_on_overwrite(blobs, container):
    blobs.write(container, "x.csv", b"same size")
    first = blobs.info(container, "x.csv").etag
    blobs.write(container, "x.csv", b"same size")  # even the same bytes are a new version
    assert blobs.info(container, "x.csv").etag != first


def test_listing_and_info_give_the_same_etag(blobs, container):
    blobs.write(container, "x.csv", b"v1")
    [listed] = blobs.list_blobs(container)
    assert listed.etag == blobs.info(container, "x.csv").etag
    assert blobs.delete(container, "x.csv", etag=listed.etag) is True  # a listed etag is usable as is


def test_delete_honours_the_etag(blobs, container):
    blobs.write(container, "x.csv", b"v1")
    stale = blobs.info(container, "x.csv").etag
    blobs.write(container, "x.csv", b"v2")
    assert blobs.delete(container, "x.csv", etag=stale) is False
    assert blobs.read(container, "x.csv") == b"v2"  # a newer version is never deleted
    current = blobs.info(container, "x.csv").etag
    assert blobs.delete(container, "x.csv", etag=current) is True
    assert blobs.info(container, "x.csv") is None


def test_create_writes_only_a_new_name(blobs, container):
    assert blobs.create(container, "claim.csv", b"first") is True
    assert blobs.create(container, "claim.csv", b"second") is False
    assert blobs.read(container, "claim.csv") == b"first"  # the first write stands
    assert [b.name for b in blobs.list_blobs(container)] == ["claim.csv"]  # no temp file left


def test_write_many_writes_and_replaces_every_blob(blobs, container):
    blobs.write(container, "year=2024/week=01/data.parquet", b"old")
    batch = {f"year=2024/week={w:02d}/data.parquet": f"week {w}".encode() for w in range(1, 40)}
    blobs.write_many(container, batch)
    assert {b.name: blobs.read(container, b.name) for b in blobs.list_blobs(container)} == batch  # no temp file left
    blobs.write_many(container, {})  # nothing to write: no error


class DiskSyncs:
    """Records each fsync and syncfs of LocalBlobStorage, with the blobs in place at that moment."""

    def __init__(self, local: LocalBlobStorage, monkeypatch, syncfs: bool):
        self.local, self.calls = local, []  # (what was synced, blob names listed at that moment)
        real_fsync, real_syncfs = storage_module._fsync, storage_module._syncfs
        if syncfs:
            assert real_syncfs is not None

        def fsync(path: str) -> None:
            self.calls.append((path, self.in_place()))
            real_fsync(path)

        def syncfs_(fd: int) -> int:
            self.calls.append(("syncfs", self.in_place()))
            return real_syncfs(fd)

        monkeypatch.setattr(storage_module, "_fsync", fsync)
        monkeypatch.setattr(storage_module, "_syncfs", syncfs_ if syncfs else None)

    def in_place(self) -> set[str]:
        return {b.name for b in self.local.list_blobs("data")}


def _folder_chain(root, blob: str) -> set[str]:
    """The folders from a blob's own up to the storage root: all hold entries a first write made."""
    path = root / "data" / blob
    return {str(p) for p in path.parents if p.is_relative_to(root)}


@pytest.mark.parametrize("syncfs", [True, False], ids=["syncfs", "fsync each"])
def test_local_write_many_makes_the_batch_and_its_renames_durable(tmp_path, monkeypatch, syncfs):
    """Linux puts a batch on disk with one syncfs, macOS (no syncfs) with an fsync per temp file;
    either way all are on disk before any blob is renamed into place, and after the renames their
    folders' new entries are synced too, so the batch is on disk when write_many returns."""
    if syncfs and sys.platform != "linux":
        pytest.skip("syncfs(2) is Linux only")
    local = LocalBlobStorage(root=str(tmp_path))
    syncs = DiskSyncs(local, monkeypatch, syncfs)
    batch = {f"year=2024/week={w:02d}/data.parquet": f"week {w}".encode() for w in range(1, 6)}
    local.write_many("data", batch)

    assert {b.name: local.read("data", b.name) for b in local.list_blobs("data")} == batch  # no temp file left
    before = [what for what, in_place in syncs.calls if not in_place]
    after = [what for what, in_place in syncs.calls if in_place == set(batch)]
    assert len(before) + len(after) == len(syncs.calls)  # nothing synced with the batch half in place
    if syncfs:
        assert before == after == ["syncfs"]
    else:
        assert len(before) == len(batch) and all("/." in path and path.endswith(".tmp") for path in before)
        assert set(after) == set().union(*(_folder_chain(tmp_path, name) for name in batch))


def test_local_write_create_and_delete_sync_the_folders_they_change(tmp_path, monkeypatch):
    """Once a single write has renamed its (fsynced) temp file into place, it fsyncs every folder
    up to the root, as any of them may be new; create does the same after its link; delete fsyncs
    the folder it removed the blob from."""
    local = LocalBlobStorage(root=str(tmp_path))
    syncs = DiskSyncs(local, monkeypatch, syncfs=False)
    name = "year=2024/week=01/data.parquet"
    chain = _folder_chain(tmp_path, name)
    assert len(chain) == 4  # week, year, container, root

    local.write("data", name, b"v1")
    assert {what for what, in_place in syncs.calls if in_place == {name}} == chain and len(syncs.calls) == len(chain)

    syncs.calls.clear()
    assert local.create("data", "year=2024/week=02/data.parquet", b"v1") is True
    assert {what for what, _ in syncs.calls} == _folder_chain(tmp_path, "year=2024/week=02/data.parquet")

    syncs.calls.clear()
    assert local.delete("data", name) is True
    assert syncs.calls == [(str(tmp_path / "data" / "year=2024" / "week=01"), {"year=2024/week=02/data.parquet"})]


def test_delete_of_a_missing_blob_returns_false(blobs, container):
    assert blobs.delete(container, "nothing.csv") is False
    assert blobs.delete(f"{container}-missing", "nothing.csv") is False
    blobs.write(container, "x.csv", b"v1")
    assert blobs.delete(container, "x.csv") is True
    assert blobs.delete(container, "x.csv") is False
    assert blobs.delete(container, "x.csv", etag="0x8D0000000000000") is False


def test_reading_a_missing_blob_says_where(blobs, container):
    blobs.write(container, "present.csv", b"x")  # the container exists; the blob does not
    for where in [(container, "missing.csv"), (f"{container}-missing", "missing.csv")]:
        with pytest.raises(FileNotFoundError) as raised:
            blobs.read(*where)
        assert blobs.location(*where) in str(raised.value)
        assert "missing.csv" in str(raised.value)


@pytest.mark.parametrize("bad", ["", "../x", "/abs", "a//b", "a/../b", "a/./b", "a/"])
def test_invalid_names_are_rejected(blobs, container, bad):
    with pytest.raises(ValueError, match="invalid blob name"):
        blobs.write(container, bad, b"x")
    assert blobs.list_blobs(container) == []


@pytest.mark.parametrize("bad", ["", "../x", "/abs", "a//b", "a/../b"])
def test_invalid_names_are_rejected_when_reading_and_deleting(blobs, container, bad):
    blobs.write(container, "a/b", b"x")
    for operation in (blobs.read, blobs.info, blobs.delete):
        with pytest.raises(ValueError, match="invalid blob name"):
            operation(container, bad)
    assert names(blobs.list_blobs(container)) == ["a/b"]


# ---------------------------------------------------------------------------------------------
# The lab pipeline on Azurite

LAB_CONTAINERS = [lake.LANDING, lake.ARCHIVE, lake.QUARANTINE, lake.DATA, lake.LOGS, lake.DELETION_REQUESTS]


@pytest.fixture
def azure_env(azurite, tmp_path, monkeypatch) -> AzureBlobStorage:
    """PDP_STORAGE=azure against Azurite, with its lab containers empty; PDP_HOME and DAGSTER_HOME
    in tmp. Returns a storage on the same account, for the test's own reads and writes."""
    monkeypatch.setenv("PDP_STORAGE", "azure")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT_URL", raising=False)
    monkeypatch.delenv("PDP_ENV", raising=False)
    monkeypatch.setenv("PDP_HOME", str(tmp_path / "pdp"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "pdp" / "dagster"))
    storage = AzureBlobStorage(connection_string=azurite)
    for container in LAB_CONTAINERS:  # the lab's container names are fixed: start from empty
        for blob in storage.list_blobs(container):
            storage.delete(container, blob.name)
    return storage


@pytest.mark.slow
def test_lab_pipeline_runs_on_azurite(azure_env):
    storage = azure_env
    defs = build_definitions()
    assert isinstance(defs.resources["storage"], AzureBlobStorage)
    upload = csv_bytes(
        "A1,2024-01-01,POS,5",
        "A2,2024-01-03,NEG,0",
        "A3,2024-01-03,Positive,1",  # not a result code
        "A4,2024-01-02,NEG,-1",  # negative viral load
        "A5,2024-01-07,NEG,12",
    )
    storage.write(lake.LANDING, "lab.csv", upload)

    with dg.instance_for_test() as instance:
        summary = evaluate_and_run(defs, instance)
        assert [r.job for r in summary.runs] == ["lab_intake_job", "lab_lake_job"]
        assert not summary.failed, summary.runs

        def latest(asset: str) -> dg.AssetMaterialization:
            return instance.get_latest_materialization_event(dg.AssetKey(asset)).asset_materialization

        intake = latest("lab_valid_rows")
        meta = {k: v.value for k, v in intake.metadata.items()}
        assert (meta["rows_read"], meta["rows_valid"], meta["rows_quarantined"]) == (5, 3, 2)
        # the asset metadata points into Azure, not at a local folder
        assert latest("lab_quarantine").metadata["dagster/uri"].value.startswith(storage.location(lake.QUARANTINE))

    week = lake.lake_blob("2024-01-01")
    assert week == "year=2024/week=01/data.parquet"
    assert names(storage.list_blobs(lake.DATA, "year=")) == [week]
    rows = pl.read_parquet(io.BytesIO(storage.read(lake.DATA, week))).sort("sample_id")
    assert rows.select("sample_id", "result").rows() == [("A1", "POS"), ("A2", "NEG"), ("A5", "NEG")]
    assert rows.filter(pl.col("sample_id") == "A1")["test_date"].item() == dt.date(2024, 1, 1)

    (quarantined,) = storage.list_blobs(lake.QUARANTINE)
    bad = pl.read_csv(io.BytesIO(storage.read(lake.QUARANTINE, quarantined.name)), infer_schema=False)
    assert sorted(bad["sample_id"]) == ["A3", "A4"] and bad["pipeline_error"].str.len_chars().min() > 0

    assert storage.list_blobs(lake.LANDING) == []  # removed, after the outputs were written
    raw = [b.name for b in storage.list_blobs(lake.ARCHIVE, "raw/") if b.name.endswith("/lab.csv")]
    assert len(raw) == 1 and storage.read(lake.ARCHIVE, raw[0]) == upload

    export = pl.read_csv(io.BytesIO(storage.read(lake.DATA, lake.EXPORT_BLOB)), infer_schema=False)
    assert sorted(export["sample_id"]) == ["A1", "A2", "A5"]
    assert storage.list_blobs(lake.LOGS, "execution_")


@pytest.mark.slow
def test_operator_commands_work_on_azure(azure_env, tmp_path):
    """pdp resolves the Azure connection string itself outside a run (EnvVar)."""
    from click.testing import CliRunner

    from pdp_assets.ops.cli import main

    src = tmp_path / "lab.csv"
    src.write_bytes(csv_bytes("A1,2024-01-01,POS,5", "A2,2024-01-01,Positive,1"))
    runner = CliRunner()
    for args in (["upload", str(src)], ["ingest"], ["quarantine", "list"]):
        result = runner.invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
    assert "1 rows" in result.output
    assert [r[0] for r in lake.read_lake(azure_env).rows()] == ["A1"]


@pytest.mark.slow
def test_a_sas_token_never_shows_in_output_logs_or_run_storage(azure_env, azurite, tmp_path, monkeypatch):
    """With a SharedAccessSignature connection string, locations (command output, asset metadata,
    check metadata, logs) name the blob without the token."""
    from azure.storage.blob import AccountSasPermissions, generate_account_sas, ResourceTypes
    from click.testing import CliRunner

    from pdp_assets.ops.cli import main
    from pdp_assets_tests.servers import AZURITE_ACCOUNT, AZURITE_KEY

    sas = generate_account_sas(
        AZURITE_ACCOUNT, AZURITE_KEY, ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True, create=True),
        expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    endpoint = next(p for p in azurite.split(";") if p.startswith("BlobEndpoint="))
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", f"{endpoint};SharedAccessSignature={sas}")
    signature = dict(p.split("=", 1) for p in sas.split("&"))["sig"]
    (tmp_path / "lab.csv").write_bytes(csv_bytes("A1,2024-01-01,POS,5", "A2,2024-01-02,Positive,7"))

    output = ""
    for args in (["upload", str(tmp_path / "lab.csv")], ["ingest"], ["quarantine", "list"], ["export"]):
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        output += result.output
    assert "127.0.0.1" in output and lake.read_lake(azure_env).height == 1  # it did run, on Azurite
    secrets = [signature, urllib.parse.unquote(signature)]
    stored = [p.read_bytes() for p in (tmp_path / "pdp" / "dagster").rglob("*") if p.is_file()]  # run storage, logs
    stored += [azure_env.read(lake.LOGS, b.name) for b in azure_env.list_blobs(lake.LOGS)]
    for secret in secrets:
        assert secret not in output
        assert not [i for i, data in enumerate(stored) if secret.encode() in data]
