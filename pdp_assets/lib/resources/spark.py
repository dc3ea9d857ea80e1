"""Spark: a session and the lake it reads and writes, in local mode or on a cluster.

Asset code only sees :class:`SparkResource`: ``spark.session`` and ``spark.path(...)``. The
session is created by dagster-pyspark's ``LazyPySparkResource`` on first use (``getOrCreate``:
one session per process, shared by every step and check that runs in it).

- :class:`LocalSpark` (the default): ``local[*]`` (every core), no UI, the lake a folder (``$PDP_HOME``).
- :class:`ClusterSpark`: a master URL (``spark://``, ``yarn``, ``k8s://``) or a Spark Connect URL
  (``sc://host:15002``), extra Spark conf, the lake a cloud URL (``abfss://``, ``wasbs://``...).
"""

import os
import sys
from abc import ABC, abstractmethod
from typing import Any, Optional
from urllib.parse import urlparse

import dagster as dg
from dagster_pyspark import LazyPySparkResource
from pydantic import PrivateAttr

# Both modes: timestamps are stored and shown in UTC whatever the machine's zone, and a
# range run's few shuffles stay small (Spark's default of 200 tasks is for big clusters).
BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
}


class SparkResource(dg.ConfigurableResource, ABC):
    """A Spark session and the root of the lake (a local folder or a cloud URL)."""

    app_name: str = "pdp_assets"
    spark_config: dict[str, str] = {}  # any extra Spark conf; wins over the defaults

    _pyspark: Optional[LazyPySparkResource] = PrivateAttr(default=None)

    @abstractmethod
    def session_config(self) -> dict[str, str]:
        """The Spark conf the session is built with."""

    @abstractmethod
    def lake_root(self) -> str:
        """Where the lake starts: a local folder or a URL Spark can write to."""

    @property
    def session(self) -> Any:
        """The process's SparkSession, created on first use."""
        if self._pyspark is None:
            self._pyspark = LazyPySparkResource(spark_config=self.session_config())
        return self._pyspark.spark_session

    def path(self, *parts: str) -> str:
        """A location under the lake root: ``path("retail", "bronze")``."""
        return "/".join([self.lake_root().rstrip("/"), *(p.strip("/") for p in parts)])


class LocalSpark(SparkResource):
    """Spark in this process's machine (``local[*]`` by default: every core), the lake under ``root``."""

    master: str = "local[*]"
    root: str = ""  # empty: $PDP_HOME, default ./.pdp

    def session_config(self) -> dict[str, str]:
        # Python workers (UDFs) must run the interpreter that has this project installed.
        os.environ["PYSPARK_PYTHON"] = sys.executable
        return {
            "spark.master": self.master,
            "spark.app.name": self.app_name,
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.pyspark.python": sys.executable,
            **BASE_CONF,
            **self.spark_config,
        }

    def lake_root(self) -> str:
        return os.path.abspath(self.root or os.environ.get("PDP_HOME", ".pdp"))


class ClusterSpark(SparkResource):
    """A Spark cluster: ``master`` (``spark://host:7077``) or ``remote`` (Spark Connect,
    ``sc://host:15002``), and ``lake_url`` on storage the cluster reaches
    (``abfss://container@account.dfs.core.windows.net/pdp``). ``storage_account_key`` (an
    ``EnvVar``) becomes the Hadoop Azure key for the lake's account; leave it empty when the
    cluster authenticates by itself (managed identity)."""

    master: Optional[str] = None
    remote: Optional[str] = None
    lake_url: str
    storage_account_key: Optional[str] = None

    def session_config(self) -> dict[str, str]:
        if bool(self.master) == bool(self.remote):
            raise dg.DagsterInvariantViolationError("ClusterSpark needs exactly one of master or remote")
        conf = {"spark.app.name": self.app_name, **BASE_CONF}
        conf["spark.remote" if self.remote else "spark.master"] = self.remote or self.master
        if self.storage_account_key:
            host = urlparse(self.lake_url).hostname or ""
            account = host.split(".")[0]
            endpoint = "dfs" if ".dfs." in host else "blob"
            conf[f"spark.hadoop.fs.azure.account.key.{account}.{endpoint}.core.windows.net"] = (
                self.storage_account_key
            )
        return {**conf, **self.spark_config}

    def lake_root(self) -> str:
        return self.lake_url
