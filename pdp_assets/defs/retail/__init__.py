"""Retail medallion on Spark: bronze (raw), silver (clean, enriched), gold (weekly analytics)."""
