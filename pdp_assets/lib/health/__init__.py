"""Health telemetry: normalising the Google exports, their schemas and the weekly store."""
