"""Benchmarks of what users run, each printing its figures beside the floor (``pdp bench ...``)."""
