"""Evaluation: metrics, fairness gaps, robustness, latency, gates, champion vs challenger."""
