"""Dagster objects only, loaded by ``dg.load_from_defs_folder``: one folder per source, each with
its assets, checks and triggers; ``resources.py`` binds the resources for all of them."""

import warnings

import dagster as dg

# Partitioned asset checks and backfill policies are the design's choice (see DESIGN.md); their
# preview/beta notices would otherwise repeat on every load of the code location.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)
