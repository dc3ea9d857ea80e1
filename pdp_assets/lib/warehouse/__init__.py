"""Warehouse loads: loads.yaml and its model, the SQL the phases run, the drive table."""
