"""The segments floor: per-segment reductions of the prediction log (digests and their
store, the label join, the rollup of a window, the dashboard's time series). Built on
``monitor.stats``; knows nothing of SLOs, alerts or the report."""
