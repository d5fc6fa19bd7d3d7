"""One training run from the project file to final weights: data, model, loop, test metrics.

A run lives in ``<home>/runs/<run_id>/``: the config snapshot it was started with (a
resume uses it, not the current file), the data artifacts serving needs (schema,
preprocessing, reference profile), checkpoints, and finally ``model.safetensors``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import torch
import yaml
from torch import nn

from dnnops.config import AugmentConfig, ProjectConfig, parse_config
from dnnops.data.prepare import PreparedData, prepare_data, save_data_artifacts
from dnnops.errors import (
    CheckpointError,
    ConfigError,
    RunNotFound,
    TrainingInterrupted,
    UsageError,
)
from dnnops.files import atomic_write, sha256_file
from dnnops.gpu import torch_device
from dnnops.models.build import ModelSpec, build_model
from dnnops.models.weights import load_weights, save_weights
from dnnops.train.augment import Augmenter, ImageStats
from dnnops.train.checkpoint import load_latest
from dnnops.train.distributed import (
    World,
    barrier,
    broadcast_text,
    init_world,
    local_rank,
    shutdown,
)
from dnnops.train.loop import LoopContext, Trainer, TrainState, evaluate_arrays
from dnnops.train.objective import Objective
from dnnops.train.progress import ProgressSink, SilentProgress
from dnnops.train.recorder import NullRecorder, RunRecorder
from dnnops.train.signals import stop_on_signals
from dnnops.train.starting import (
    StartingWeights,
    StartReport,
    WeightsResolver,
    apply_starting_weights,
    freeze_backbone,
    starting_weights,
)


class RunCreator(RunRecorder, Protocol):
    def create(
        self,
        run_id: str,
        project: str,
        params: dict[str, Any],
        *,
        dataset_sha256: str,
        run_dir: Path,
        world_size: int = 1,
    ) -> None: ...


class _NullCreator(NullRecorder):
    def create(
        self,
        run_id: str,
        project: str,
        params: dict[str, Any],
        *,
        dataset_sha256: str,
        run_dir: Path,
        world_size: int = 1,
    ) -> None:
        return None


@dataclass(frozen=True)
class TrainOutcome:
    run_id: str
    run_dir: Path
    config: ProjectConfig
    spec: ModelSpec
    metrics: dict[str, float]
    history: list[dict[str, float]]
    dataset_sha256: str
    weights_sha256: str
    stopped_early: bool
    seconds: float
    model: nn.Module
    """The final (or best) weights, in eval mode."""
    prepared: PreparedData
    start: StartReport | None = None
    """The weights it started from (``train.init_from``), for its lineage."""


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def train_project(
    config: ProjectConfig | None,
    runs_dir: Path,
    recorder: RunCreator | None = None,
    *,
    resume: str | None = None,
    progress: ProgressSink | None = None,
    before_fit: Callable[[ProjectConfig, PreparedData], None] | None = None,
    weights: WeightsResolver | None = None,
) -> TrainOutcome:
    """Train ``config`` (or continue run ``resume`` with its own saved config) and return
    what it produced. ``before_fit`` sees the prepared data before the first step: checks
    that would otherwise only fail after training (compatibility with production).
    ``weights`` resolves a ``train.init_from: NAME@REF`` (the registry's).

    Under torchrun every rank calls this; only rank 0 writes files or records.
    """
    started = time.perf_counter()
    wanted = config.train.device if config is not None else "auto"  # a resume: its own
    device = torch_device(wanted, field="train.device", local_rank=local_rank())
    world = init_world(gpus=device.type == "cuda")
    try:
        active: RunCreator = (
            recorder if (recorder is not None and world.is_main) else _NullCreator()
        )
        run_id, run_dir, config = _open_run(config, runs_dir, resume, world=world)
        device = torch_device(config.train.device, field="train.device", local_rank=local_rank())
        if config.train.precision == "fp16" and device.type != "cuda":
            raise ConfigError(
                f"train.precision: fp16 needs a CUDA device (train.device is {device}); "
                "use bf16 on the CPU"
            )
        if device.type == "cuda":  # deterministic cuBLAS (use_deterministic_algorithms)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if config.train.threads:
            torch.set_num_threads(config.train.threads)
        prepared = prepare_data(config.data, config.model, config.task)
        if before_fit is not None and world.is_main:
            before_fit(config, prepared)
        target = prepared.schema.target
        scale = (target.mean or 0.0, target.std or 1.0) if target and target.is_regression else None
        spec = ModelSpec.from_config(
            config.model,
            prepared.preprocessor.input_shape,
            prepared.schema.output_width,
            target_scale=scale,
            category_blocks=prepared.preprocessor.category_blocks,
            vocab_size=prepared.preprocessor.vocab_size,
        )
        if resume is None:
            _start_files(
                run_dir, run_id, config, spec=spec, prepared=prepared, world=world, recorder=active
            )
        else:
            _check_same_data(run_dir, prepared.fingerprint)
            active.status(run_id, "running")
        barrier(world)
        ctx = LoopContext(
            run_id,
            run_dir / "checkpoints",
            world,
            active,
            progress or SilentProgress(),
            device=device,
        )
        start = _starting_point(config, run_dir, resuming=resume is not None, resolve=weights)
        state, trainer = _fit(
            config, spec, prepared, ctx=ctx, resuming=resume is not None, start=start
        )
        outcome = _finish(
            trainer,
            state,
            config,
            spec=spec,
            prepared=prepared,
            run_dir=run_dir,
            ctx=ctx,
            seconds=time.perf_counter() - started,
        )
        return replace(outcome, start=_start_report(run_dir))
    finally:
        shutdown(world)


def objective_of(config: ProjectConfig, spec: ModelSpec) -> Objective:
    """The loss for the project's task (train.loss: auto picks by task)."""
    if config.task == "classification":
        if config.train.loss not in ("auto", "cross_entropy"):
            raise UsageError(f"train.loss: {config.train.loss} is for task: regression")
        return Objective()
    if config.train.loss == "cross_entropy":
        raise UsageError("train.loss: cross_entropy is for task: classification; use mse or huber")
    rule = config.train.early_stopping
    if rule is not None and rule.metric == "valid_accuracy":
        raise UsageError(
            "train.early_stopping.metric: valid_accuracy has no meaning for "
            "task: regression; use valid_loss"
        )
    std = spec.target_scale[1] if spec.target_scale else 1.0
    return Objective(
        task="regression", loss="huber" if config.train.loss == "huber" else "mse", scale=std
    )


def _open_run(
    config: ProjectConfig | None, runs_dir: Path, resume: str | None, *, world: World
) -> tuple[str, Path, ProjectConfig]:
    if resume is None:
        if config is None:
            raise UsageError("nothing to train: give a project file, or --resume RUN")
        run_id = broadcast_text(new_run_id(), world)
        return run_id, runs_dir / run_id, config
    run_dir = runs_dir / resume
    snapshot = run_dir / "config.yaml"
    if not snapshot.is_file():
        raise RunNotFound(f"no run {resume!r} under {runs_dir}; list runs with: dnnops runs list")
    if (run_dir / "model.safetensors").is_file():
        raise CheckpointError(
            f"run {resume} already finished; there is nothing to resume. If it has no "
            f"version yet, register it with: dnnops models register {resume}"
        )
    saved = parse_config(yaml.safe_load(snapshot.read_text(encoding="utf-8")), str(snapshot))
    return resume, run_dir, saved


def _start_files(
    run_dir: Path,
    run_id: str,
    config: ProjectConfig,
    *,
    spec: ModelSpec,
    prepared: PreparedData,
    world: World,
    recorder: RunCreator,
) -> None:
    if not world.is_main:
        return
    params = config.model_dump(mode="json", by_alias=True)
    save_data_artifacts(prepared, run_dir / "data")
    atomic_write(run_dir / "config.yaml", yaml.safe_dump(params, sort_keys=False).encode())
    run_info = {
        "run_id": run_id,
        "project": config.name,
        "spec": spec.to_dict(),
        "dataset_sha256": prepared.fingerprint,
        "world_size": world.size,
    }
    atomic_write(run_dir / "run.json", json.dumps(run_info, indent=2).encode())
    recorder.create(
        run_id,
        config.name,
        params,
        dataset_sha256=prepared.fingerprint,
        run_dir=run_dir,
        world_size=world.size,
    )


def _check_same_data(run_dir: Path, fingerprint: str, *, action: str = "resuming") -> None:
    recorded = json.loads((run_dir / "run.json").read_text())["dataset_sha256"]
    if recorded != fingerprint:
        raise CheckpointError(
            f"the data changed since run {run_dir.name} started (SHA-256 {fingerprint[:12]}… "
            f"instead of {recorded[:12]}…); {action} would not reproduce the run: "
            "start a new one"
        )


def augmenter_of(config: ProjectConfig, prepared: PreparedData, *, rank: int) -> Augmenter | None:
    """The batches' augmentation as ``train.augment`` asks, for this run's input."""
    augment = config.train.augment
    if augment == AugmentConfig():
        return None
    medium = prepared.preprocessor.medium
    image = None
    if medium is not None and medium.image is not None:
        image = ImageStats(medium.image.mean, medium.image.std)
    text = medium is not None and medium.text is not None
    return Augmenter(augment, seed=config.train.seed, rank=rank, image=image, text=text)


log = logging.getLogger(__name__)
START_FILE = "start.json"
"""What the run started from (``StartReport``), beside its config: a resume reads it."""


def _starting_point(
    config: ProjectConfig, run_dir: Path, *, resuming: bool, resolve: WeightsResolver | None
) -> StartingWeights | None:
    """The starting weights of a new run (``train.init_from``); a resumed run starts from
    its checkpoint instead."""
    wanted = config.train.init_from
    if wanted is None or resuming:
        return None
    if config.model.ensemble > 1:
        raise ConfigError("train.init_from loads one network; set model.ensemble: 1")
    return starting_weights(wanted, resolve)


def _start_report(run_dir: Path) -> StartReport | None:
    path = run_dir / START_FILE
    if not path.is_file():
        return None
    return StartReport(**json.loads(path.read_text(encoding="utf-8")))


def _fit(
    config: ProjectConfig,
    spec: ModelSpec,
    prepared: PreparedData,
    *,
    ctx: LoopContext,
    resuming: bool,
    start: StartingWeights | None = None,
) -> tuple[TrainState, Trainer]:
    torch.manual_seed(config.train.seed)
    if ctx.device.type == "cuda":
        # CUDA kernels (cuBLAS, scatter) may race; the CPU kernels these models use do not
        # (the resume tests check bit-exact weights on the CPU). The call imports
        # torch._inductor: 1.4 s of every CPU training's start, measured, for nothing.
        torch.use_deterministic_algorithms(True)
    model = build_model(spec)
    freeze = config.train.freeze == "backbone"
    if start is not None:
        report = apply_starting_weights(model, start, freeze=freeze)
        if ctx.world.is_main:
            run_dir = ctx.checkpoint_dir.parent
            atomic_write(run_dir / START_FILE, json.dumps(report.to_dict(), indent=2).encode())
        log.info(
            "started from %s: %d tensors loaded, %d fresh%s",
            report.origin,
            report.loaded,
            len(report.fresh),
            f", {report.frozen} frozen" if report.frozen else "",
        )
    elif resuming and freeze:
        freeze_backbone(model)  # requires_grad is not in a checkpoint
    with stop_on_signals() as flag:
        trainer = Trainer(
            model,
            config.train,
            prepared.train,
            valid=prepared.valid,
            ctx=replace(ctx, stop=flag),
            objective=objective_of(config, spec),
            augment=augmenter_of(config, prepared, rank=ctx.world.rank),
        )
        if resuming:
            trainer.restore(load_latest(ctx.checkpoint_dir))
        try:
            return trainer.fit(), trainer
        except TrainingInterrupted:
            raise
        except Exception as exc:
            ctx.recorder.status(ctx.run_id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise


def _finish(
    trainer: Trainer,
    state: TrainState,
    config: ProjectConfig,
    *,
    spec: ModelSpec,
    prepared: PreparedData,
    run_dir: Path,
    ctx: LoopContext,
    seconds: float,
) -> TrainOutcome:
    test = prepared.test
    objective = trainer.objective
    test_loss, test_score = evaluate_arrays(
        trainer.model, torch.from_numpy(test.x), torch.from_numpy(test.y), objective=objective
    )
    last = state.history[-1] if state.history else {}
    score = objective.score_name
    metrics = {
        "test_loss": test_loss,
        f"test_{score}": test_score,
        "valid_loss": last.get("valid_loss", float("nan")),
        f"valid_{score}": last.get(f"valid_{score}", float("nan")),
        "epochs": float(state.epoch),
        "steps": float(state.step),
    }
    weights_sha256 = ""
    if ctx.world.is_main:
        weights_sha256 = save_weights(trainer.model, run_dir / "model.safetensors")
        atomic_write(run_dir / "metrics.json", json.dumps(metrics, indent=2).encode())
        ctx.recorder.status(ctx.run_id, "finished", metrics=metrics, weights_sha256=weights_sha256)
    return TrainOutcome(
        run_id=ctx.run_id,
        run_dir=run_dir,
        config=config,
        spec=spec,
        metrics=metrics,
        history=state.history,
        dataset_sha256=prepared.fingerprint,
        weights_sha256=weights_sha256,
        stopped_early=state.stopped_early,
        seconds=seconds,
        model=trainer.model.eval(),
        prepared=prepared,
    )


def finished_run(runs_dir: Path, run_id: str) -> TrainOutcome:
    """A finished run rebuilt from its folder (config snapshot, data, final weights), so it
    can be registered later: a failure at registration never loses the training."""
    run_dir = runs_dir / run_id
    snapshot, weights = run_dir / "config.yaml", run_dir / "model.safetensors"
    if not snapshot.is_file():
        raise RunNotFound(f"no run {run_id!r} under {runs_dir}; list runs with: dnnops runs list")
    if not weights.is_file():
        raise CheckpointError(
            f"run {run_id} has no final weights (it did not finish); "
            f"continue it with: dnnops train --resume {run_id}"
        )
    config = parse_config(yaml.safe_load(snapshot.read_text(encoding="utf-8")), str(snapshot))
    info = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    prepared = prepare_data(config.data, config.model, config.task)
    _check_same_data(run_dir, prepared.fingerprint, action="registering it")
    spec = ModelSpec.from_dict(info["spec"])
    model = build_model(spec)
    load_weights(model, weights)
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return TrainOutcome(
        run_id=run_id,
        run_dir=run_dir,
        config=config,
        spec=spec,
        metrics=metrics,
        history=[],
        dataset_sha256=prepared.fingerprint,
        weights_sha256=sha256_file(weights),
        stopped_early=False,
        seconds=0.0,
        model=model.eval(),
        prepared=prepared,
    )
