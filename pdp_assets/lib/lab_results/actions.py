"""What operators do to the lab files, recorded with who did it and why: one CSV per action,
``logs/action_<action>_<id>.csv`` (logged_at, action, file, by, reason, details).

A file waiting for the pipeline (an upload in the landing zone, a deletion request) can be
withdrawn by an operator until a run takes it, never after. Both sides *create* the same claim,
``logs/claims/<container>/<version id>.json``, and creating a blob that exists fails: exactly one
wins, whatever the timing, and a crash on either side leaves a claim that says who.
"""

import datetime as dt
import getpass
import json
from pathlib import PurePosixPath
from typing import Optional

import polars as pl

from pdp_assets.lib.lab_results import lake
from pdp_assets.lib.resources.storage import BlobStorage

UPLOAD, FILE_REQUEST = "upload", "file_deletion_request"
REMOVE_UPLOAD, CANCEL_REQUEST = "remove_upload", "cancel_deletion_request"
REINGEST, DISCARD_QUARANTINE = "reingest_quarantine", "discard_quarantine"
WITHDRAWALS = {lake.LANDING: REMOVE_UPLOAD, lake.DELETION_REQUESTS: CANCEL_REQUEST}
FILED = {lake.LANDING: UPLOAD, lake.DELETION_REQUESTS: FILE_REQUEST}  # how a file came to wait there
UNKNOWN = "unknown (not filed with pdp or the console)"


class Taken(Exception):
    """A run has taken the file: it can no longer be withdrawn."""


def os_user() -> str:
    """Who runs this `pdp` command: the operating-system user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "unknown"


def _now() -> str:  # to the microsecond: the log is ordered by it
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _shown(at: str) -> str:
    return f"{at[:19].replace('T', ' ')} UTC"


def _record_blob(action: str, id_: str) -> str:
    return f"action_{action}_{PurePosixPath(id_).stem}.csv"


def record(storage: BlobStorage, action: str, file: str, by: str, reason: str = "", details: str = "",
           id_: Optional[str] = None, logged_at: Optional[str] = None) -> str:
    """Write one action's record (under a name fixed by the action and ``id_``, by default the file:
    doing it again replaces it rather than adding a second)."""
    blob = _record_blob(action, id_ or file)
    row = {"logged_at": logged_at or _now(), "action": action, "file": file, "by": by, "reason": reason,
           "details": details}
    storage.write(lake.LOGS, blob, lake.to_csv(pl.DataFrame([row])))
    return blob


def filed_by(storage: BlobStorage, action: str, file: str) -> str:
    """Who uploaded or filed ``file`` (its UPLOAD or FILE_REQUEST record)."""
    blob = _record_blob(action, file)
    if not storage.exists(lake.LOGS, blob):
        return UNKNOWN
    return pl.read_csv(storage.read(lake.LOGS, blob), infer_schema=False)["by"][0] or UNKNOWN


def action_log(storage: BlobStorage) -> pl.DataFrame:
    """Every action record, newest first."""
    frames = [pl.read_csv(storage.read(lake.LOGS, b.name), infer_schema=False)
              for b in storage.list_blobs(lake.LOGS, "action_") if b.name.endswith(".csv")]
    if not frames:
        return pl.DataFrame(schema={c: pl.String for c in ("logged_at", "action", "file", "by", "reason", "details")})
    return pl.concat(frames, how="diagonal_relaxed").sort("logged_at", descending=True)


# --- withdrawing a waiting file, or taking it for a run ---------------------------------------


def _claim_blob(container: str, uid: str) -> str:
    return f"claims/{container}/{uid}.json"


def _claim(storage: BlobStorage, container: str, uid: str, claim: dict) -> dict:
    """Create the claim on this version of the file, or read the one made first: the winner's."""
    blob = _claim_blob(container, uid)
    if storage.create(lake.LOGS, blob, json.dumps(claim).encode()):
        return claim
    return json.loads(storage.read(lake.LOGS, blob))


def take_for_run(storage: BlobStorage, container: str, name: str, etag: str) -> Optional[dict]:
    """Claim a waiting file (this version of it) for the run about to process it. None: the run goes
    on (this call or an earlier attempt of it took the file). Else the withdrawal that came first,
    now finished: the run must do nothing with the file."""
    uid = lake.upload_id(name, etag)
    claim = _claim(storage, container, uid, {"taken_by": "run", "at": _now(), "file": name, "etag": etag})
    if claim["taken_by"] == "run":
        return None
    _finish_withdrawal(storage, container, uid, claim)
    return claim


def withdrawal(storage: BlobStorage, container: str, uid: str) -> Optional[dict]:
    """The withdrawal of file version ``uid``, if one took it (a run finding its file gone asks)."""
    blob = _claim_blob(container, uid)
    claim = json.loads(storage.read(lake.LOGS, blob)) if storage.exists(lake.LOGS, blob) else None
    return claim if claim and claim["taken_by"] != "run" else None


def withdraw(storage: BlobStorage, container: str, name: str, by: str, reason: str) -> dict:
    """Take back a file before any run takes it (an upload removed, a deletion request cancelled).
    Raises FileNotFoundError when it is not waiting, Taken when a run has it."""
    if not reason.strip():
        raise ValueError("give a reason: it is kept in the action log")
    info = storage.info(container, name)
    if info is None:
        raise FileNotFoundError(f"no file {name!r} is waiting in {storage.location(container)}")
    uid = lake.upload_id(name, info.etag)
    claim = _claim(storage, container, uid, {"taken_by": WITHDRAWALS[container], "at": _now(), "file": name,
                                             "etag": info.etag, "by": by, "reason": reason.strip()})
    if claim["taken_by"] == "run":
        raise Taken(f"{name} was taken by a run at {_shown(claim['at'])} and can no longer be withdrawn; once it is "
                    "processed, discard its quarantine file or file a deletion request for its records")
    _finish_withdrawal(storage, container, uid, claim)
    return claim


def release(storage: BlobStorage, container: str, uid: str) -> None:
    """Let go of a file a run took but left waiting (a rejected deletion request, kept for a person to
    fix): it can be withdrawn again."""
    storage.delete(lake.LOGS, _claim_blob(container, uid))


def describe_withdrawal(claim: dict) -> str:
    verb = "removed from the landing zone" if claim["taken_by"] == REMOVE_UPLOAD else "cancelled"
    return f"{verb} by {claim['by']} at {_shown(claim['at'])} before any run took it ({claim['reason']})"


def _finish_withdrawal(storage: BlobStorage, container: str, uid: str, claim: dict) -> None:
    # Record first, then delete: both are repeated safely by whoever finds the claim unfinished.
    record(storage, claim["taken_by"], claim["file"], claim["by"], claim["reason"], id_=uid, logged_at=claim["at"])
    storage.delete(container, claim["file"], etag=claim["etag"])
