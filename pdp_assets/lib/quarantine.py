"""The columns every quarantine file adds to the rows as they arrived, in the lab and health
pipelines alike: why the row was held back, the file it came from and its row number there."""

ERROR, SOURCE, ROW = "pipeline_error", "source_file", "row_number"
