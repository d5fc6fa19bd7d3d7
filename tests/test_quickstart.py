"""``dnnops quickstart`` (``make demo``) plays the whole lifecycle and ends with its table."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from tests.conftest import CliResult


# Slow (40-55 s here): it is `make demo`, the README's story end to end (three versions
# trained, served, drifted, retrained, canaried and rolled back).
def test_quickstart_story_catches_drift_promotes_v2_and_rolls_back_v3(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    result = cli("quickstart", "--quiet")
    assert result.code == 0, result.err
    out = result.out
    for stage in ("1/6 train v1", "2/6 serve v1", "3/6 the camera changes", "4/6 retrain"):
        assert stage in out
    assert re.search(r"monitor: \d+% of features drifted, accuracy on labels [\d.]+% \(below", out)
    # the new camera's accuracy is seen falling before its labels: its inputs shifted, so
    # by the agreement panel, which falls further than the calibrated confidence
    flat = " ".join(out.split())
    estimated = re.search(
        r"no labels yet; estimated accuracy before labels ([\d.]+)% by agreement \(the inputs "
        r"shifted; confidence says ([\d.]+)%\), was ([\d.]+)% on the old camera",
        flat,
    )
    assert estimated, out
    by_agreement, by_confidence, before = (float(estimated.group(i)) for i in (1, 2, 3))
    assert by_agreement < by_confidence < before - 1
    assert "drift:" in out, "the drift trigger fired"
    # the whole story in the message: which step went another way is then in CI's log
    assert "beats the champion" in out, out
    assert "rollout 1 of v2: promoted" in out, out
    assert "rollout 2 of v3: rolled_back" in out, out
    runs = cli("runs", "list", "--json").json()
    assert [r["status"] for r in runs] == ["finished"] * 3
    first = min(runs, key=lambda r: r["created_at"])
    assert first["metrics"]["test_accuracy"] >= 0.95
    for name in (
        "config.yaml",
        "model.safetensors",
        "data/profile.json",
        "checkpoints/latest.json",
    ):
        assert (home / "runs" / first["id"] / name).is_file(), name
    by_version = {v["version"]: v for v in cli("models", "show", "digits", "--json").json()}
    assert "production" in by_version[2]["aliases"]
    assert by_version[3]["status"] == "failed"
    alerts = cli("monitor", "alerts", "--json").json()
    assert {"drift", "rollout"} <= {a["kind"] for a in alerts}
    assert (home / "quickstart" / "dashboard.html").is_file()
    again = cli("quickstart", "--quiet")
    assert again.code == 2 and "needs an empty home" in again.err
