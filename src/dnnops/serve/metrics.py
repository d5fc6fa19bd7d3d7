"""Prometheus metrics of the server: what every SRE already scrapes.

Latency histograms carry each SLO threshold as an exact bucket bound, so "share of
requests under 100 ms" is read off a bucket, not interpolated.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
)

from dnnops.gpu import gpu_readings
from dnnops.monitor.judgements.report_types import EstimatedAccuracy, Report
from dnnops.serve.group import METRICS_ENV

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def latency_buckets(slo_thresholds: Iterable[float]) -> tuple[float, ...]:
    return tuple(sorted({*LATENCY_BUCKETS, *(t for t in slo_thresholds if t > 0)}))


CONTROL_LOOPS = (
    "rollout",
    "monitor",
    "lease",
    "fleet_log",
    "shared_metrics",
    "explanations",
    "loop_lag",
)
"""The server's background loops (``serve/loops.py``): the ``loop`` label's values."""


class ServerMetrics:
    """Every metric of one server. Under ``--workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set
    by the supervisor) each worker writes its values to files there and ``exposition``
    adds up every worker's, whichever worker answers the scrape."""

    def __init__(self, slo_thresholds: Iterable[float] = ()) -> None:
        self.registry = CollectorRegistry()
        self.shared_dir = os.environ.get(METRICS_ENV) or None
        self._depths: dict[tuple[str, str, str], Callable[[], float]] = {}
        self._cpu_counted = 0.0
        if self.shared_dir is None:
            # process_cpu_seconds_total and friends: CPU-seconds x price = cost of serving.
            ProcessCollector(registry=self.registry)
        else:  # custom collectors do not add up across processes: count CPU ourselves
            self.cpu_seconds = Counter(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds (every worker).",
                registry=self.registry,
            )
        buckets = latency_buckets(slo_thresholds)
        version = ["endpoint", "model", "version"]
        self.requests = Counter(
            "dnnops_requests",
            "Inference requests by outcome.",
            [*version, "status"],
            registry=self.registry,
        )
        self.instances = Counter(
            "dnnops_instances", "Instances (rows) predicted.", version, registry=self.registry
        )
        self.request_seconds = Histogram(
            "dnnops_request_duration_seconds",
            "End-to-end request latency inside the server.",
            version,
            buckets=buckets,
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "dnnops_queue_duration_seconds",
            "Time a request's rows waited for a batch.",
            version,
            buckets=buckets,
            registry=self.registry,
        )
        self.compute_seconds = Histogram(
            "dnnops_compute_duration_seconds",
            "Model time per batch.",
            version,
            buckets=buckets,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "dnnops_batch_size",
            "Rows per executed batch.",
            version,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "dnnops_queue_depth",
            "Rows waiting for a batch.",
            version,
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.rejected = Counter(
            "dnnops_rejected",
            "Requests refused before inference.",
            [*version, "reason"],
            registry=self.registry,
        )
        self.input_anomalies = Counter(
            "dnnops_input_anomalies",
            "Rows served despite a data problem (serve.missing, unseen_category, out_of_range,"
            " non_finite), by feature; features come from the schema, so the series are bounded.",
            [*version, "feature", "kind"],
            registry=self.registry,
        )
        self.tier_predictions = Counter(
            "dnnops_tier_predictions",
            "Rows a tiered version's tier answered (tier: the member's model@version); the "
            "escalation rate is 1 - the first tier's share.",
            [*version, "tier"],
            registry=self.registry,
        )
        self.tier_cpu_seconds = Counter(
            "dnnops_tier_cpu_seconds",
            "Model CPU time (wall time x intra-op threads) each tier spent; divided by "
            "dnnops_instances_total: each tier's cost per prediction of the endpoint.",
            [*version, "tier"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, str, int], tuple[Any, Any, Any]] = {}
        self.feedback = Counter(
            "dnnops_feedback_labels",
            "Labels sent to /v1/feedback, by outcome: accepted, relabeled, or refused as "
            "unknown_prediction_id or unknown_label.",
            ["outcome"],
            registry=self.registry,
        )
        self.outcomes = Counter(
            "dnnops_outcomes",
            "Business outcomes sent to /v1/outcomes, by KPI (monitor.kpis) and outcome: "
            "accepted, or refused as unknown_prediction_id.",
            ["kpi", "outcome"],
            registry=self.registry,
        )
        self.shadow = Counter(
            "dnnops_shadow_requests",
            "Requests mirrored to a shadow version, by outcome (never answered to clients).",
            [*version, "outcome"],
            registry=self.registry,
        )
        self.estimated_accuracy = Gauge(
            "dnnops_estimated_accuracy",
            "Accuracy estimated without labels at the last evaluation (cbpe, cbpe_low, cbpe_high, "
            "atc, agreement).",
            [*version, "method"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.drift_share = Gauge(
            "dnnops_drift_share",
            "Share of drifted features at the last monitoring evaluation.",
            version,
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.drift_score = Gauge(
            "dnnops_drift_score",
            "Drift score of each feature (its method's statistic) at the last evaluation.",
            [*version, "feature"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.drift_detected = Gauge(
            "dnnops_drift_detected",
            "1 when the last monitoring evaluation judged the inputs drifted, else 0.",
            version,
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.signal_value = Gauge(
            "dnnops_signal_value",
            "Each alerting signal at the last evaluation (monitor.alerts; more is worse): "
            "the generated rules compare it with the same thresholds as the report.",
            [*version, "signal"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.budget_remaining = Gauge(
            "dnnops_slo_error_budget_remaining",
            "Share of the error budget left over the monitoring window, per objective.",
            [*version, "objective"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.burn_rate = Gauge(
            "dnnops_slo_burn_rate",
            "Each burn-rate rule's reading per objective (1 = on budget): the lower of its "
            "long- and short-window burn rates, so the rule fires when it reaches the factor.",
            [*version, "objective", "factor"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.canary_weight = Gauge(
            "dnnops_rollout_canary_weight",
            "Percent of an endpoint's traffic routed to its canary (0 outside rollouts).",
            ["endpoint"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.controller_tick_seconds = Histogram(
            "dnnops_controller_tick_seconds",
            "Time per background loop tick, by loop: rollout (the controller), monitor "
            "(report, alerts, retraining check), lease, fleet_log, shared_metrics, "
            "explanations.",
            ["loop"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.event_loop_lag = Gauge(
            "dnnops_event_loop_lag_seconds",
            "Worst delay of the event loop over the last 10 s: how long a request that was "
            "ready to run waited for work that held the loop.",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.leader = Gauge(
            "dnnops_leader",
            "1 while this process makes the server-wide decisions (rollout steps, alerts, "
            "retraining) for its fleet: the holder of the fleet's lease.",
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.controller_errors = Counter(
            "dnnops_controller_errors",
            "Background loop ticks that failed, by loop (as dnnops_controller_tick_seconds); "
            "logged with the stack, and the loop retries with backoff.",
            ["loop"],
            registry=self.registry,
        )
        for loop in CONTROL_LOOPS:  # every series from the start: an alert sees the first
            self.controller_errors.labels(loop)
        self.routed = Counter(
            "dnnops_routed_requests",
            "Requests routed by the traffic router, by role (stable or canary).",
            [*version, "role"],
            registry=self.registry,
        )
        self.timed_out = Counter(
            "dnnops_timed_out",
            "Requests answered 504 from the queue.",
            version,
            registry=self.registry,
        )
        self.out_of_memory = Counter(
            "dnnops_gpu_out_of_memory",
            "Batches the GPU had no memory for, answered in two halves instead.",
            version,
            registry=self.registry,
        )
        self.gpu_utilization = Gauge(
            "dnnops_gpu_utilization_ratio",
            "Share of the last sample period a kernel ran on the GPU (NVML).",
            ["gpu"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.gpu_memory_used = Gauge(
            "dnnops_gpu_memory_used_bytes",
            "GPU memory in use by every process on the GPU (NVML).",
            ["gpu"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.alert_deliveries = Counter(
            "dnnops_alert_deliveries",
            "Alert webhook deliveries (one per model and status), by outcome: delivered, "
            "retried (delivered after a failed try) or failed (every try failed).",
            ["outcome"],
            registry=self.registry,
        )
        self.retrain_runs = Counter(
            "dnnops_retrain_runs",
            "Background retrainings that ended, by outcome: retrained (a challenger "
            "registered), not_retrained (no trigger fired) or failed (see its log).",
            ["outcome"],
            registry=self.registry,
        )
        self.explanations = Counter(
            "dnnops_explanations",
            "Live predictions the background sampler explained (stored) or could not "
            "(skipped: inputs not logged or redacted).",
            ["outcome"],
            registry=self.registry,
        )
        self.watch_gpus = False
        """Set when serving on a GPU: ``refresh`` reads NVML."""

    def request_done(
        self, names: tuple[str, str, str], status: int, rows: int, *, seconds: float
    ) -> None:
        """Count one finished request; labelled children are cached (the hot path)."""
        key = (*names, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(*names, str(status)),
                self.instances.labels(*names),
                self.request_seconds.labels(*names),
            )
            self._children[key] = children
        children[0].inc()
        if status == 200:
            children[1].inc(rows)
            children[2].observe(seconds)

    def watch_queue(
        self, endpoint: str, model: str, version: str, *, depth: Callable[[], float]
    ) -> None:
        if self.shared_dir is None:
            self.queue_depth.labels(endpoint, model, version).set_function(depth)
        else:  # a function cannot be read from another process: ``refresh`` copies it
            self._depths[(endpoint, model, version)] = depth

    def refresh(self) -> None:
        """Workers only: copy the values read at scrape time (queue depths, CPU) into the
        shared files; called every second and before each exposition."""
        for names, depth in list(self._depths.items()):
            self.queue_depth.labels(*names).set(depth())
        if self.shared_dir is not None:
            times = os.times()
            used = times.user + times.system
            self.cpu_seconds.inc(max(used - self._cpu_counted, 0.0))
            self._cpu_counted = used

    def observe_loop(self, loop: str, seconds: float, failed: bool) -> None:
        """One background loop tick (``serve/loops.py``'s runner reports every one)."""
        if failed:
            self.controller_errors.labels(loop).inc()
        self.controller_tick_seconds.labels(loop).observe(seconds)

    def observe_report(self, report: Report) -> None:
        """Gauges from a monitoring evaluation, for Prometheus and Grafana: drift per
        feature and dataset, remaining error budget and burn rates per objective."""
        for section in report.versions:
            slis = section.slis
            names = (slis.endpoint, slis.model, slis.version)
            drift = section.drift
            if drift is not None:
                self.drift_share.labels(*names).set(drift.share)
                self.drift_detected.labels(*names).set(float(drift.drifted))
                for feature in drift.features:
                    self.drift_score.labels(*names, feature.feature).set(feature.score)
            if section.estimated_accuracy is not None:
                for method, value in _estimates(section.estimated_accuracy).items():
                    self.estimated_accuracy.labels(*names, method).set(value)
            for reading in section.signals:
                self.signal_value.labels(*names, reading.signal).set(reading.value)
            for objective in section.slo:
                remaining = objective.error_budget_remaining
                if remaining is not None:
                    self.budget_remaining.labels(*names, objective.name).set(remaining)
                for rule in objective.burn_rates:
                    self.burn_rate.labels(*names, objective.name, str(rule.factor)).set(
                        min(rule.long_rate, rule.short_rate)
                    )

    def read_gpus(self) -> None:
        """The GPUs' utilisation and memory, when serving on one (NVML, a few ms)."""
        if self.watch_gpus:
            for reading in gpu_readings():
                self.gpu_utilization.labels(str(reading.index)).set(reading.utilization)
                self.gpu_memory_used.labels(str(reading.index)).set(reading.memory_used_bytes)

    def exposition(self) -> bytes:
        self.read_gpus()
        if self.shared_dir is None:
            return generate_latest(self.registry)
        self.refresh()
        every_worker = CollectorRegistry()
        multiprocess.MultiProcessCollector(every_worker, self.shared_dir)  # type: ignore[no-untyped-call]
        return generate_latest(every_worker)


def _estimates(estimate: EstimatedAccuracy) -> dict[str, float]:
    """The ``method`` label's values of ``dnnops_estimated_accuracy``."""
    readings = {
        "cbpe": estimate.cbpe,
        "cbpe_low": estimate.low,
        "cbpe_high": estimate.high,
        "atc": estimate.atc,
    }
    if estimate.agreement is not None:
        readings["agreement"] = estimate.agreement
    return readings
