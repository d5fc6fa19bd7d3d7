"""Append-only, checksummed segment logs for predictions and feedback labels."""
