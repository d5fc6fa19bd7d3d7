"""``dnnops export docker``: a Dockerfile read back by a Dockerfile parser, and a
constraints file pinning every package dnnops needs to the version installed here; the
Kubernetes export runs the same tag. Building the image needs a registry these machines
cannot reach, so the build itself is not run here."""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from dockerfile_parse import DockerfileParser

from dnnops.config import ProjectConfig
from dnnops.serve.container import IMAGE, pinned_requirements
from dnnops.serve.kubernetes import Fleet, render_manifests
from tests.conftest import CliResult


def test_the_dockerfile_serves_as_a_non_root_user_with_pinned_packages(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    project = tmp_path / "dnnops.yaml"
    project.write_text("name: churn\ndata: {source: churn.csv, target: churned}\n")
    out = tmp_path / "docker"
    done = cli("export", "docker", "--out", str(out), "-c", str(project), "--extra", "s3")
    assert done.code == 0, done.err
    assert IMAGE in done.out

    parsed = DockerfileParser(path=str(out / "Dockerfile"))
    assert parsed.baseimage.startswith("python:3.") and parsed.baseimage.endswith("-slim")
    steps = [(i["instruction"], i["value"]) for i in parsed.structure]
    kinds = [kind for kind, _ in steps]
    assert kinds.index("USER") < kinds.index("ENTRYPOINT"), "never serves as root"
    assert ("USER", "dnnops") in steps and ("EXPOSE", "8000") in steps
    assert "HEALTHCHECK" in kinds
    [install] = [v for k, v in steps if k == "RUN" and "pip install" in v]
    assert "-c /tmp/constraints.txt" in install and "[s3]" in install
    assert ("COPY", "dnnops.yaml /etc/dnnops/dnnops.yaml") in steps
    [entry] = [v for k, v in steps if k == "ENTRYPOINT"]
    assert json.loads(entry) == ["dnnops", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert (out / "dnnops.yaml").read_text() == project.read_text()

    pins = {}
    for line in (out / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name] = version
    assert pins["torch"] == metadata.version("torch") and "numpy" in pins
    assert "s3fs" in pins, "the extra's packages are pinned too"
    assert "dnnops" not in pins
    for name, version in pins.items():
        assert metadata.version(name) == version, name


def test_pins_follow_requirements_transitively_and_the_kubernetes_export_runs_the_tag() -> None:
    pins, _ = pinned_requirements("dnnops")
    assert "fastapi" in pins and "starlette" in pins, "fastapi's own requirement"
    assert "s3fs" not in pins, "an extra not asked for"
    project = ProjectConfig.model_validate({"name": "churn", "data": {"source": "churn.csv"}})
    manifests = render_manifests(project, "name: churn\n", Fleet())
    assert f"image: {IMAGE}" in manifests
