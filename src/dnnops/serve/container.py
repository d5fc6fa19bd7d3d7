"""A container image recipe for the server: a Dockerfile, and a constraints file that pins
every package dnnops needs to the version installed here (what the tests passed with), so
the image runs what was tested. ``dnnops export kubernetes`` names the same image tag."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import metadata

from packaging.requirements import Requirement

from dnnops.version import __version__

IMAGE = f"dnnops:{__version__}"
"""The tag the README builds and the Kubernetes export runs."""
PORT = 8000


@dataclass(frozen=True)
class Recipe:
    dockerfile: str
    constraints: str
    missing: list[str]
    """Requirements not installed here: left out of the constraints (pip resolves them)."""


def container_recipe(
    *, extras: tuple[str, ...] = (), project_file: bool = False, torch_index: str | None = None
) -> Recipe:
    pins, missing = pinned_requirements("dnnops", extras)
    return Recipe(_dockerfile(extras, project_file, torch_index), _constraints(pins), missing)


def pinned_requirements(
    name: str, extras: tuple[str, ...] = ()
) -> tuple[dict[str, str], list[str]]:
    """Every distribution ``name`` (with ``extras``) needs, recursively, at its installed
    version; and the requirements that are not installed."""
    pins: dict[str, str] = {}
    missing: list[str] = []
    pending = [(name, extras)]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while pending:
        current, wanted = pending.pop()
        if (current, wanted) in seen:
            continue
        seen.add((current, wanted))
        for text in metadata.requires(current) or []:
            requirement = Requirement(text)
            environments = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if requirement.marker is not None and not any(
                requirement.marker.evaluate(env) for env in environments
            ):
                continue
            key = _normalized(requirement.name)
            try:
                pins[key] = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                missing.append(str(requirement))
                continue
            pending.append((requirement.name, tuple(sorted(requirement.extras))))
    pins.pop(_normalized(name), None)
    return dict(sorted(pins.items())), sorted(set(missing))


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _constraints(pins: dict[str, str]) -> str:
    lines = [
        f"# dnnops {__version__}: the versions installed where it was tested "
        f"(Python {sys.version_info.major}.{sys.version_info.minor})",
        *(f"{name}=={version}" for name, version in pins.items()),
    ]
    return "\n".join(lines) + "\n"


def _dockerfile(extras: tuple[str, ...], project_file: bool, torch_index: str | None) -> str:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    wheel = f"dnnops-{__version__}-py3-none-any.whl"
    target = f"/tmp/{wheel}" + (f"[{','.join(extras)}]" if extras else "")
    index = f" --extra-index-url {torch_index}" if torch_index else ""
    lines = [
        "# syntax=docker/dockerfile:1",
        f"# dnnops {__version__}; build: pip wheel --no-deps -w . /path/to/dnnops && "
        f"docker build -t {IMAGE} .",
        f"FROM python:{python}-slim",
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 "
        "DNNOPS_HOME=/var/lib/dnnops",
        "RUN useradd --create-home --uid 10001 dnnops && install -d -o dnnops -m 0700 "
        "/var/lib/dnnops",
        "COPY constraints.txt /tmp/constraints.txt",
        f"COPY {wheel} /tmp/{wheel}",
        f'RUN pip install{index} -c /tmp/constraints.txt "{target}" && rm /tmp/{wheel}',
    ]
    if project_file:
        lines.append("COPY dnnops.yaml /etc/dnnops/dnnops.yaml")
    lines += [
        "USER dnnops",
        "WORKDIR /home/dnnops",
        f"EXPOSE {PORT}",
        "HEALTHCHECK --interval=10s --timeout=3s --start-period=60s CMD python -c "
        f"\"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/v2/health/live')\"",
        f'ENTRYPOINT ["dnnops", "serve", "--host", "0.0.0.0", "--port", "{PORT}"]',
        'CMD ["-c", "/etc/dnnops/dnnops.yaml"]' if project_file else "CMD []",
    ]
    return "\n".join(lines) + "\n"
