"""The metadata store and the artifacts: runs (``runs.py``), model versions, aliases and
the audit log (``versions.py``), leases (``leases.py``), on SQLite or PostgreSQL
(``db.py``, ``migrations/``), with artifacts on a local folder or S3 (``artifacts.py``)."""
