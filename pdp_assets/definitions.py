"""The code location: everything under ``pdp_assets/defs/``, loaded by Dagster's autoloader.

Each source folder there holds its assets, checks and triggers; ``defs/resources.py`` binds the
local or cloud resources for all of them.
"""

import importlib
from pathlib import Path

import dagster as dg


def build_definitions() -> dg.Definitions:
    """The definitions, with resources chosen from the environment as it is now."""
    from pdp_assets.defs.warehouse.assets import CONFIG
    from pdp_assets.lib.warehouse.config import check_sources, config_path

    defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    check_sources(CONFIG, materializable_keys(defs), str(config_path()))
    return defs


def materializable_keys(defs: dg.Definitions) -> set[str]:
    """The keys ('/'-joined) of the assets the definitions materialize (not external ones)."""
    graph = defs.resolve_asset_graph()
    return {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}



def source_definitions(source: str) -> dg.Definitions:
    """One source folder's definitions (``lab_results``, ``health``, ``retail``, ``warehouse``),
    without resources: for tests and benchmarks that bind their own."""
    return dg.load_definitions_from_package_module(importlib.import_module(f"pdp_assets.defs.{source}"))


defs = build_definitions()
