"""The quickstart story: train and serve v1, the camera changes, drift and an accuracy drop
are caught, retraining builds v2 from the captured labels, v2 goes through a canary and is
promoted, a broken v3 is rolled back on its own. Every step uses the same code paths as
the commands (train, publish, the server with its rollout controller, monitor, retrain).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from rich.console import Console
from sklearn.datasets import load_digits

from dnnops.config import ProjectConfig, parse_config
from dnnops.console import rows_table
from dnnops.dashboard.static_report import write_static_report
from dnnops.data.preprocess import apply_preprocessing
from dnnops.errors import UsageError
from dnnops.examples import example_text
from dnnops.home import Home
from dnnops.inference.predictor import Predictor
from dnnops.monitor.judgements.alerts import MONITOR_KINDS, alerts_from_report, deliver
from dnnops.monitor.judgements.report_types import EstimatedAccuracy, Report
from dnnops.monitor.report import build_report
from dnnops.quickstart.camera import new_camera
from dnnops.quickstart.replay import Replayed, replay
from dnnops.registry.alerts import AlertStore, StoredAlert
from dnnops.registry.db import open_engine
from dnnops.registry.from_run import candidate_from_run
from dnnops.registry.loader import load_version
from dnnops.registry.open import open_database_registry, open_runs
from dnnops.registry.publish import Published, publish
from dnnops.retrain.pipeline import RetrainOutcome, retrain
from dnnops.rollout.begin import begin_rollout
from dnnops.rollout.policy import RolloutState
from dnnops.rollout.store import RolloutStore
from dnnops.serve.launch import BackgroundServer, build_state
from dnnops.serve.state import ServerState
from dnnops.train.pipeline import train_project

TRAIN_ROWS = 1200
"""Digits the first model learns from; the other 597 are the live traffic it never saw."""
STAGES = 6
STORY_POLICY = {
    "rollout": {
        "interval": "2s",
        "min_requests": 60,
        "steps": [25, 50, 100],
        "failure_threshold": 2,
        # The story's client and server share one process (and, in CI, a shared machine),
        # and at 100% the stable's latencies come from an earlier window: a ~1 ms model's
        # p99 there moves by tens of ms with the machine, not the model. The story is about
        # drift and accuracy; the latency gate is shown in tests/rollout.
        "latency_slack": "30ms",
    },
    # The template's gates (accuracy 0.95, calibration error 0.05) leave v2 no margin here:
    # its test split is 113 rows, a third of them from the new camera, and the same story
    # trained v2 to 0.965 / 0.034 with one torch thread against 0.987 / 0.017 with eight
    # (float sums in another order), so a machine with another core count failed v2's gates
    # in CI. These still fail the broken v3 (accuracy 0.125) by a wide margin.
    "evaluate": {
        "gates": [
            {"metric": "accuracy", "min": 0.9},
            {"metric": "expected_calibration_error", "max": 0.08},
        ],
        "noise_std": 0.1,
    },
    "retrain": {
        "drift_share": 0.5,
        "drift_window": "10m",
        "accuracy_below": 0.9,
        "min_new_labels": 200,
        "approval": False,
    },
}


@dataclass
class Story:
    """What happened, for the final table."""

    config_path: Path
    versions: dict[int, str] = field(default_factory=dict)
    """Version -> how it was made."""
    traffic: Replayed = field(default_factory=Replayed)
    retrained: RetrainOutcome | None = None
    rollouts: list[RolloutState] = field(default_factory=list)
    alerts: list[StoredAlert] = field(default_factory=list)
    report: Path | None = None
    """The dashboard of the whole story as one offline HTML file."""
    estimated_accuracy: dict[str, float | None] = field(default_factory=dict)
    """CBPE from calibrated confidence: on the old camera, and on the new one before any
    of its labels arrived."""


@dataclass
class _Scene:
    """What every stage acts on: the running server and the story so far."""

    story: Story
    chapter: _Chapters
    state: ServerState
    url: str
    config: ProjectConfig
    home: Home
    live: tuple[np.ndarray, np.ndarray]

    def replay(self, camera_seed: int | None, *, labeled: bool = True, **until: Any) -> Replayed:
        """Traffic from the live digits (labeled unless told), through the new camera when a
        seed is given."""
        x, y = self.live
        shown = x if camera_seed is None else new_camera(x, seed=camera_seed)
        return _replay(
            self.url,
            self.config.name,
            shown,
            y=y,
            story=self.story,
            seed=camera_seed or 0,
            labeled=labeled,
            **until,
        )

    def drive(self, rollout_id: int, camera_seed: int) -> None:
        """Send new-camera traffic until the rollout is promoted or rolled back."""
        finished = _rollout_finished(self.state, self.config.name, rollout_id)
        served = self.replay(camera_seed, until=finished)
        self.chapter.note(_traffic_line(served) + "; " + _rollout_line(self.home, rollout_id))


def run_story(home: Home, console: Console) -> Story:
    home = replace(home, server_url=None)  # the story's own home, never a team's server
    if any(m["name"] == "digits" for m in open_database_registry(home).models()):
        raise UsageError(
            f"{home.root} already holds a model 'digits' (an earlier quickstart?); the story "
            "needs an empty home: dnnops quickstart --home NEW_FOLDER (make demo starts over "
            "in .dnnops-demo/)"
        )
    # The controller's own log lines would repeat what the chapters print; alerts still show.
    logging.getLogger("dnnops.rollout").setLevel(logging.ERROR)
    config, config_path, live = _prepare(home)
    story = Story(config_path)
    began = time.time()
    chapter = _Chapters(console)
    chapter("train v1", "data, schema, split, preprocessing, checkpoints, ONNX, gates, registry")
    first = _train_and_publish(config, home)
    story.versions[first.record.version] = "old camera"
    chapter.note(_published_line(first))
    state = build_state(home, config, [f"{config.name}@production"])
    with BackgroundServer(state) as url:
        scene = _Scene(story, chapter, state, url, config, home, live)
        _serve_and_drift(scene)
        _retrain_and_canary(scene)
        _broken_version(scene)
    story.rollouts = RolloutStore(open_engine(home.db_url)).history(config.name)
    story.alerts = AlertStore(open_engine(home.db_url)).list()
    chapter("summary", "versions, traffic, accuracy, alerts, decisions")
    story.report = write_static_report(
        config_path.parent / "dashboard.html",
        open_database_registry(home),
        home.logs_dir,
        endpoints=[config.name],
        window_s=time.time() - began + 5.0,
        monitor=config.monitor,
        slo=config.slo,
    )
    _print_summary(console, story, home, config=config, live=live)
    return story


# -- stages ------------------------------------------------------------------------------


def _serve_and_drift(scene: _Scene) -> None:
    chapter, config, home, state = scene.chapter, scene.config, scene.home, scene.state
    chapter("serve v1", f"{scene.url}: dynamic batching, prediction log, labels to /v1/feedback")
    started = time.time()
    before = scene.replay(None, instances=500)
    chapter.note(_traffic_line(before) + "; " + _monitor_line(state, config, home, since=started))
    old = _estimate(_report(state, config, home, since=started))
    chapter("the camera changes", "lower contrast, brighter background, sensor noise")
    shifted = time.time()
    # the new camera's first predictions, their labels not back yet: only the estimate knows
    unlabeled = scene.replay(1, instances=300, labeled=False)
    new = _estimate(_report(state, config, home, since=shifted))
    scene.story.estimated_accuracy = {
        "old camera": old.value if old else None,
        "new camera, before labels": new.value if new else None,
    }
    chapter.note(_traffic_line(unlabeled) + ", no labels yet; " + _estimate_line(old, new))
    chapter.note(_traffic_line(scene.replay(1, instances=900)) + ", labels sent")
    report = _report(state, config, home, since=shifted)
    firing = alerts_from_report(report, monitor=config.monitor)
    deliver(AlertStore(open_engine(home.db_url)).record(firing, MONITOR_KINDS).fresh, None)
    chapter.note(_monitor_line(state, config, home, since=shifted) + f"; {len(firing)} alert(s)")


def _retrain_and_canary(scene: _Scene) -> None:
    scene.chapter("retrain", "triggers, captured labels, challenger vs champion, canary")
    outcome = retrain(scene.config, scene.home)
    scene.story.retrained = outcome
    if outcome.challenger is not None:
        scene.story.versions[outcome.challenger] = "retrained on captured labels"
    scene.chapter.note(f"triggers: {'; '.join(outcome.decision.fired) or 'none'}")
    scene.chapter.note(outcome.outcome)
    if outcome.rollout_id is not None:
        scene.drive(outcome.rollout_id, camera_seed=2)


def _broken_version(scene: _Scene) -> None:
    config, home = scene.config, scene.home
    scene.chapter("a broken v3", "trained on shuffled labels, forced past its gates to a canary")
    broken = _train_and_publish(_shuffled(config, home), home)
    version = broken.record.version
    scene.story.versions[version] = "shuffled labels (broken)"
    scene.chapter.note(_published_line(broken))
    store = RolloutStore(open_engine(home.db_url))
    registry = scene.state.registry
    # its gates failed, so only a forced rollout (`rollout start --force`, audited) lets it
    # reach a canary: the story forces it to show the canary gates rolling it back
    rollout = begin_rollout(
        store,
        registry,
        config.name,
        model=config.name,
        ref=str(version),
        policy=config.rollout,
        force=True,
    )
    scene.drive(rollout.id, camera_seed=3)


# -- helpers -----------------------------------------------------------------------------


def _report(state: ServerState, config: ProjectConfig, home: Home, *, since: float) -> Report:
    window = max(time.time() - since, 1.0)
    return build_report(
        state.registry, home.logs_dir, window, monitor=config.monitor, slo=config.slo
    )


def _estimate(report: Report) -> EstimatedAccuracy | None:
    section = report.versions[0] if report.versions else None
    return section.estimated_accuracy if section else None


def _estimate_line(old: EstimatedAccuracy | None, new: EstimatedAccuracy | None) -> str:
    """Accuracy estimated before labels, before and after the change: from calibrated
    confidence, or from the agreement panel once the inputs left the training support."""
    if old is None or new is None:
        return "estimated accuracy: not enough predictions yet"
    if new.method == "agreement":
        now = f"{new.value:.1%} by agreement (the inputs shifted; confidence says {new.cbpe:.1%})"
    else:
        now = f"{new.cbpe:.1%} ({new.low:.1%}-{new.high:.1%})"
        now += "" if new.reliable else "; flagged unreliable: the inputs left the training support"
    return f"estimated accuracy before labels {now}, was {old.value:.1%} on the old camera"


def _monitor_line(state: ServerState, config: ProjectConfig, home: Home, *, since: float) -> str:
    """Drift and accuracy on labels since ``since``, as ``dnnops monitor report`` finds them."""
    report = _report(state, config, home, since=since)
    drift = report.drift
    section = report.versions[0] if report.versions else None
    quality = section.quality.metrics if section and section.quality else {}
    accuracy = quality.get("accuracy", float("nan"))
    slo = config.retrain.accuracy_below or 0.0
    verdict = "below" if accuracy < slo else "above"
    return (
        f"monitor: {drift.share if drift else 0.0:.0%} of features drifted, accuracy on labels "
        f"{accuracy:.1%} ({verdict} the {slo:.0%} objective)"
    )


class _Chapters:
    """One progress line per stage, with the time the previous one took."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.number = 0
        self.started = time.perf_counter()

    def __call__(self, title: str, detail: str) -> None:
        self.number += 1
        self.console.print(f"[bold]{self.number}/{STAGES} {title}[/]: {detail}")

    def note(self, text: str) -> None:
        elapsed = time.perf_counter() - self.started
        self.console.print(f"    {text}  [dim]({elapsed:.0f} s)[/]")


def _prepare(home: Home) -> tuple[ProjectConfig, Path, tuple[np.ndarray, np.ndarray]]:
    """Split the digits into the old camera's training file and the live traffic, and
    write the story's project file beside them."""
    folder = home.root / "quickstart"
    folder.mkdir(parents=True, exist_ok=True)
    frame = load_digits(as_frame=True).frame.sample(frac=1.0, random_state=0)
    train_part, live_part = frame.iloc[:TRAIN_ROWS], frame.iloc[TRAIN_ROWS:]
    source = folder / "digits-old-camera.parquet"
    train_part.to_parquet(source, index=False)
    raw = yaml.safe_load(example_text("digits"))
    raw["data"]["source"] = str(source)
    raw.update(STORY_POLICY)
    path = folder / "dnnops.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    config = parse_config(raw, str(path))
    features = live_part.drop(columns=["target"]).to_numpy(dtype="float64")
    return config, path, (features, live_part["target"].to_numpy())


def _shuffled(config: ProjectConfig, home: Home) -> ProjectConfig:
    frame = pd.read_parquet(config.data.source)
    frame["target"] = np.random.default_rng(0).permutation(frame["target"].to_numpy())
    path = home.root / "quickstart" / "digits-shuffled-labels.parquet"
    frame.to_parquet(path, index=False)
    return config.model_copy(update={"data": config.data.model_copy(update={"source": str(path)})})


def _train_and_publish(config: ProjectConfig, home: Home) -> Published:
    outcome = train_project(config, home.runs_dir, open_runs(home))
    return publish(open_database_registry(home), candidate_from_run(outcome), config.evaluate)


def _replay(
    url: str,
    model: str,
    x: np.ndarray,
    *,
    y: np.ndarray,
    story: Story,
    instances: int | None = None,
    until: Callable[[], bool] | None = None,
    seed: int = 0,
    labeled: bool = True,
) -> Replayed:
    done = asyncio.run(
        replay(url, model, x, y=y, instances=instances, until=until, seed=seed, labeled=labeled)
    )
    total = story.traffic
    total.requests += done.requests
    total.instances += done.instances
    total.statuses.update(done.statuses)
    total.versions.update(done.versions)
    return done


def _rollout_finished(state: ServerState, endpoint: str, rollout_id: int) -> Callable[[], bool]:
    def finished() -> bool:
        shown = state.endpoints[endpoint].rollout
        return shown is not None and shown.id == rollout_id and not shown.active

    return finished


def _traffic_line(done: Replayed) -> str:
    served = ", ".join(f"v{v}: {n}" for v, n in sorted(done.versions.items()))
    return (
        f"{done.instances} predictions in {done.requests} requests over {done.seconds:.1f} s "
        f"({served}), {done.errors()} errors"
    )


def _rollout_line(home: Home, rollout_id: int) -> str:
    rollout = RolloutStore(open_engine(home.db_url)).get(rollout_id)
    return f"rollout {rollout.id} of v{rollout.candidate}: {rollout.status} ({rollout.reason})"


def _published_line(published: Published) -> str:
    record = published.record
    accuracy = record.metrics.get("accuracy")
    gates = "passed" if record.gates_passed else "FAILED"
    shown = f"{accuracy:.1%}" if isinstance(accuracy, float) else "-"
    aliases = ", ".join(record.aliases) or "none"
    return f"registered {record.ref}: test accuracy {shown}, gates {gates}, aliases: {aliases}"


def offline_accuracy(
    home: Home, model: str, version: int, *, x: np.ndarray, y: np.ndarray
) -> float:
    """Accuracy of a registered version on rows it never saw (verified load, ONNX runner)."""
    registry = open_database_registry(home)
    loaded = load_version(registry, registry.resolve(model, version))
    frame = pd.DataFrame(x, columns=loaded.schema.feature_names)
    predictor = Predictor.create(loaded, 1)
    predicted = predictor.answers(predictor(apply_preprocessing(loaded.preprocessor, frame)))
    return float((predicted.astype("int64") == y).mean())


def _print_summary(
    console: Console,
    story: Story,
    home: Home,
    *,
    config: ProjectConfig,
    live: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = live
    shifted = new_camera(x, seed=9)
    registry = open_database_registry(home)
    served = sum(story.traffic.versions.values()) or 1
    rows = []
    for version, made in sorted(story.versions.items()):
        record = registry.resolve(config.name, version)
        rows.append(
            [
                f"v{version}",
                made,
                ", ".join(record.aliases) or record.status,
                f"{story.traffic.versions.get(str(version), 0) / served:.0%}",
                f"{offline_accuracy(home, config.name, version, x=x, y=y):.1%}",
                f"{offline_accuracy(home, config.name, version, x=shifted, y=y):.1%}",
            ]
        )
    console.print(
        rows_table(
            "versions (accuracy on the 597 digits no version trained on)",
            ["version", "how", "aliases / status", "traffic", "old camera", "new camera"],
            rows,
        )
    )
    decisions = [
        [f"rollout {r.id}", f"v{r.candidate} ({r.mode})", r.status, r.reason]
        for r in reversed(story.rollouts)
    ]
    if story.retrained is not None:
        decisions.insert(
            0, ["retrain", "triggers", "ran", "; ".join(story.retrained.decision.fired)]
        )
    console.print(rows_table("decisions", ["what", "subject", "result", "why"], decisions))
    alerts = [[a.severity, a.kind, a.status, a.summary] for a in story.alerts]
    console.print(rows_table("alerts", ["severity", "kind", "status", "summary"], alerts))
    console.print(f"the story's dashboard: {story.report} (offline HTML, three views)")
    where = f"--home {home.root}"
    console.print(
        f"next: dnnops serve -c {story.config_path} {where} then open /dashboard?since=5m | "
        f"dnnops monitor report --since 1h -c {story.config_path} {where} | "
        f"dnnops rollout status {config.name} {where}"
    )
