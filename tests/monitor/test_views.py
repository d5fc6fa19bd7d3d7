"""How the CLI words monitoring numbers: budgets as percentages, drift verdicts with the
test that decided them."""

from __future__ import annotations

from dnnops.cli.monitor import drift_verdict
from dnnops.console import format_budget


def test_budgets_read_as_percentages_and_say_when_overspent() -> None:
    assert format_budget(0.75) == "75%"
    assert format_budget(-5.986) == "-599% (overspent: 7.0x the budget used)"
    assert format_budget(None) == "-"


def test_a_drift_verdict_names_the_test_that_decided_it() -> None:
    joint = {"method": "pca_reconstruction", "score": 1.9, "threshold": 1.2, "drifted": True}
    by_joint = {"drifted": True, "share": 0.12, "threshold": 0.5, "multivariate": joint}
    assert drift_verdict(by_joint, 25).startswith(
        "DRIFTED by the multivariate test (pca_reconstruction 1.9 >= 1.2"
    )
    assert "12% of 25 features drifted (under the 50% threshold)" in drift_verdict(by_joint, 25)
    by_share = {"drifted": True, "share": 0.6, "threshold": 0.5, "multivariate": None}
    assert drift_verdict(by_share, 10) == (
        "DRIFTED: 60% of 10 features drifted (at or over the 50% threshold)"
    )
    calm = {"drifted": False, "share": 0.1, "threshold": 0.5}
    assert drift_verdict(calm, 10).startswith("stable: 10% of 10")
