"""The web dashboard: executive, on-call and debug views of an endpoint."""
