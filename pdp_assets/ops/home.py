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


def initialised(resource):
    """A resource's value outside a run (EnvVar fields such as the Azure connection string are
    resolved here). Not ``process_config_and_initialize()``: it opens a throwaway Dagster
    instance that only garbage collection closes, and that late close makes whichever instance
    was current when it opened (perhaps long closed) current again, so later definition loads fail."""
    with resource.process_config_and_initialize_cm() as value:
        return value


def storage():
    """The blob storage the assets use, initialised."""
    from pdp_assets.defs.resources import storage_resource

    return initialised(storage_resource())


def instance():
    import dagster as dg

    dagster_home()
    return dg.DagsterInstance.get()
