"""Monitoring: SLIs from the logs, drift, quality on delayed labels, SLOs and alerts."""
