"""Serving: protocol, batching, backends, logs, metrics, the ASGI app."""
