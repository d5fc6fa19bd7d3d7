"""Run a study: each trial trains the project with sampled values as an ordinary run, is
pruned when its validation score trails the median of earlier trials at the same epoch,
and the best trial's run is registered like a training.

Several processes (on several hosts, with PostgreSQL) running ``dnnops tune`` on one
study add trials to it together: the storage, not a process, holds the study.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dnnops.config import ParamSpace, ProjectConfig
from dnnops.errors import ConfigError, UsageError
from dnnops.home import Home
from dnnops.registry.db import open_engine
from dnnops.registry.from_run import candidate_from_run, check_before_training
from dnnops.registry.open import database_url, open_registry
from dnnops.registry.publish import Published, publish
from dnnops.registry.runs import RunStore
from dnnops.registry.study_db import study_location
from dnnops.registry.versions import VersionNotFound
from dnnops.train.pipeline import finished_run, train_project
from dnnops.train.progress import ProgressSink
from dnnops.train.recorder import RunStatus
from dnnops.tune.space import apply_values, check_space, default_space, sample
from dnnops.tune.storage import tuning_storage

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class TrialResult:
    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    run_id: str | None
    pruned_at: int | None = None
    """The epoch a pruned trial stopped after."""


@dataclass(frozen=True)
class TuneOutcome:
    study: str
    storage: str
    metric: str
    trials: list[TrialResult]
    best: TrialResult | None
    published: Published | None
    note: str
    """What happened to the best trial's run: registered, registered already, or where."""


@dataclass(frozen=True)
class TuneRequest:
    trials: int | None = None
    timeout_s: float | None = None
    storage_url: str | None = None
    study: str | None = None


def tune_project(
    config: ProjectConfig,
    home: Home,
    request: TuneRequest,
    *,
    progress: ProgressSink | None = None,
    on_trial: Callable[[TrialResult], None] | None = None,
) -> TuneOutcome:
    """Run ``request.trials`` more trials (or until ``request.timeout_s``) of the study,
    then register its best trial's run."""
    import optuna

    space = config.tune.space or default_space(config)
    check_space(config, space)
    check_before_training(config)
    _check_metric(config)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=request.study or config.name,
        storage=tuning_storage(home.db_url, request.storage_url),
        sampler=optuna.samplers.TPESampler(
            seed=config.tune.seed, n_startup_trials=config.tune.startup_trials
        ),
        pruner=_pruner(config),
        direction=config.tune.direction,
        load_if_exists=True,
    )
    store = RunStore(open_engine(database_url(home, "dnnops tune")))
    objective = _Objective(config, space, home=home, store=store, progress=progress)

    def told(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if on_trial is not None:
            on_trial(_result(trial))

    study.optimize(
        objective,
        n_trials=request.trials,
        timeout=request.timeout_s,
        callbacks=[told],
        catch=(),
    )
    return _outcome(study, config, home=home, request=request)


def _check_metric(config: ProjectConfig) -> None:
    regression = config.task == "regression"
    if (config.tune.metric == "valid_accuracy" and regression) or (
        config.tune.metric == "valid_mae" and not regression
    ):
        allowed = "valid_loss or valid_mae" if regression else "valid_loss or valid_accuracy"
        raise ConfigError(
            f"tune.metric: {config.tune.metric} is not measured for task: {config.task}; "
            f"use {allowed}"
        )


def _pruner(config: ProjectConfig) -> optuna.pruners.BasePruner:
    import optuna

    if config.tune.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=config.tune.startup_trials, n_warmup_steps=config.tune.warmup_epochs
    )


class _Objective:
    """One trial: sample, train as a run, return the best epoch's validation score."""

    def __init__(
        self,
        config: ProjectConfig,
        space: dict[str, ParamSpace],
        *,
        home: Home,
        store: RunStore,
        progress: ProgressSink | None,
    ) -> None:
        self.config = config
        self.space = space
        self.home = home
        self.store = store
        self.progress = progress

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna

        trial_config = apply_values(self.config, sample(trial, self.space))
        recorder = _TrialRecorder(self.store, trial, self.config.tune.metric)
        try:
            outcome = train_project(
                trial_config, self.home.runs_dir, recorder, progress=self.progress
            )
        except optuna.TrialPruned:
            if recorder.run_id is not None:
                self.store.status(recorder.run_id, "pruned", error=None)
            raise
        values = [epoch[self.config.tune.metric] for epoch in outcome.history]
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return math.nan  # Optuna records the trial as failed, the study goes on
        return min(finite) if self.config.tune.direction == "minimize" else max(finite)


class _TrialRecorder(RunStore):
    """The run store, plus each epoch's validation score reported to the trial; a trial
    the pruner stops ends here, between two epochs, and its run is marked ``pruned``."""

    def __init__(self, store: RunStore, trial: optuna.Trial, metric: str) -> None:
        super().__init__(store.engine, store.clock)
        self.trial = trial
        self.metric = metric
        self.run_id: str | None = None
        self.pruned = False

    def create(self, run_id: str, *args: Any, **kwargs: Any) -> None:
        self.run_id = run_id
        self.trial.set_user_attr("run_id", run_id)
        super().create(run_id, *args, **kwargs)

    def epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        import optuna

        super().epoch(run_id, epoch, metrics)
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned = True
            self.trial.set_user_attr("pruned_at", epoch + 1)
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}: {self.metric} {value:.4g}")

    def status(self, run_id: str, status: RunStatus, **fields: Any) -> None:
        super().status(run_id, "pruned" if self.pruned else status, **fields)


def _result(trial: optuna.trial.FrozenTrial) -> TrialResult:
    value = trial.value if trial.values else None
    return TrialResult(
        number=trial.number,
        state=trial.state.name.lower(),
        value=value,
        params=dict(trial.params),
        run_id=trial.user_attrs.get("run_id"),
        pruned_at=trial.user_attrs.get("pruned_at"),
    )


def _outcome(
    study: optuna.Study, config: ProjectConfig, *, home: Home, request: TuneRequest
) -> TuneOutcome:
    import optuna

    frozen = study.get_trials(deepcopy=False)
    trials = [_result(t) for t in frozen]
    complete = any(t.state == optuna.trial.TrialState.COMPLETE for t in frozen)
    best = _result(study.best_trial) if complete else None
    published, note = _register_best(best, home)
    return TuneOutcome(
        study=study.study_name,
        storage=study_location(home.db_url, request.storage_url),
        metric=config.tune.metric,
        trials=trials,
        best=best,
        published=published,
        note=note,
    )


def _register_best(best: TrialResult | None, home: Home) -> tuple[Published | None, str]:
    """Register the best trial's run unless it is already; a run trained on another host
    is registered there (its folder is not here)."""
    if best is None or best.run_id is None:
        return None, "no trial finished: nothing to register"
    run_dir = home.runs_dir / best.run_id
    if not (run_dir / "model.safetensors").is_file():
        return None, (
            f"the best run {best.run_id} was trained on another host: register it there with "
            f"dnnops models register {best.run_id}"
        )
    outcome = finished_run(home.runs_dir, best.run_id)
    registry = open_registry(home)
    try:
        existing = registry.versions(outcome.config.name)
    except VersionNotFound:
        existing = []
    for record in existing:
        if record.run_id == best.run_id:
            return None, f"the best run {best.run_id} is registered already, as {record.ref}"
    published = publish(registry, candidate_from_run(outcome), outcome.config.evaluate)
    return published, f"registered the best run {best.run_id} as {published.record.ref}"


def require_optuna() -> None:
    try:
        import optuna  # noqa: F401
    except ImportError:
        raise UsageError("dnnops tune needs Optuna: pip install optuna") from None
