"""The metadata store (runs now; model versions, aliases and audit later) and artifacts."""
