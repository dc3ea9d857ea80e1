"""What the console's save rests on, on local folders and on a real Azurite blob server: a save
based on a version of a quarantine file that is no longer there is refused before anything is
written, and a quarantine file is removed only while it is still the version that was fixed."""

import polars as pl
import pytest

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.lab_results.intake import QuarantineChanged, read_quarantine, reingest
from pdp_assets.lib.resources.storage import AzureBlobStorage, LocalBlobStorage
from pdp_assets_tests.servers import start_azurite, stop

QUARANTINED = (b"sample_id,test_date,result,viral_load,pipeline_error,source_file,row_number\n"
               b"A2,2024-01-02,Positive,7,result 'Positive' is not one of POS; NEG; N/A,partner.csv,2\n")
NAME = "partner__0123456789abcdef.csv"


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    """An Azurite of this module's own: the lab containers have fixed names."""
    process, connection_string = start_azurite(tmp_path_factory.mktemp("azurite"))
    try:
        yield connection_string
    finally:
        stop(process)


@pytest.fixture(params=["local", pytest.param("azure", marks=pytest.mark.slow)])
def blobs(request, tmp_path):
    if request.param == "local":
        return LocalBlobStorage(root=str(tmp_path / "pdp"))
    store = AzureBlobStorage(connection_string=request.getfixturevalue("azurite"))
    for container in (lake.LANDING, lake.QUARANTINE):
        for b in store.list_blobs(container):
            store.delete(container, b.name)
    return store


def fixed(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.with_columns(result=pl.lit("POS"))


def test_a_save_on_a_changed_file_is_refused_and_writes_nothing(blobs):
    blobs.write(lake.QUARANTINE, NAME, QUARANTINED)
    rows, etag = read_quarantine(blobs, NAME)
    blobs.write(lake.QUARANTINE, NAME, QUARANTINED)  # rewritten meanwhile (a pipeline re-run): a new etag
    with pytest.raises(QuarantineChanged, match="was changed after you opened it"):
        reingest(blobs, fixed(rows), NAME, "tester", etag=etag)
    assert blobs.list_blobs(lake.LANDING) == [] and blobs.exists(lake.QUARANTINE, NAME)

    rows, etag = read_quarantine(blobs, NAME)  # reloaded: the save goes through
    sent = reingest(blobs, fixed(rows), NAME, "tester", etag=etag)
    assert sent.removed and not blobs.exists(lake.QUARANTINE, NAME)
    landed = pl.read_csv(blobs.read(lake.LANDING, sent.landing_blob), infer_schema=False)
    assert landed.rows() == [("A2", "2024-01-02", "POS", "7")]

    with pytest.raises(QuarantineChanged, match="no longer in quarantine"):  # a second save of that version
        reingest(blobs, fixed(rows), NAME, "tester", etag=etag)


class Passthrough:
    def __init__(self, blobs):
        self.blobs = blobs

    def __getattr__(self, attr):
        return getattr(self.blobs, attr)


class Racing(Passthrough):
    """The storage, where someone else's version of the quarantine file lands right after the
    save's landing file: between the save's etag check and its conditional delete."""

    def create(self, container, name, data):
        created = self.blobs.create(container, name, data)
        self.blobs.write(lake.QUARANTINE, NAME, QUARANTINED + b"A9,2024-01-09,X,1,reason,other.csv,3\n")
        return created


class NotDeletedYet(Passthrough):
    """A save paused after its landing file, before its delete: another save now passes the check."""

    def delete(self, container, name, etag=None):
        return False


def test_the_quarantine_file_is_kept_when_it_changes_while_saving(blobs):
    blobs.write(lake.QUARANTINE, NAME, QUARANTINED)
    rows, etag = read_quarantine(blobs, NAME)
    sent = reingest(Racing(blobs), fixed(rows), NAME, "tester", etag=etag)
    assert not sent.removed  # both versions kept: ours in the landing zone, theirs in quarantine
    assert blobs.exists(lake.LANDING, sent.landing_blob)
    assert b"A9" in blobs.read(lake.QUARANTINE, NAME)


def test_two_saves_of_one_version_at_once_send_only_the_first(blobs):
    blobs.write(lake.QUARANTINE, NAME, QUARANTINED)
    rows, etag = read_quarantine(blobs, NAME)
    first = reingest(NotDeletedYet(blobs), fixed(rows), NAME, "tester", etag=etag)
    with pytest.raises(QuarantineChanged, match="being re-ingested from this same version by someone else"):
        reingest(blobs, rows.with_columns(result=pl.lit("NEG")), NAME, "tester", etag=etag)  # the other person's fix
    assert [b.name for b in blobs.list_blobs(lake.LANDING)] == [first.landing_blob]
    assert b"POS" in blobs.read(lake.LANDING, first.landing_blob)  # the first save's rows, not mixed
    assert blobs.exists(lake.QUARANTINE, NAME)  # the refused person reloads and sees it
