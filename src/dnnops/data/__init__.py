"""Data: sources, schema inference and validation, fingerprints, profiles, preprocessing."""
