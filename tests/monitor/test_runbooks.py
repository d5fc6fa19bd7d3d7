"""Every command a runbook page shows runs, against a real server with traffic and labels:
its code blocks exit cleanly (0, or 1 where a command says "found a problem"), every
metric a ``curl .../metrics | grep`` names is one the server exports, and every command an
inline span names parses (a bare command is checked with ``--help``). No look-first step
changes anything: none of them registers a version or starts a rollout. Every runbook
topic an alert or an SLO kind points at has its page, and every page is pointed at."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sklearn.datasets import load_wine

from dnnops.monitor.judgements.runbooks import PAGES
from dnnops.plugins import SLO_KINDS
from tests.conftest import REPO, CliResult, subprocess_env, write_project
from tests.serve.conftest import start_server

RUNBOOKS = REPO / "docs" / "runbooks"
BROKEN = ("Traceback", "No such option", "Missing argument", "Usage:", "unexpected extra")
ADMIN = "s3cret"


def code_lines(text: str) -> list[str]:
    """The commands of a page's ``bash`` blocks, comments and blank lines left out."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        command = re.sub(r"\s+#.*$", "", line).strip()
        if inside and command and not command.startswith("#"):
            lines.append(command)
    return lines


def inline_commands(text: str) -> list[str]:
    """Commands an inline span names (``dnnops ...`` or ``curl ...``) outside code blocks."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return [m.strip() for m in re.findall(r"`((?:dnnops|curl) [^`]+)`", prose)]


def test_every_runbook_topic_has_a_page_and_every_page_a_topic() -> None:
    kinds = {SLO_KINDS.get(name).runbook_page for name in SLO_KINDS.names()}
    pointed = set(PAGES.values()) | kinds
    pages = {p.stem for p in RUNBOOKS.glob("*.md")} - {"index"}
    assert pointed - pages == set(), "a topic without its page"
    assert pages - pointed == set(), "a page no alert points at"


@pytest.fixture
def setting(tmp_path: Path, home: Path, cli: Callable[..., CliResult]) -> dict[str, str]:
    """A served wine classifier with traffic and labels, the files the pages name, and
    what each placeholder stands for."""
    config = write_project(
        tmp_path,
        name="wine",
        data={"source": "train.csv", "target": "target"},
        model={"arch": "mlp", "params": {"hidden": [16], "dropout": 0.0}},
        train={"epochs": 5, "batch_size": 32, "lr": 0.01, "seed": 1},
        evaluate={"baseline": "trivial"},
        slo={"objectives": [{"name": "up", "kind": "success_rate", "target": 0.99}]},
    )
    wine = load_wine(as_frame=True).frame
    wine.to_csv(tmp_path / "train.csv", index=False)
    wine.sample(60, random_state=0).to_csv(tmp_path / "recent.csv", index=False)
    wine.drop(columns=["target"]).head(30).to_csv(tmp_path / "inputs.csv", index=False)
    assert config.name == "dnnops.yaml"
    assert cli("train", "-c", str(config), "--quiet", "--json").code == 0
    server = start_server(home, "-c", str(config), env={"DNNOPS_ADMIN_TOKEN": ADMIN})
    rows = wine.drop(columns=["target"]).to_dict(orient="records")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        ids = []
        for start in range(0, len(rows), 4):
            answer = http.post(
                "/v1/models/wine:predict", json={"instances": rows[start : start + 4]}
            )
            ids += answer.json()["prediction_ids"]
        labels = [
            {"prediction_id": i, "label": int(y)} for i, y in zip(ids, wine["target"], strict=True)
        ]
        auth = {"Authorization": f"Bearer {ADMIN}"}
        assert (
            http.post("/v1/feedback", json={"labels": labels[:100]}, headers=auth).status_code
            == 200
        )
        metrics = http.get("/metrics").text
    later = pd.DataFrame({"prediction_id": ids[100:], "label": wine["target"][100:]})
    later.to_csv(tmp_path / "labels.csv", index=False)
    (tmp_path / "retrain.log").write_text("a failed run's stderr\n")
    run = cli("runs", "list", "--json").json()[0]["id"]
    yield {
        "url": server.url,
        "metrics": metrics,
        "NAME": "wine",
        "VERSION": "1",
        "RUN": run,
        "LOG": str(tmp_path / "retrain.log"),
    }
    server.stop()


def substitute(command: str, setting: dict[str, str]) -> str:
    url = setting["url"]
    for placeholder in ("http://HOST:PORT", "http://HOST", "HOST:PORT", "HOST"):
        command = command.replace(placeholder, url)
    command = re.sub(
        r"\bNAME@(CANDIDATE|VERSION)\b", f"{setting['NAME']}@{setting['VERSION']}", command
    )
    for placeholder in ("NAME", "RUN", "LOG"):
        command = re.sub(rf"\b{placeholder}\b", setting[placeholder], command)
    return command.replace("--duration 10", "--duration 2")  # the same command, shorter


@dataclass
class Runner:
    """Runs each distinct command once: a plain ``dnnops`` command in this process (no
    interpreter to start), a pipeline or a ``curl`` in bash."""

    folder: Path
    home: Path
    cli: Callable[..., CliResult]
    done: dict[str, CliResult] = field(default_factory=dict)

    def __call__(self, command: str) -> CliResult:
        if command not in self.done:
            self.done[command] = self._run(command)
        return self.done[command]

    def _run(self, command: str) -> CliResult:
        if command.startswith("dnnops ") and not re.search(r"[|$<>;&]", command):
            return self.cli(*shlex.split(command)[1:])
        env = {**subprocess_env(self.home), "DNNOPS_ADMIN_TOKEN": ADMIN}
        done = subprocess.run(
            ["bash", "-c", command], cwd=self.folder, env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        return CliResult(done.returncode, done.stdout, done.stderr)


def test_every_command_of_every_runbook_runs_against_a_real_server(
    tmp_path: Path, home: Path, setting: dict[str, str], cli: Callable[..., CliResult]
) -> None:
    run = Runner(tmp_path, home, cli)
    failures = []
    for page in sorted(RUNBOOKS.glob("*.md")):
        text = page.read_text()
        for line in code_lines(text):
            failures += [f"{page.name}: {f}" for f in check_line(line, setting, run)]
        for span in inline_commands(text):
            failures += [f"{page.name}: {f}" for f in check_span(span, setting, run)]
    assert failures == [], "\n".join(failures)


def check_line(line: str, setting: dict[str, str], run: Runner) -> list[str]:
    """A code block's command exits 0 (or 1: "found a problem"); a metric it greps for
    exists on the server."""
    command = substitute(line, setting)
    failures = [
        f"no metric matches {name!r}"
        for pattern in re.findall(r"/metrics \| grep(?: -E)? '([^']+)'", command)
        for name in alternatives(pattern)
        if not re.search(name, setting["metrics"])
    ]
    if "grep" in command:  # a filter that finds nothing is an answer too
        command = command.split(" | grep")[0]
    done = run(command)
    said = done.out + done.err
    if done.code not in (0, 1) or any(word in said for word in BROKEN):
        failures.append(f"{command!r} -> {done.code}: {said[-400:]}")
    return failures


def alternatives(pattern: str) -> list[str]:
    """A regex's top-level alternatives (``a|b_(c|d)`` -> ``a``, ``b_(c|d)``)."""
    parts, depth, current = [], 0, ""
    for char in pattern:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "|" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def check_span(span: str, setting: dict[str, str], run: Runner) -> list[str]:
    """A command named in passing exists (``--help``); an action with its arguments runs,
    refused cleanly at worst."""
    command = substitute(span, setting)
    words = shlex.split(command)
    if words[0] == "dnnops" and len(words) <= 3 and all(w.isidentifier() for w in words[1:]):
        done = run(command + " --help")
        return [] if done.code == 0 else [f"{command!r} is no command: {done.err[-300:]}"]
    done = run(command)
    said = done.out + done.err
    if done.code not in (0, 1, 2) or any(word in said for word in BROKEN):
        return [f"{command!r} -> {done.code}: {said[-400:]}"]
    return []
