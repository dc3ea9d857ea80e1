"""How warehouse loads are started: a job per load in loads.yaml."""

from pdp_assets.defs.warehouse.assets import build_load_job, CONFIG

load_jobs = [build_load_job(load) for load in CONFIG.enabled]
