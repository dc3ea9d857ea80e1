"""pdp_assets: four data pipelines as Dagster software-defined assets."""

import warnings

import dagster as dg

# Partitioned asset checks and backfill policies are the design's choice (see DESIGN.md); their
# preview/beta notices would otherwise repeat on every load of the code location.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)
