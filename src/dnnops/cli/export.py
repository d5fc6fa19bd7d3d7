"""``dnnops export grafana|prometheus-rules``: monitoring as code for teams that already
run Grafana and Prometheus, generated from the same dnnops.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dnnops.config import load_config
from dnnops.dashboard.grafana import grafana_dashboard
from dnnops.monitor.prometheus_rules import render_rules

export_app = typer.Typer(no_args_is_help=True, help="Grafana dashboards and Prometheus rules.")
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The project file.")]


@export_app.command("grafana")
def export_grafana(config: ConfigOption = Path("dnnops.yaml")) -> None:
    """Print a Grafana dashboard JSON (import it; pick your Prometheus data source)."""
    typer.echo(json.dumps(grafana_dashboard(load_config(config)), indent=2))


@export_app.command("prometheus-rules")
def export_rules(config: ConfigOption = Path("dnnops.yaml")) -> None:
    """Print Prometheus recording and alerting rules for the project's SLOs."""
    typer.echo(render_rules(load_config(config)), nl=False)
