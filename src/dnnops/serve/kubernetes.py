"""Kubernetes manifests for a fleet of ``dnnops serve`` replicas, from dnnops.yaml.

One ConfigMap holds the project file; the Deployment's replicas read it, answer on the
Open Inference Protocol's health routes (readiness gates traffic while a version loads,
liveness restarts a wedged process), drain on SIGTERM behind a short ``preStop`` pause (so
the Service stops sending before the drain starts), and get their credentials from a
Secret by reference only: the manifests never hold a password. A Service fronts them, a
HorizontalPodAutoscaler scales them on CPU or on queue depth, a PodDisruptionBudget keeps
all but one serving through node drains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from dnnops.config import ProjectConfig
from dnnops.serve.container import IMAGE
from dnnops.serve.launch import ADMIN_TOKEN_ENV, LABELS_TOKEN_ENV, READ_TOKEN_ENV

PORT = 8080
CONFIG_DIR = "/etc/dnnops"
HOME_DIR = "/var/lib/dnnops"
PRE_STOP_S = 5
"""How long a replica keeps serving after it is told to stop, before its drain: long
enough for the endpoints to drop it from the Service."""
SECRET_KEYS = {
    "DNNOPS_DB_URL": "db-url",
    "AWS_ACCESS_KEY_ID": "aws-access-key-id",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-access-key",
    ADMIN_TOKEN_ENV: "admin-token",
    LABELS_TOKEN_ENV: "labels-token",
    READ_TOKEN_ENV: "read-token",
}
"""Environment variable -> key of the Secret it is read from."""
OPTIONAL_KEYS = {LABELS_TOKEN_ENV, READ_TOKEN_ENV, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
"""Keys a Secret may leave out (IAM roles for service accounts need no AWS keys)."""


@dataclass(frozen=True)
class Fleet:
    """How the replicas run; each field is an option of ``dnnops export kubernetes``."""

    image: str = IMAGE
    """The tag ``dnnops export docker`` builds."""
    replicas: int = 3
    max_replicas: int = 10
    autoscale: Literal["cpu", "queue"] = "cpu"
    namespace: str | None = None
    artifacts_url: str | None = None
    """``DNNOPS_ARTIFACTS_URL``: the shared store every replica loads versions from."""
    logs_url: str | None = None
    """``DNNOPS_LOGS_URL``: the store the replicas ship their log segments to (the fleet's
    log); each replica is named after its pod (``DNNOPS_REPLICA``)."""
    endpoint_url: str | None = None
    """``AWS_ENDPOINT_URL``: an S3-compatible store other than AWS."""
    secret: str | None = None
    """The Secret the credentials are read from (default: ``NAME-secrets``)."""
    cpu: str = "1"
    memory: str = "1Gi"


def manifests(project: ProjectConfig, project_text: str, fleet: Fleet) -> list[dict[str, Any]]:
    """ConfigMap, Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget."""
    name = project.name
    labels = {"app.kubernetes.io/name": "dnnops", "app.kubernetes.io/instance": name}
    metadata = {"name": name, "labels": labels} | (
        {"namespace": fleet.namespace} if fleet.namespace else {}
    )
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {**metadata, "name": f"{name}-config"},
        "data": {"dnnops.yaml": project_text},
    }
    return [
        config_map,
        _deployment(project, fleet, metadata=metadata, labels=labels),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata,
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
        _autoscaler(project, fleet, metadata),
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": metadata,
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
        },
    ]


def _deployment(
    project: ProjectConfig, fleet: Fleet, *, metadata: dict[str, Any], labels: dict[str, str]
) -> dict[str, Any]:
    secret = fleet.secret or f"{project.name}-secrets"
    env: list[dict[str, Any]] = [{"name": "DNNOPS_HOME", "value": HOME_DIR}]
    env += [
        {
            "name": variable,
            "valueFrom": {
                "secretKeyRef": {
                    "name": secret,
                    "key": key,
                    **({"optional": True} if variable in OPTIONAL_KEYS else {}),
                }
            },
        }
        for variable, key in SECRET_KEYS.items()
    ]
    if fleet.artifacts_url:
        env.append({"name": "DNNOPS_ARTIFACTS_URL", "value": fleet.artifacts_url})
    if fleet.logs_url:
        env.append({"name": "DNNOPS_LOGS_URL", "value": fleet.logs_url})
        pod = {"fieldRef": {"fieldPath": "metadata.name"}}
        env.append({"name": "DNNOPS_REPLICA", "valueFrom": pod})
    if fleet.endpoint_url:
        env.append({"name": "AWS_ENDPOINT_URL", "value": fleet.endpoint_url})
    health = {"httpGet": {"path": "/v2/health/ready", "port": "http"}}
    container = {
        "name": "dnnops",
        "image": fleet.image,
        "args": [
            "dnnops",
            "serve",
            "-c",
            f"{CONFIG_DIR}/dnnops.yaml",
            "--host",
            "0.0.0.0",  # inside the pod; the admin token guards the routes
            "--port",
            str(PORT),
        ],
        "ports": [{"name": "http", "containerPort": PORT}],
        "env": env,
        "readinessProbe": {**health, "periodSeconds": 5, "failureThreshold": 2},
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "startupProbe": {**health, "periodSeconds": 2, "failureThreshold": 90},
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_S)]}}},
        "resources": {
            "requests": {"cpu": fleet.cpu, "memory": fleet.memory},
            "limits": {"memory": fleet.memory},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "home", "mountPath": HOME_DIR},
        ],
    }
    grace = PRE_STOP_S + int(project.serve.drain_timeout) + 10
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": fleet.replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "terminationGracePeriodSeconds": grace,
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": f"{project.name}-config"}},
                        {"name": "home", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def _autoscaler(project: ProjectConfig, fleet: Fleet, metadata: dict[str, Any]) -> dict[str, Any]:
    if fleet.autoscale == "cpu":
        metric: dict[str, Any] = {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    else:  # served by a metrics adapter (prometheus-adapter) from the /metrics gauge
        target = max(1, project.serve.queue_limit // 10)
        metric = {
            "type": "Pods",
            "pods": {
                "metric": {"name": "dnnops_queue_depth"},
                "target": {"type": "AverageValue", "averageValue": str(target)},
            },
        }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": project.name},
            "minReplicas": fleet.replicas,
            "maxReplicas": max(fleet.max_replicas, fleet.replicas),
            "metrics": [metric],
        },
    }


def render_manifests(project: ProjectConfig, project_text: str, fleet: Fleet) -> str:
    header = (
        f"# Generated by dnnops export kubernetes for {project.name}. The Secret "
        f"{fleet.secret or project.name + '-secrets'} is yours to create: keys "
        f"{', '.join(sorted(SECRET_KEYS.values()))}.\n"
    )
    return header + yaml.safe_dump_all(manifests(project, project_text, fleet), sort_keys=False)


def write_manifests(
    folder: Path, project: ProjectConfig, *, project_text: str, fleet: Fleet
) -> list[Path]:
    """One file per object, ``NN-kind.yaml`` in the order they apply (the ConfigMap first)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index, manifest in enumerate(manifests(project, project_text, fleet)):
        path = folder / f"{index:02d}-{manifest['kind'].lower()}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        written.append(path)
    return written
