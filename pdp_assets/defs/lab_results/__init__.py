"""Public-health lab results: landing CSVs -> validation -> quarantine + weekly Parquet lake."""
