"""``dnnops export grafana|prometheus-rules|alertmanager|kubernetes|docker``: monitoring
and deployment as code for teams that already run Grafana, Prometheus, Alertmanager,
Kubernetes and Docker, generated from the same dnnops.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dnnops.config import load_config
from dnnops.dashboard.grafana import grafana_dashboard
from dnnops.errors import UsageError
from dnnops.monitor.judgements.alertmanager_config import render_alertmanager_config
from dnnops.monitor.judgements.prometheus_rules import render_rules
from dnnops.serve.kubernetes import Fleet, render_manifests, write_manifests

export_app = typer.Typer(
    no_args_is_help=True,
    help="Grafana dashboards, Prometheus rules, Alertmanager routes, Kubernetes manifests.",
)
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The project file.")]


@export_app.command("grafana")
def export_grafana(config: ConfigOption = Path("dnnops.yaml")) -> None:
    """Print a Grafana dashboard JSON (import it; pick your Prometheus data source)."""
    typer.echo(json.dumps(grafana_dashboard(load_config(config)), indent=2))


@export_app.command("prometheus-rules")
def export_rules(config: ConfigOption = Path("dnnops.yaml")) -> None:
    """Print Prometheus recording and alerting rules for the project's SLOs."""
    typer.echo(render_rules(load_config(config)), nl=False)


@export_app.command("alertmanager")
def export_alertmanager(
    config: ConfigOption = Path("dnnops.yaml"),
    out: Annotated[
        Path | None, typer.Option(help="Write the file here (default: print it).")
    ] = None,
    page_url: Annotated[
        str | None, typer.Option(help="Webhook for pages (default: monitor.webhook_url).")
    ] = None,
    ticket_url: Annotated[
        str | None, typer.Option(help="Webhook for tickets (default: monitor.webhook_url).")
    ] = None,
) -> None:
    """Print an alertmanager.yml: pages and tickets routed apart, a page silencing its
    model's tickets (point monitor.alertmanager_url at it)."""
    project = load_config(config)
    text = render_alertmanager_config(project, page_url=page_url, ticket_url=ticket_url)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text)
    typer.echo(f"wrote {out}: point Alertmanager's --config.file at it")


@export_app.command("kubernetes")
def export_kubernetes(
    config: ConfigOption = Path("dnnops.yaml"),
    image: Annotated[str, typer.Option(help="The container image with dnnops.")] = Fleet.image,
    replicas: Annotated[int, typer.Option(help="Replicas (the autoscaler's minimum).")] = 3,
    max_replicas: Annotated[int, typer.Option(help="The autoscaler's maximum.")] = 10,
    autoscale: Annotated[
        str, typer.Option(help="cpu, or queue (dnnops_queue_depth via a metrics adapter).")
    ] = "cpu",
    namespace: Annotated[str | None, typer.Option(help="Namespace of every object.")] = None,
    artifacts_url: Annotated[
        str | None, typer.Option(help="DNNOPS_ARTIFACTS_URL shared by the replicas (s3://...).")
    ] = None,
    logs_url: Annotated[
        str | None,
        typer.Option(help="DNNOPS_LOGS_URL: where the replicas ship their logs (s3://...)."),
    ] = None,
    endpoint_url: Annotated[
        str | None, typer.Option(help="AWS_ENDPOINT_URL of an S3-compatible store.")
    ] = None,
    secret: Annotated[
        str | None, typer.Option(help="Secret holding the credentials (default NAME-secrets).")
    ] = None,
    cpu: Annotated[str, typer.Option(help="CPU request per replica.")] = Fleet.cpu,
    memory: Annotated[str, typer.Option(help="Memory request and limit.")] = Fleet.memory,
    out: Annotated[
        Path | None, typer.Option(help="Write one file per object into this folder.")
    ] = None,
) -> None:
    """Print a ConfigMap, Deployment, Service, HPA and PodDisruptionBudget (kubectl apply
    -f -), or write them into --out (kubectl apply -f DIR)."""
    if autoscale not in ("cpu", "queue"):
        raise UsageError(f"--autoscale must be cpu or queue, not {autoscale!r}")
    if replicas < 1 or max_replicas < 1:
        raise UsageError("--replicas and --max-replicas must be at least 1")
    fleet = Fleet(
        image=image,
        replicas=replicas,
        max_replicas=max_replicas,
        autoscale="cpu" if autoscale == "cpu" else "queue",
        namespace=namespace,
        artifacts_url=artifacts_url,
        logs_url=logs_url,
        endpoint_url=endpoint_url,
        secret=secret,
        cpu=cpu,
        memory=memory,
    )
    project = load_config(config)
    if out is None:
        typer.echo(render_manifests(project, config.read_text(), fleet), nl=False)
        return
    written = write_manifests(out, project, project_text=config.read_text(), fleet=fleet)
    typer.echo(f"wrote {len(written)} manifests to {out}: {', '.join(p.name for p in written)}")


@export_app.command("docker")
def export_docker(
    out: Annotated[Path, typer.Option(help="The build context folder to write.")] = Path("docker"),
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="A project file to bake in (served by default)."),
    ] = None,
    extra: Annotated[
        list[str] | None, typer.Option(help="A dnnops extra to install (s3, explain, ...).")
    ] = None,
    torch_index: Annotated[
        str | None, typer.Option(help="An extra index for torch (a CPU-only wheel index).")
    ] = None,
) -> None:
    """A Dockerfile and a constraints file pinning every package to the version installed
    here; the image tag is the one `dnnops export kubernetes` runs."""
    from dnnops.files import SHARED_FILE, atomic_write
    from dnnops.serve.container import IMAGE, container_recipe

    if config is not None:
        load_config(config)  # a broken project file fails here, not in the image
    recipe = container_recipe(
        extras=tuple(extra or ()), project_file=config is not None, torch_index=torch_index
    )
    atomic_write(out / "Dockerfile", recipe.dockerfile.encode(), mode=SHARED_FILE)
    atomic_write(out / "constraints.txt", recipe.constraints.encode(), mode=SHARED_FILE)
    if config is not None:
        atomic_write(out / "dnnops.yaml", config.read_bytes(), mode=SHARED_FILE)
    typer.echo(
        f"wrote {out}/Dockerfile and constraints.txt; put dnnops's wheel there "
        f"(pip wheel --no-deps -w {out} PATH_TO_DNNOPS), then: docker build -t {IMAGE} {out}"
    )
    for requirement in recipe.missing:
        typer.echo(f"  not installed here, left to pip: {requirement}")
