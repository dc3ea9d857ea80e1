"""The code location: everything under ``pdp_assets/defs/``, loaded by Dagster's autoloader.

Each source folder there holds its assets, checks and triggers; ``defs/resources.py`` binds the
local or cloud resources for all of them.
"""

import importlib
from pathlib import Path

import dagster as dg


def build_definitions() -> dg.Definitions:
    """The definitions, with resources chosen from the environment as it is now."""
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)



def source_definitions(source: str) -> dg.Definitions:
    """One source folder's definitions (``lab_results``, ``health``, ``retail``, ``warehouse``),
    without resources: for tests and benchmarks that bind their own."""
    return dg.load_definitions_from_package_module(importlib.import_module(f"pdp_assets.defs.{source}"))


defs = build_definitions()
