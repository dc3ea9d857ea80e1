"""pdp_assets: four data pipelines as Dagster software-defined assets.

``definitions.py`` is the code location; ``defs/`` holds its Dagster objects, ``lib/`` the pure
code they call, ``ops/`` the ``pdp`` command and the admin console.
"""
