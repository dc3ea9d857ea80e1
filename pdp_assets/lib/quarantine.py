"""The columns every quarantine file adds to the rows as they arrived, in the lab and health
pipelines alike: why the row was held back, the file it came from and its row number there."""

ERROR, SOURCE, ROW = "pipeline_error", "source_file", "row_number"

# A row with more fields than the header keeps the surplus here, as CSV text ("000", "250,000"):
# a re-ingest sends them again after the header's fields, so an unfixed row is quarantined again
# and never stored cut short.
SURPLUS = "surplus_fields"


def shortened(value, limit: int = 60) -> str:
    """A value as a reason or a preview quotes it: at most ``limit`` characters, so one huge cell
    costs no more than a small one in logs, metadata and quarantine files."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"
