"""Where operator commands find the storage and the Dagster instance the UI uses."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def dagster_home() -> Path:
    """Point DAGSTER_HOME at ``$PDP_HOME/dagster`` (unless set) with the project's dagster.yaml."""
    from pdp_assets.defs.resources import pdp_home

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(pdp_home() / "dagster"))).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and (REPO / "dagster.yaml").exists():
        config.symlink_to(REPO / "dagster.yaml")
    return home


def storage():
    """The blob storage the assets use, initialised (outside a run, EnvVar fields such as the
    Azure connection string are resolved here)."""
    from pdp_assets.defs.resources import storage_resource

    return storage_resource().process_config_and_initialize()


def instance():
    import dagster as dg

    dagster_home()
    return dg.DagsterInstance.get()
