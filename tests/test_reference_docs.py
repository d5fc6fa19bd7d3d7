"""The reference in docs/reference/ is generated from the code; a key, command, route,
metric or registry entry added without its description or without regenerating fails."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dnnops.cli import reference

ROOT = Path(__file__).resolve().parent.parent


def test_the_generated_reference_is_current() -> None:
    stale = reference.stale(ROOT / "docs" / "reference")
    assert not stale, f"docs/reference is stale ({stale}): run python -m dnnops.cli.reference"


def test_every_key_of_the_project_file_is_on_the_page() -> None:
    page = (ROOT / "docs" / "reference" / "config.md").read_text()
    for key in ("monitor.drift", "retrain", "tune.space"):
        assert f"## `{key}`" in page
    assert "## `model.params` (`arch: mlp`)" in page and "| `embedding_dim` |" in page


def test_a_key_without_a_docstring_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from dnnops.config import SplitConfig

    field = SplitConfig.model_fields["seed"]
    monkeypatch.setattr(field, "description", None)
    with pytest.raises(reference.Undocumented, match=r"data\.split\.seed"):
        reference.config_page()


def test_every_environment_variable_the_code_reads_is_in_the_reference() -> None:
    page = (ROOT / "docs" / "reference.md").read_text()
    read = set()
    for path in (ROOT / "src" / "dnnops").rglob("*.py"):
        read |= set(re.findall(r"""get\(\s*["'](DNNOPS_[A-Z_]+)["']""", path.read_text()))
    internal = {"DNNOPS_WORKER", "DNNOPS_SERVE_GROUP"}  # set by the supervisor for its workers
    assert read - internal, "the scan found the variables"
    assert sorted(v for v in read - internal if f"`{v}`" not in page) == []
