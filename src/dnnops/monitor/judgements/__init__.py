"""The judgements floor: what the numbers mean (SLIs, SLO kinds and budgets, burn-rate
alerts, runbooks, the Prometheus rules). Reads ``monitor.segments`` and
``monitor.stats``; ``monitor/report.py`` composes them into one report."""
