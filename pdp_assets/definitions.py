"""The one Definitions object. Resources are chosen here, and only here.

Every external system has a local implementation (the default: no service needed, data under
``$PDP_HOME``) and a cloud one. ``PDP_ENV=cloud`` switches all systems to cloud at once; a
system's own variable (``PDP_STORAGE=local|azure``) overrides that for that system alone.
Secrets are read by Dagster at run time through ``EnvVar``, never here.
"""

import os
from pathlib import Path

import dagster as dg

from pdp_assets.lab_results import definitions as lab_results
from pdp_assets.resources.storage import AzureBlobStorage, BlobStorage, LocalBlobStorage


def pdp_home() -> Path:
    return Path(os.environ.get("PDP_HOME", ".pdp")).resolve()


def _choice(system: str, local: str, cloud: str) -> str:
    default = cloud if os.environ.get("PDP_ENV", "local") == "cloud" else local
    choice = os.environ.get(f"PDP_{system}", default).lower()
    if choice not in (local, cloud):
        raise dg.DagsterInvariantViolationError(f"PDP_{system}={choice!r}: use {local!r} or {cloud!r}")
    return choice


def storage_resource() -> BlobStorage:
    if _choice("STORAGE", "local", "azure") == "azure":
        if os.environ.get("AZURE_STORAGE_ACCOUNT_URL"):
            return AzureBlobStorage(account_url=dg.EnvVar("AZURE_STORAGE_ACCOUNT_URL"))
        return AzureBlobStorage(connection_string=dg.EnvVar("AZURE_STORAGE_CONNECTION_STRING"))
    return LocalBlobStorage(root=str(pdp_home()))


def build_definitions() -> dg.Definitions:
    """Each source's definitions, merged, with every resource bound here."""
    return dg.Definitions.merge(
        lab_results.defs,
        dg.Definitions(resources={"storage": storage_resource()}),
    )


defs = build_definitions()
