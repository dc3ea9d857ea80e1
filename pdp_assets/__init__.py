"""pdp_assets: four data pipelines as Dagster software-defined assets."""

import warnings

import dagster as dg

# Partitioned asset checks and backfill policies are the design's choice (see DESIGN.md); their
# preview/beta notices would otherwise repeat on every load of the code location.
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
warnings.filterwarnings("ignore", category=dg.BetaWarning)
# fakesnow (the local warehouse) notes an extra copy on every Arrow fetch: not actionable here.
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)
