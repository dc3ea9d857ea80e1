"""Lab results: reading, validating and storing uploads, the weekly lake and deletion requests."""
