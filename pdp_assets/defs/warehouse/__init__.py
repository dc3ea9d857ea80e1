"""Declared incremental loads of weekly lake data into Snowflake (see docs/warehouse.md)."""
