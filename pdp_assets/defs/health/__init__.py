"""Personal health telemetry: blood pressure from a Google Sheet, heart rate and sleep from Mi Band
exports on Google Drive, normalised, validated and merged into daily metrics (docs/health.md)."""
