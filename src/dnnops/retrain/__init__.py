"""Retraining: triggers, the labeled data the server captured, the challenger pipeline."""
