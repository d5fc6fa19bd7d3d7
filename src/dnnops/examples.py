"""The commented example project files ``dnnops init --example`` writes."""

from __future__ import annotations

from importlib import resources

from dnnops.errors import UsageError

EXAMPLES = ("digits", "breast_cancer", "wine")


def example_text(name: str) -> str:
    if name not in EXAMPLES:
        raise UsageError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}")
    return resources.files("dnnops").joinpath(f"templates/{name}.yaml").read_text(encoding="utf-8")
