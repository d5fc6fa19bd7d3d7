"""Canary, shadow and blue-green rollouts: gates, state, the controller loop."""
