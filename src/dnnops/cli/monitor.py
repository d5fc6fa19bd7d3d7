"""``dnnops monitor report`` and ``dnnops monitor drift``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from dnnops.cli.common import HomeOpt, JsonOpt, fleet_logs, print_json
from dnnops.config import DriftConfig, MonitorConfig, SloConfig, load_config
from dnnops.console import format_budget, format_number, make_console, rows_table
from dnnops.durations import parse_duration
from dnnops.errors import UsageError
from dnnops.home import resolve_home

if TYPE_CHECKING:
    from dnnops.monitor.judgements.report_types import Report
    from dnnops.vocabulary import AlertStatus

monitor_app = typer.Typer(no_args_is_help=True, help="SLIs, drift, quality and SLO budgets.")


@monitor_app.command("report")
def monitor_report(
    since: Annotated[str, typer.Option(help="Window: 30m, 1h, 3d.")] = "1h",
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Project file (monitor, slo).")
    ] = None,
    alert: Annotated[bool, typer.Option(help="Store, deduplicate and deliver alerts.")] = False,
    html: Annotated[
        Path | None, typer.Option(help="Also write the dashboard views as one HTML file.")
    ] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """SLIs per served version, drift against the reference profile, quality on labels."""
    from dnnops.monitor.judgements.alerts import MONITOR_KINDS, alerts_from_report, deliver
    from dnnops.monitor.report import build_report
    from dnnops.registry.alerts import AlertStore
    from dnnops.registry.db import open_engine
    from dnnops.registry.open import database_registry, database_url, open_registry

    project = load_config(config) if config is not None else None
    resolved = resolve_home(home)
    logs = fleet_logs(resolved)
    monitor = project.monitor if project else MonitorConfig()
    report = build_report(
        open_registry(resolved),
        logs,
        parse_duration(since),
        monitor=monitor,
        slo=project.slo if project else SloConfig(),
    )
    shown = report.to_json()
    if alert:
        store = AlertStore(open_engine(database_url(resolved, "dnnops monitor report --alert")))
        already = store.firing_keys(MONITOR_KINDS)
        firing = alerts_from_report(report, monitor=monitor, firing=already)
        changed = store.record(firing, MONITOR_KINDS)
        failed = deliver(changed.fresh, monitor.webhook_url, resolved=changed.resolved)
        shown["alerts"] = {
            "firing": len(firing),
            "new": [a.to_dict() for a in changed.fresh],
            "resolved": [a.to_dict() for a in changed.resolved],
            "delivery_failures": failed,
        }
    if html is not None:
        from dnnops.dashboard.static_report import write_static_report

        endpoints = sorted({v.slis.endpoint for v in report.versions})
        write_static_report(
            html,
            database_registry(resolved, "dnnops monitor report --html"),
            logs,
            endpoints=endpoints,
            window_s=parse_duration(since),
            monitor=monitor,
            slo=project.slo if project else SloConfig(),
            report=report,
        )
        shown["html"] = str(html)
    if json_out:
        print_json(shown)
        return
    _print_report(report, since)
    if html is not None:
        make_console().print(f"wrote {html} (open it in a browser; it works offline)")


def _print_report(report: Report, since: str) -> None:
    console = make_console()
    if not report.versions:
        console.print(f"no predictions in the last {since}")
        return
    columns = [
        "endpoint", "v", "n", "ok", "p50ms", "p95ms", "p99ms", "req/s", "share", "conf", "invalid",
    ]  # fmt: skip
    rows = [
        [
            s.endpoint,
            s.version,
            s.predictions,
            s.success_rate,
            s.latency_p50_ms,
            s.latency_p95_ms,
            s.latency_p99_ms,
            s.throughput_per_s,
            s.traffic_share,
            s.confidence_mean,
            s.ingestion_error_rate,
        ]
        for s in (v.slis for v in report.versions)
    ]
    console.print(rows_table(f"SLIs over the last {since}", columns, rows))
    for version in report.versions:
        name = f"{version.slis.model}@{version.slis.version}"
        quality = version.quality
        if quality is not None:
            wanted = ("mae", "rmse", "r2") if quality.task == "regression" else _CLASS_METRICS
            shown = {k: quality.metrics[k] for k in wanted if k in quality.metrics}
            console.print(
                f"{name} on {quality.labels} labels: "
                + ", ".join(f"{k} {format_number(v)}" for k, v in shown.items())
                + f"; label lag p50 {format_number(quality.label_lag_p50_s)} s"
            )
        if version.drift is not None:
            _print_drift(version.drift.to_dict(), f"drift of {name}")
        for objective in version.slo:
            console.print(
                f"SLO {objective.name}: current {format_number(objective.current)} "
                f"target {objective.target}, error budget left "
                f"{format_budget(objective.error_budget_remaining)}"
            )
        cost = version.cost
        if cost is not None and cost.per_1k_predictions is not None:
            console.print(
                f"{name} cost: {format_number(cost.per_1k_predictions)} {cost.currency} "
                f"per 1,000 predictions ({format_number(cost.cpu_ms_per_prediction)} ms of "
                f"model CPU each at {cost.cpu_second_price:g} {cost.currency} per "
                "CPU-second, monitor.cpu_second_price)"
            )
        split = version.tiers
        if split is not None:
            shares = ", ".join(f"{t.member} {format_number(t.share * 100)}%" for t in split.tiers)
            rate = split.escalation_rate
            console.print(
                f"{name} tiers: {shares}; escalation "
                f"{'-' if rate is None else format_number(rate * 100) + '%'} "
                f"(on validation {format_number(split.expected_escalation_rate * 100)}%)"
            )


_CLASS_METRICS = ("accuracy", "roc_auc", "expected_calibration_error")


def _print_drift(drift: dict[str, Any], title: str) -> None:
    features = sorted(drift["features"], key=lambda f: (not f["drifted"], f["feature"]))
    rows = [
        [f["feature"], f["method"], f["score"], f["threshold"], "DRIFT" if f["drifted"] else "ok"]
        for f in features[:20]
    ]
    make_console().print(
        rows_table(
            f"{title}: {drift_verdict(drift, len(features))} ({drift['rows']} rows)",
            ["feature", "method", "score", "threshold", "verdict"],
            rows,
        )
    )


def drift_verdict(drift: dict[str, Any], features: int) -> str:
    """DRIFTED or stable, and which test decided: the share of drifted features against
    monitor.drift.share, or the multivariate test on its own."""
    by_share = drift["share"] >= drift["threshold"] and features > 0
    joint = drift.get("multivariate") or {}
    counted = (
        f"{drift['share']:.0%} of {features} features drifted "
        f"({'at or over' if by_share else 'under'} the {drift['threshold']:.0%} threshold)"
    )
    if not drift["drifted"]:
        return f"stable: {counted}"
    if by_share:
        return f"DRIFTED: {counted}"
    return (
        f"DRIFTED by the multivariate test ({joint.get('method')} {joint.get('score', 0):.3g} "
        f">= {joint.get('threshold', 0):.3g}: the features' joint structure changed); {counted}"
    )


@monitor_app.command("alerts")
def monitor_alerts(
    status: Annotated[
        str | None, typer.Option(help="firing | pending (waiting out its hold-down) | resolved")
    ] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Alerts in the metadata store, newest first."""
    from dnnops.registry.alerts import AlertStore
    from dnnops.registry.db import open_engine
    from dnnops.registry.open import database_url

    if status not in (None, "firing", "pending", "resolved"):
        raise typer.BadParameter(f"{status!r}: firing, pending or resolved", param_hint="--status")
    wanted = cast("AlertStatus | None", status)
    rows = AlertStore(open_engine(database_url(resolve_home(home), "dnnops alerts"))).list(wanted)
    if json_out:
        print_json([r.to_dict() for r in rows])
        return
    make_console().print(
        rows_table(
            "alerts",
            ["last seen", "severity", "status", "count", "summary"],
            [[r.last_seen[:19], r.severity, r.status, r.count, r.summary] for r in rows],
        )
    )


@monitor_app.command("drift")
def monitor_drift(
    reference: Path,
    current: Path,
    method: Annotated[
        str, typer.Option(help="auto | psi | ks | wasserstein | chi2 | jensen_shannon")
    ] = "auto",
    threshold: Annotated[
        float | None, typer.Option(help="Per-feature threshold (default: the method's).")
    ] = None,
    share: Annotated[
        float, typer.Option(help="Dataset drifts when this share of features drift.")
    ] = 0.5,
    json_out: JsonOpt = False,
) -> None:
    """Drift between two data files (CSV or Parquet), offline; exit 1 when the dataset drifted."""
    from dnnops.data.sources import load_table
    from dnnops.monitor.stats.dataset_drift import dataset_drift, reference_from_frame

    config = DriftConfig.model_validate({"method": method, "threshold": threshold, "share": share})
    if {reference.suffix.lower(), current.suffix.lower()} == {".parquet"}:
        from dnnops.monitor.file_drift import parquet_drift  # column by column: flat memory

        for path in (reference, current):
            if not path.is_file():
                raise UsageError(f"data file {path} does not exist")
        result = parquet_drift(reference, current, config)
    else:
        result = dataset_drift(
            reference_from_frame(load_table(reference)), load_table(current), config
        )
    if json_out:
        print_json({"drift": result.to_dict()})
    else:
        _print_drift(result.to_dict(), f"{current} against {reference}")
    if result.drifted:
        raise typer.Exit(1)


slo_app = typer.Typer(no_args_is_help=True, help="Service-level objectives and error budgets.")


@slo_app.command("status")
def slo_status(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Project file (its slo objectives).")
    ] = Path("dnnops.yaml"),
    since: Annotated[
        str, typer.Option(help="Window of the SLIs; budgets always cover slo.window.")
    ] = "1d",
    home: HomeOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Each objective per served version: compliance, budget left, burn-rate alerts."""
    from dnnops.monitor.report import build_report
    from dnnops.registry.open import open_registry

    project = load_config(config)
    if not project.slo.objectives:
        raise UsageError(f"{config} has no slo.objectives; add some, e.g. a latency objective")
    resolved = resolve_home(home)
    report = build_report(
        open_registry(resolved),
        resolved.logs_dir,
        parse_duration(since),
        monitor=project.monitor,
        slo=project.slo,
    )
    rows = [
        {
            "endpoint": v.slis.endpoint,
            "version": v.slis.version,
            **asdict(o),
            "burning": [f"{b.severity} {b.factor}x" for b in v.alerts if b.objective == o.name],
        }
        for v in report.versions
        for o in v.slo
    ]
    if json_out:
        print_json(rows)
        return
    make_console().print(
        rows_table(
            f"SLOs over the last {since}",
            ["endpoint", "v", "objective", "target", "current", "met", "budget left", "burning"],
            [
                [
                    r["endpoint"],
                    r["version"],
                    r["name"],
                    r["target"],
                    r["current"],
                    {True: "yes", False: "NO", None: "-"}[r["met"]],
                    format_budget(r["error_budget_remaining"]),
                    ", ".join(r["burning"]) or "-",
                ]
                for r in rows
            ],
        )
    )


def incident_command(
    name: Annotated[str, typer.Argument(help="The endpoint (model name) the incident is about.")],
    out: Annotated[Path, typer.Option(help="The bundle to write (a .zip).")],
    since: Annotated[str, typer.Option(help="The window before now: 1h, 30m, 1d.")] = "1h",
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Project file: its SLOs and drift.")
    ] = None,
    json_out: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """Write an incident bundle: versions and lineage, traffic split, the report, drift,
    rollouts, alerts, the audit log and a sample of logged inputs, in one zip."""
    from dnnops.dashboard.incident import write_incident
    from dnnops.registry.open import database_registry

    project = load_config(config) if config is not None else None
    resolved = resolve_home(home)
    registry = database_registry(resolved, "dnnops incident")
    if not registry.versions(name):
        raise UsageError(f"no model {name!r} in the registry; see dnnops models list")
    bundle = write_incident(
        registry,
        fleet_logs(resolved),
        name,
        out=out,
        window_s=parse_duration(since),
        monitor=project.monitor if project else MonitorConfig(),
        slo=project.slo if project else SloConfig(),
    )
    if json_out:
        print_json(
            {
                "out": str(bundle.path),
                "parts": bundle.parts,
                "predictions": bundle.predictions,
                "alerts_firing": bundle.alerts_firing,
            }
        )
        return
    make_console().print(
        f"wrote {bundle.path}: {len(bundle.parts)} files, {bundle.predictions} predictions "
        f"in the window, {bundle.alerts_firing} alert(s) firing"
    )


labels_app = typer.Typer(no_args_is_help=True, help="Which predictions to label next.")


@labels_app.command("queue")
def labels_queue(
    name: Annotated[str, typer.Argument(help="The endpoint (model name) to label for.")],
    budget: Annotated[int, typer.Option(help="How many predictions to list.")],
    strategy: Annotated[
        str, typer.Option(help="uncertainty (nearest the boundary), random, or disagreement.")
    ] = "uncertainty",
    since: Annotated[str, typer.Option(help="Predictions made in this window: 1d, 6h.")] = "1d",
    out: Annotated[
        Path | None,
        typer.Option(help="Write .csv (fill in label, then dnnops feedback FILE) or .jsonl."),
    ] = None,
    json_out: JsonOpt = False,
    home: HomeOpt = None,
) -> None:
    """List the unlabelled predictions most worth a label, with their inputs."""
    import time

    from dnnops.monitor.segments.label_queue import label_queue, write_queue

    resolved = resolve_home(home)
    items = label_queue(
        fleet_logs(resolved),
        name,
        budget=budget,
        strategy=strategy,
        since=time.time() - parse_duration(since),
    )
    if out is not None:
        write_queue(items, out)
    if json_out:
        print_json({"out": str(out) if out else None, "items": [i.to_json() for i in items]})
        return
    if out is not None:
        make_console().print(f"wrote {len(items)} predictions to label to {out}")
        return
    rows = [[i.prediction_id, str(i.prediction), format_number(i.confidence), i.why] for i in items]
    title = f"{len(items)} predictions of {name} to label ({strategy})"
    columns = ["prediction_id", "prediction", "confidence", "why"]
    make_console().print(rows_table(title, columns, rows))
