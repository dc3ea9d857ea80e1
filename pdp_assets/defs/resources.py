"""The resources of every source, chosen here and only here.

Every external system has a local implementation (the default: no service needed, data under
``$PDP_HOME``) and a cloud one. ``PDP_ENV=cloud`` switches all systems to cloud at once; a
system's own variable overrides that for that system alone:

==================  ===================  ==============================================
system              variable             values (local first)
==================  ===================  ==============================================
blob storage        ``PDP_STORAGE``      ``local`` | ``azure``
Google Sheets/Drive ``PDP_GOOGLE``       ``local`` | ``google``
Spark               ``PDP_SPARK``        ``local`` | ``cluster``
warehouse           ``PDP_WAREHOUSE``    ``local`` (fakesnow) | ``snowflake``
==================  ===================  ==============================================

Secrets are read by Dagster at run time through ``EnvVar``, never here.
"""

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from pdp_assets.lib.resources.storage import AzureBlobStorage, BlobStorage, LocalBlobStorage

if TYPE_CHECKING:  # the Spark, Snowflake and Google clients load only when the code location does
    from pdp_assets.lib.resources.google import GoogleSource
    from pdp_assets.lib.resources.spark import SparkResource
    from pdp_assets.lib.resources.warehouse import Warehouse


def pdp_home() -> Path:
    return Path(os.environ.get("PDP_HOME", ".pdp")).resolve()


def _choice(system: str, local: str, cloud: str) -> str:
    default = cloud if os.environ.get("PDP_ENV", "local") == "cloud" else local
    choice = os.environ.get(f"PDP_{system}", default).lower()
    if choice not in (local, cloud):
        raise dg.DagsterInvariantViolationError(f"PDP_{system}={choice!r}: use {local!r} or {cloud!r}")
    return choice


def _optional_env(name: str):
    """An ``EnvVar`` when the variable is set, else None (the field keeps its default)."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def storage_resource() -> BlobStorage:
    if _choice("STORAGE", "local", "azure") == "azure":
        if os.environ.get("AZURE_STORAGE_ACCOUNT_URL"):
            return AzureBlobStorage(account_url=dg.EnvVar("AZURE_STORAGE_ACCOUNT_URL"))
        return AzureBlobStorage(connection_string=dg.EnvVar("AZURE_STORAGE_CONNECTION_STRING"))
    return LocalBlobStorage(root=str(pdp_home()))


def google_resource() -> "GoogleSource":
    from pdp_assets.lib.resources.google import CloudGoogleSource, LocalGoogleSource

    if _choice("GOOGLE", "local", "google") == "google":
        if os.environ.get("GOOGLE_SERVICE_ACCOUNT_JSON"):
            return CloudGoogleSource(service_account_json=dg.EnvVar("GOOGLE_SERVICE_ACCOUNT_JSON"))
        return CloudGoogleSource(service_account_file=dg.EnvVar("GOOGLE_APPLICATION_CREDENTIALS"))
    return LocalGoogleSource(root=str(pdp_home() / "google"))


def spark_resource() -> "SparkResource":
    from pdp_assets.lib.resources.spark import ClusterSpark, LocalSpark

    conf = json.loads(os.environ.get("PDP_SPARK_CONF", "{}"))  # extra Spark config, JSON object
    if _choice("SPARK", "local", "cluster") == "cluster":
        return ClusterSpark(
            master=os.environ.get("PDP_SPARK_MASTER"),
            remote=os.environ.get("PDP_SPARK_REMOTE"),
            lake_url=dg.EnvVar("PDP_LAKE_URL"),
            storage_account_key=_optional_env("AZURE_STORAGE_ACCOUNT_KEY"),
            spark_config=conf,
        )
    return LocalSpark(root=str(pdp_home()), spark_config=conf)


def warehouse_resource() -> "Warehouse":
    from pdp_assets.lib.resources.warehouse import LocalWarehouse, SnowflakeWarehouse

    if _choice("WAREHOUSE", "local", "snowflake") == "snowflake":
        optional = ("password", "private_key_path", "role", "warehouse")
        return SnowflakeWarehouse(
            account=dg.EnvVar("SNOWFLAKE_ACCOUNT"),
            user=dg.EnvVar("SNOWFLAKE_USER"),
            database=os.environ.get("SNOWFLAKE_DATABASE", "PDP"),
            schema_name=os.environ.get("SNOWFLAKE_SCHEMA", "WAREHOUSE"),
            **{f: v for f in optional if (v := _optional_env(f"SNOWFLAKE_{f.upper()}"))},
        )
    return LocalWarehouse(db_path=str(pdp_home() / "warehouse"))


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "storage": storage_resource(),
            "google": google_resource(),
            "spark": spark_resource(),
            "warehouse": warehouse_resource(),
        }
    )
