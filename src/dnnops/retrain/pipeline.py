"""The retraining pipeline: observe, decide, build the next training set, train, judge the
challenger against the champion on the newest labeled window, register, start a canary.

It reads top to bottom in ``retrain``; each step is a named helper. The canary is only
started, never promoted here: the rollout controller in the server decides that on live
traffic, like for any other version.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dnnops.config import ProjectConfig
from dnnops.data.preprocess import apply_preprocessing
from dnnops.data.schema import Schema, category_key
from dnnops.data.sources import load_frame
from dnnops.errors import DnnopsError
from dnnops.home import Home
from dnnops.inference.predictor import Predictor
from dnnops.monitor.report import build_report
from dnnops.registry.db import open_engine
from dnnops.registry.from_run import candidate_from_run, check_before_training
from dnnops.registry.loader import load_version
from dnnops.registry.open import database_url, open_registry, open_runs
from dnnops.registry.publish import publish
from dnnops.registry.starting import version_weights
from dnnops.registry.versions import Registry, VersionNotFound, VersionRecord
from dnnops.retrain.labeled import TS, labeled_rows, new_images, split_newest
from dnnops.retrain.triggers import Decision, Observed, decide
from dnnops.rollout.begin import begin_rollout
from dnnops.rollout.store import RolloutStore
from dnnops.train.pipeline import train_project
from dnnops.train.progress import ProgressSink

MIN_HOLDOUT = 20
"""Fewer labeled rows than this cannot tell a challenger from a champion."""


@dataclass
class RetrainOutcome:
    observed: Observed | None
    decision: Decision
    outcome: str
    """What happened, in words: the last step reached and why it stopped there."""
    champion: int | None = None
    challenger: int | None = None
    run_id: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)
    """A classifier's champion and challenger on the newest labeled window."""
    mae: dict[str, float] = field(default_factory=dict)
    """A regressor's champion and challenger on the newest labeled window (lower wins)."""
    rollout_id: int | None = None
    started_from: str = "scratch"
    """The challenger's starting weights: the champion's (``retrain.warm_start``) or none."""
    replay: dict[str, Any] | None = None
    """The challenger's replay on the logged production inputs (``passed``, ``message``),
    when one was run before its canary."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Vet = Callable[[VersionRecord], dict[str, Any]]
"""Replays a challenger on the logged production inputs before its canary: ``passed``
(None when it could not run) and ``message``. The CLI passes ``batch.replay``'s (a layer
above this one)."""


def retrain(
    config: ProjectConfig,
    home: Home,
    force: bool = False,
    *,
    now: float | None = None,
    progress: ProgressSink | None = None,
    vet: Vet | None = None,
) -> RetrainOutcome:
    moment = time.time() if now is None else now
    registry = open_registry(home)
    champion = _champion(registry, config.name)
    observed = observe(config, home, registry, champion=champion, now=moment)
    decision = decide(observed, config.retrain)
    if not (decision.retrain or force):
        why = decision.blocked or "no trigger fired"
        return RetrainOutcome(observed, decision, f"not retrained: {why}", _number(champion))
    result = _train_challenger(
        config,
        home,
        registry,
        champion=champion,
        observed=observed,
        decision=decision,
        progress=progress,
        vet=vet,
    )
    registry.audit("retrain", config.name, result.to_dict())
    return result


def observe(
    config: ProjectConfig,
    home: Home,
    registry: Registry,
    *,
    champion: VersionRecord | None,
    now: float,
) -> Observed:
    """Drift and accuracy of the production version over ``retrain.drift_window``, and
    the labels captured since it was registered."""
    if champion is None:
        return Observed(None, None, 0, None)
    report = build_report(
        registry,
        home.logs_dir,
        config.retrain.drift_window,
        monitor=config.monitor,
        slo=config.slo,
        now=now,
    )
    section = report.section(champion.model, str(champion.version))
    drift = section.drift.share if section and section.drift else None
    quality = section.quality if section else None
    metrics = quality.metrics if quality else {}
    born = _timestamp(champion.created_at)
    fresh = _fresh_rows(config, home, load_version(registry, champion).schema, since=born)
    estimate = section.estimated_accuracy if section else None
    return Observed(
        drift,
        metrics.get("accuracy"),
        fresh,
        now - born,
        metrics.get("mae"),
        estimated_accuracy=(
            estimate.value
            if estimate is not None and (estimate.reliable or estimate.method == "agreement")
            else None
        ),
    )


def _train_challenger(
    config: ProjectConfig,
    home: Home,
    registry: Registry,
    *,
    champion: VersionRecord | None,
    observed: Observed | None,
    decision: Decision,
    progress: ProgressSink | None,
    vet: Vet | None = None,
) -> RetrainOutcome:
    result = RetrainOutcome(observed, decision, "", _number(champion))
    learn, judge, rows = _next_training_set(config, home, registry, champion=champion)
    result.rows = rows
    data_file = _write_training_set(home, learn, config)
    update: dict[str, Any] = {"data": config.data.model_copy(update={"source": str(data_file)})}
    if config.retrain.warm_start and champion is not None:
        update["train"] = config.train.model_copy(update={"init_from": champion.ref})
        result.started_from = champion.ref
    next_config = config.model_copy(update=update)
    check_before_training(next_config)
    trained = train_project(
        next_config,
        home.runs_dir,
        open_runs(home),
        resume=None,
        progress=progress,
        weights=version_weights(registry),
    )
    published = publish(registry, candidate_from_run(trained), config.evaluate)
    result.run_id, result.challenger = trained.run_id, published.record.version
    if champion is None:
        result.outcome = "registered the first version (no champion to compare with)"
        return result
    if len(judge) < MIN_HOLDOUT:
        result.outcome = (
            f"registered v{result.challenger}; only {len(judge)} recent labeled rows, "
            f"{MIN_HOLDOUT} needed to compare it with the champion: no canary"
        )
        return result
    scores = {
        "champion": _score(registry, champion, judge, target=config.data.target),
        "challenger": _score(registry, published.record, judge, target=config.data.target),
    }
    if config.task == "regression":
        result.mae = scores
    else:
        result.accuracy = scores
    result.outcome, result.rollout_id = _hand_over(
        config, home, registry, challenger=published.record, result=result, vet=vet
    )
    return result


def _next_training_set(
    config: ProjectConfig, home: Home, registry: Registry, *, champion: VersionRecord | None
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """(original data plus the older captured rows, the newest captured rows, counts)."""
    if champion is None:
        original = _source_frame(config)
        return original, original.iloc[:0], {"original": len(original), "captured": 0}
    image = config.data.image
    if image is not None:  # the photos filed since the champion are its new labels
        born = _timestamp(champion.created_at)
        original, captured = new_images(_source_frame(config), image.column, since=born)
    else:  # every labelled log row, on top of the source
        original = _source_frame(config)
        schema = load_version(registry, champion).schema
        captured = labeled_rows(home.logs_dir, config.name, schema, target=config.data.target)
    learn, judge = split_newest(captured, config.retrain.holdout)
    combined = pd.concat([original, learn.drop(columns=[TS])], ignore_index=True)
    counts = {
        "original": len(original),
        "captured": len(captured),
        "trained_on_captured": len(learn),
        "holdout": len(judge),
    }
    return combined, judge, counts


def _source_frame(config: ProjectConfig) -> pd.DataFrame:
    image = config.data.image
    column = image.column if image is not None else None
    return load_frame(config.data.source, image=column, target=config.data.target)


def _fresh_rows(config: ProjectConfig, home: Home, schema: Schema, *, since: float) -> int:
    """Labelled rows captured since ``since``: an image model's photos filed in its source
    since, any other model's labelled log rows."""
    image = config.data.image
    if image is not None:
        return len(new_images(_source_frame(config), image.column, since=since)[1])
    target = config.data.target
    return len(labeled_rows(home.logs_dir, config.name, schema, target=target, since=since))


def _write_training_set(home: Home, frame: pd.DataFrame, config: ProjectConfig) -> Path:
    folder = home.root / "retrain" / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.parquet"
    if config.data.image is not None:  # absolute paths, as text: the table names the files
        frame = frame.assign(**{config.data.image.column: frame[config.data.image.column].map(str)})
    frame.to_parquet(path, index=False)
    return path


def _score(registry: Registry, record: VersionRecord, rows: pd.DataFrame, *, target: str) -> float:
    """Accuracy of a classifier, or mean absolute error of a regressor, on ``rows``."""
    loaded = load_version(registry, record)
    features = rows[loaded.schema.feature_names]
    x = apply_preprocessing(loaded.preprocessor, features)
    predictor = Predictor.create(loaded, 1)
    outputs = predictor(x)
    if loaded.is_regression:
        values = rows[target].to_numpy(dtype="float64")
        return float(np.abs(outputs.reshape(-1).astype("float64") - values).mean())
    predicted = predictor.answers(outputs)
    truth = [category_key(v) for v in rows[target]]
    return float(np.mean([category_key(p) == t for p, t in zip(predicted, truth, strict=True)]))


def _hand_over(
    config: ProjectConfig,
    home: Home,
    registry: Registry,
    *,
    challenger: VersionRecord,
    result: RetrainOutcome,
    vet: Vet | None = None,
) -> tuple[str, int | None]:
    """Start the canary when the challenger beats the champion, passed its gates and (when
    a replay runs) passed its replay on the logged production inputs."""
    if challenger.gates_passed is False:
        return f"registered v{challenger.version}, but it failed its evaluation gates", None
    if result.mae:
        ours, theirs = result.mae["challenger"], result.mae["champion"]
        beats, score = ours < theirs, f"MAE {ours:.4g} vs {theirs:.4g}"
    else:
        ours, theirs = result.accuracy["challenger"], result.accuracy["champion"]
        beats, score = ours > theirs, f"{ours:.1%} vs {theirs:.1%}"
    if not beats:
        return (
            f"registered v{challenger.version}; on the newest labels it does not beat the "
            f"champion ({score}): no canary",
            None,
        )
    if vet is not None:
        result.replay = vet(challenger)
        passed = result.replay.get("passed")
        if passed is False or (passed is None and config.rollout.replay == "required"):
            return (
                f"v{challenger.version} beats the champion ({score}), but its replay on the "
                f"logged production inputs says no: {result.replay.get('message')}: no canary",
                None,
            )
    store = RolloutStore(open_engine(database_url(home, "a retraining's rollout")))
    rollout = begin_rollout(
        store,
        registry,
        config.name,
        model=config.name,
        ref=str(challenger.version),
        policy=config.rollout,
        approval=config.retrain.approval,
    )
    held = " (held for approval: dnnops rollout start)" if rollout.status != "running" else ""
    return (
        f"v{challenger.version} beats the champion ({score}): canary {rollout.id} started{held}",
        rollout.id,
    )


def _champion(registry: Registry, model: str) -> VersionRecord | None:
    try:
        return registry.resolve(model, "production")
    except VersionNotFound:
        return None
    except DnnopsError:
        raise


def _number(record: VersionRecord | None) -> int | None:
    return None if record is None else record.version


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
