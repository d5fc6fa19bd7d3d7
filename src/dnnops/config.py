"""The project file, ``dnnops.yaml``, as pydantic models.

Every section forbids unknown keys so a typo (``epohcs``) is an error, not a silently
ignored setting. ``load_config`` turns pydantic's errors into one ``ConfigError`` whose
lines name the key path (``train.epochs``), the bad value and what is allowed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from dnnops.config_errors import format_validation_error
from dnnops.durations import parse_duration
from dnnops.errors import ConfigError
from dnnops.gpu import check_device
from dnnops.plugins import DRIFT_METHODS, SLO_KINDS


def _duration(value: object) -> object:
    return parse_duration(value) if isinstance(value, str) else value


Duration = Annotated[float, BeforeValidator(_duration), Field(ge=0)]
"""Seconds; written in the file as ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"`` or ``"3d"``."""

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Section(BaseModel):
    """Base for every section: unknown keys are errors and values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class SplitConfig(Section):
    train: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.8
    valid: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    test: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    seed: int = 0
    stratify: bool = True
    by: str | None = None
    """A time column: train on the oldest rows, validate on the next, test on the newest
    (a forecast never learns from what it predicts). The column orders the rows and is not
    a feature; numbers or dates."""
    folds: Annotated[int, Field(ge=2)] | None = None
    """K-fold cross-validation (``dnnops eval --cv K`` sets it): the rows are dealt into
    ``folds`` folds (stratified for classes); fold ``fold`` is the test part and ``valid``
    of the rest validates."""
    fold: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> SplitConfig:
        total = self.train + self.valid + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + valid + test must add up to 1.0, got {total:g}")
        if self.folds is not None and self.fold >= self.folds:
            raise ValueError(f"fold {self.fold} is not one of the {self.folds} folds (0-based)")
        if self.folds is not None and self.by is not None:
            raise ValueError("folds and by exclude each other: a time split has one future")
        return self


class SchemaConfig(Section):
    categorical: list[str] = Field(default_factory=list)
    """Columns to treat as categories even when they hold numbers."""
    drop: list[str] = Field(default_factory=list)
    """Columns that are not features (ids, timestamps)."""
    sensitive: list[str] = Field(default_factory=list)
    """Features that are personal or secret: served as usual, but the prediction log keeps
    them hashed or drops them (serve.log.redact), and drift monitoring leaves them out."""
    range_tolerance: Annotated[float, Field(ge=0.0)] = 0.1
    """How far beyond the observed [min, max] a value may go, as a fraction of the range."""


class PreprocessingConfig(Section):
    numeric: Literal["standardize", "scale", "none"] = "standardize"
    """standardize: (x - mean) / std per column; scale: x / max|x| over all numeric columns
    (images: keeps pixels comparable); none: as is."""
    one_hot_max: Annotated[int, Field(ge=1)] = 500
    """A category column with more distinct training values than this (an identifier, a
    free-text field) is hashed into ``hash_buckets`` inputs instead of one input per value.
    Measured (benchmarks/defaults_vs_gbm.py, a price with 300 zip codes): one-hot MAE 0.96x
    gradient boosting's, 512 buckets 1.05x, 64 buckets 1.30x."""
    hash_buckets: Annotated[int, Field(ge=2, le=4096)] = 512
    numeric_bins: Annotated[int, Field(ge=0, le=64)] = 0
    """0: numbers enter as one standardized input each. N: each number with more than two
    distinct training values also enters as a piecewise-linear encoding over up to N
    quantile bins of its training values (Gorishniy et al., 2022): the network can bend
    at every bin edge, as a tree splits, where one input would need many units."""


class DataConfig(Section):
    source: str
    target: str = "target"
    group: str | None = None
    """A column kept out of the features and used for per-group (fairness) metrics."""
    split: SplitConfig = Field(default_factory=SplitConfig)
    keep: list[str] = Field(default_factory=list)
    """Columns to keep as features although they look like row numbers or identifiers
    (training drops those by default, saying why)."""
    schema_: SchemaConfig = Field(default_factory=SchemaConfig, alias="schema")
    preprocessing: PreprocessingConfig = Field(default_factory=PreprocessingConfig)

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value.startswith("builtin:"):
            name = value.removeprefix("builtin:")
            if name not in BUILTIN_DATASETS:
                allowed = ", ".join(f"builtin:{n}" for n in BUILTIN_DATASETS)
                raise ValueError(f"unknown built-in dataset {name!r}; allowed: {allowed}")
            return value
        if Path(value).suffix.lower() not in DATA_SUFFIXES:
            raise ValueError(
                f"{value!r} has no supported extension; use .csv, .parquet, .npz "
                "or a built-in set such as builtin:digits"
            )
        return value


BUILTIN_DATASETS = ("digits", "breast_cancer", "wine")
DATA_SUFFIXES = (".csv", ".parquet", ".npz")


class MlpParams(Section):
    hidden: list[Annotated[int, Field(ge=1)]] = Field(default=[256, 128])
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    activation: Literal["relu", "gelu"] = "relu"
    embedding_dim: Annotated[int, Field(ge=0, le=256)] = 0
    """0: category inputs (one-hot or hashed) feed the first layer as they are. N: each
    category column with more than N inputs first passes through its own learned N-wide
    embedding (a linear map of its one-hot block): 300 zip codes cost 300 x N weights
    instead of 300 x ``hidden[0]``, and values can share what they learn."""


class CnnParams(Section):
    channels: list[Annotated[int, Field(ge=1)]] = Field(default=[32, 64], min_length=1)
    kernel_size: Annotated[int, Field(ge=1)] = 3
    hidden: Annotated[int, Field(ge=1)] = 128
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1


class TransformerParams(Section):
    d_model: Annotated[int, Field(ge=2)] = 32
    heads: Annotated[int, Field(ge=1)] = 4
    layers: Annotated[int, Field(ge=1)] = 2
    ff_dim: Annotated[int, Field(ge=1)] = 64
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TransformerParams:
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        return self


ARCH_PARAMS: dict[str, type[Section]] = {
    "mlp": MlpParams,
    "cnn": CnnParams,
    "transformer": TransformerParams,
}


class ModelConfig(Section):
    arch: str = "mlp"
    """mlp, cnn, transformer, or a user module as python:pkg.mod:Class."""
    input_shape: list[Annotated[int, Field(ge=1)]] | None = None
    """View each row as this shape (digits: [1, 8, 8] for the cnn)."""
    params: dict[str, Any] = Field(default_factory=dict)
    ensemble: Annotated[int, Field(ge=1, le=16)] = 1
    """Networks of this architecture trained side by side from different initial weights,
    each on its own loss, and answered as one: their mean for a regressor, the mean of
    their probabilities for a classifier (one graph to serve)."""

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, value: str) -> str:
        if value in ARCH_PARAMS or re.fullmatch(r"python:[\w.]+:\w+", value):
            return value
        raise ValueError(
            f"unknown architecture {value!r}; use one of {', '.join(ARCH_PARAMS)} "
            "or python:package.module:ClassName"
        )


class EarlyStoppingConfig(Section):
    metric: Literal["valid_loss", "valid_accuracy"] = "valid_loss"
    patience: Annotated[int, Field(ge=1)] = 5
    min_delta: Annotated[float, Field(ge=0.0)] = 0.0
    restore_best: bool = True

    @property
    def mode(self) -> Literal["min", "max"]:
        return "min" if self.metric.endswith("loss") else "max"


class CheckpointEvery(BaseModel):
    model_config = ConfigDict(frozen=True)
    unit: Literal["epochs", "steps"]
    count: int


def _checkpoint_every(value: object) -> object:
    """Accept ``3`` (epochs), ``"3 epochs"`` or ``"200 steps"``."""
    if isinstance(value, bool):
        raise ValueError("write a count of epochs (2) or 'N epochs' / 'N steps'")
    if isinstance(value, int):
        return {"unit": "epochs", "count": value}
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*(epochs?|steps?)\s*", value)
        if match is None:
            raise ValueError(f"{value!r} is not 'N epochs' or 'N steps' (for example '200 steps')")
        unit = "epochs" if match.group(2).startswith("epoch") else "steps"
        return {"unit": unit, "count": int(match.group(1))}
    return value


Device = Annotated[str, AfterValidator(check_device)]


class ThresholdCosts(Section):
    """What one error costs, for ``train.threshold: cost`` (any unit, only ratios matter)."""

    false_positive: Annotated[float, Field(ge=0.0)] = 1.0
    """Answering the rarer class when the truth is the other."""
    false_negative: Annotated[float, Field(ge=0.0)] = 1.0
    """Missing the rarer class."""


class TrainConfig(Section):
    epochs: Annotated[int, Field(ge=1)] = 20
    batch_size: Annotated[int, Field(ge=1)] = 64
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: Annotated[float, Field(gt=0.0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.01
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: Annotated[int, Field(ge=0)] = 0
    min_lr_ratio: Fraction = 0.0
    grad_clip: Annotated[float, Field(gt=0.0)] | None = 1.0
    grad_accum: Annotated[int, Field(ge=1)] = 1
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """bf16: autocast on CPU or CUDA; fp16: autocast with a gradient scaler, CUDA only."""
    device: Device = "auto"
    """auto (a CUDA device when torch sees one), cpu, cuda or cuda:N; under torchrun auto
    and cuda take the local rank's GPU, with NCCL between them."""
    early_stopping: EarlyStoppingConfig | None = None
    checkpoint_every: Annotated[CheckpointEvery, BeforeValidator(_checkpoint_every)] = (
        CheckpointEvery(unit="epochs", count=1)
    )
    keep_checkpoints: Annotated[int, Field(ge=1)] = 2
    seed: int = 0
    threads: Annotated[int, Field(ge=1)] | None = None
    loss: Literal["auto", "cross_entropy", "mse", "huber"] = "auto"
    """auto: cross_entropy for classification, mse for regression (huber: robust to
    outliers in the target)."""
    class_weight: Literal["none", "balanced"] = "none"
    """balanced: weigh each class's loss by n / (classes x its count), as scikit-learn's
    class_weight="balanced", so a rare class is not ignored."""
    threshold: Literal["none", "f1", "balanced", "cost"] = "none"
    """Two classes: answer the rarer class when its probability passes a threshold chosen
    on the validation split for the F1 of that class, balanced accuracy, or the least cost
    (``threshold_costs``), instead of argmax; stored with the version and used by every
    path that answers (server, dnnops predict, the Python API, evaluation)."""
    threshold_costs: ThresholdCosts = Field(default_factory=lambda: ThresholdCosts())
    preset: Literal["auto", "fast", "best"] = "auto"
    """auto: this file as written. fast: a first model in seconds (at most 10 epochs, one
    network). best: 4 networks averaged (``model.ensemble``, unless set) and early stopping
    on the validation loss with the best weights kept (unless ``early_stopping`` is set)."""

    @field_validator("checkpoint_every")
    @classmethod
    def _positive_interval(cls, value: CheckpointEvery) -> CheckpointEvery:
        if value.count < 1:
            raise ValueError(f"the checkpoint interval must be at least 1 {value.unit}")
        return value


class GateConfig(Section):
    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_bound(self) -> GateConfig:
        if self.min is None and self.max is None:
            raise ValueError(f"gate on {self.metric!r} needs min or max")
        return self


class EvaluateConfig(Section):
    gates: list[GateConfig] = Field(default_factory=list)
    baseline: Literal["hist_gradient_boosting", "trivial", "none"] = "hist_gradient_boosting"
    """What the model is scored beside on the same rows: the trivial baseline (majority
    class or mean) and scikit-learn's HistGradientBoosting fitted on the same training
    split (its metric ``beats_baseline`` can be gated); ``trivial``: the first only."""
    noise_std: Annotated[float, Field(ge=0.0)] = 0.1
    """Gaussian noise, in units of each feature's std, for the robustness metric."""


class TlsConfig(Section):
    """HTTPS for the server: a PEM certificate (its chain after it) and its private key.
    Relative paths are read from the project file's folder."""

    certfile: Path | None = None
    keyfile: Path | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> TlsConfig:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("serve.tls needs both certfile and keyfile (PEM files)")
        return self

    @property
    def enabled(self) -> bool:
        return self.certfile is not None


class ServeLogConfig(Section):
    redact: Literal["hash", "drop"] = "hash"
    """How the prediction log keeps a feature marked data.schema.sensitive: as a keyed
    hash (HMAC-SHA256 with the home's key or DNNOPS_REDACT_KEY; equal values stay equal),
    or not at all."""


class ServeConfig(Section):
    backend: Literal["onnx", "onnx-int8", "torch"] = "onnx"
    device: Device = "cpu"
    """cpu, cuda, cuda:N, or auto (CUDA when the backend sees a GPU: onnxruntime-gpu for
    onnx, a CUDA build of torch for torch). A batch that runs the GPU out of memory is
    split in halves and retried."""
    max_batch_size: Annotated[int, Field(ge=1)] = 64
    max_delay: Duration = 0.002
    close_when_quiet: bool = False
    """Close a batch before ``max_delay`` when every request the server has received is
    queued (none is still being read or validated): waiting longer only adds latency for
    clients that send their next request after this answer."""
    queue_limit: Annotated[int, Field(ge=1)] = 2048
    timeout: Duration = 1.0
    max_body_bytes: Annotated[int, Field(ge=1024)] = 8 * 1024 * 1024
    log_inputs: Fraction = 1.0
    """Share of predictions whose inputs are written to the prediction log."""
    missing: Literal["impute", "reject"] = "impute"
    """A missing value (null, NaN): imputed as training did (the training mean; a missing
    category encodes as unknown), or refused with 422."""
    unseen_category: Literal["unknown", "reject"] = "unknown"
    """A category not seen in training: the encoding's all-zero unknown row, or 422."""
    out_of_range: Literal["accept", "clip", "reject"] = "accept"
    """Numbers beyond the training range (plus data.schema.range_tolerance): served and
    left to drift monitoring, clipped to the training [min, max], or refused with 422."""
    non_finite: Literal["reject", "impute", "accept"] = "reject"
    """Infinity in an input (NaN in a tensor model): 422, or imputed like a missing value
    (``accept`` is the older spelling of ``impute``)."""
    coerce: Literal["strict", "lenient"] = "strict"
    """A value of the wrong JSON type: strict refuses ``true`` for a number and ``3`` for a
    text category with 422 naming the feature; lenient reads them as 1 and "3"."""
    threads: Annotated[int, Field(ge=1)] | None = None
    """Intra-op threads of each model runner; default: the machine's cores minus one,
    shared among the workers."""
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """Server processes sharing the port (``dnnops serve --workers``). One Python process
    answers HTTP on one core; more workers use more cores, each with its own copy of the
    models and its own batches."""
    warmup_batch_sizes: list[Annotated[int, Field(ge=1)]] = Field(default=[1, 64])
    drain_timeout: Duration = 10.0
    """On SIGTERM: how long queued requests may still run before the server exits."""
    lease: Annotated[float, BeforeValidator(_duration), Field(gt=0)] = 10.0
    """Replicas sharing a PostgreSQL database elect one leader with a lease this long:
    a leader that dies is replaced within it."""
    sticky_header: str = "x-routing-key"
    """Requests with the same value of this header meet the same version during a canary."""
    tls: TlsConfig = Field(default_factory=TlsConfig)
    log: ServeLogConfig = Field(default_factory=ServeLogConfig)


def _drift_method(name: str) -> str:
    if name != "auto":
        DRIFT_METHODS.get(name)  # an unknown name raises, listing the registered ones
    return name


def _slo_kind(name: str) -> str:
    SLO_KINDS.get(name)
    return name


class DriftConfig(Section):
    method: Annotated[str, AfterValidator(_drift_method)] = "auto"
    """``auto`` (a KS test then the Wasserstein distance for numbers, a chi-square test
    then the Jensen-Shannon distance for categories) or a registered method: ``psi``,
    ``ks``, ``wasserstein``, ``ks_wasserstein``, ``chi2``, ``jensen_shannon``, or your own
    (``dnnops.plugins.DRIFT_METHODS``)."""
    threshold: Annotated[float, Field(gt=0.0)] | None = None
    """None: the method's default (PSI 0.2, KS p 0.05, Wasserstein 0.1, JS 0.1)."""
    share: Fraction = 0.5
    """The dataset drifts when at least this share of features drift."""
    min_rows: Annotated[int, Field(ge=1)] = 100
    """Fewer logged rows than this in a window give no drift verdict: too few to tell a
    shift from noise (the scores are still shown)."""
    multivariate_alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.001
    """Significance level of the multivariate test (a z-test of the mean PCA
    reconstruction error against the reference's)."""
    multivariate_min_ratio: Annotated[float, Field(ge=1.0)] = 1.05
    """...and the effect it must reach: a mean error at least this many times the
    reference's, so a negligible change in millions of rows is not an alert."""


class ExplainConfig(Section):
    """Explanations: ``POST /v1/models/NAME:explain`` and a background sample of live
    predictions explained off the serving path (the explainability SLI)."""

    sample: Fraction = 0.0
    """Share of answered predictions explained in the background (0.01: one in a hundred);
    0: none."""
    max_per_minute: Annotated[int, Field(ge=1)] = 60
    """At most this many background explanations a minute, whatever the traffic."""
    every: Duration = 10.0
    """How often the background sampler picks up the predictions logged since."""
    timeout: Duration = 10.0
    """An explain request that takes longer is answered 504."""
    max_instances: Annotated[int, Field(ge=1)] = 64
    """Instances one explain request may hold."""
    min_explained: Annotated[int, Field(ge=1)] = 30
    """Explanations a window needs before its attribution drift is judged."""
    drift_threshold: Fraction = 0.2
    """Attribution drift: the share of the attributions that moved to other features
    (half the L1 distance between live and validation importance profiles)."""


class MonitorConfig(Section):
    window: Duration = 3600.0
    drift: DriftConfig = Field(default_factory=DriftConfig)
    explain: ExplainConfig = Field(default_factory=ExplainConfig)
    cpu_second_price: Annotated[float, Field(ge=0.0)] = 0.00001
    currency: Annotated[str, Field(min_length=1, max_length=8)] = "USD"
    """The unit of cpu_second_price, shown beside every cost."""
    webhook_url: str | None = None
    runbook_url: Annotated[str, Field(pattern=r"\{page\}")] = "docs/runbooks/{page}.md"
    """Where alerts point for what to do: a template with ``{page}`` (drift, latency,
    availability, accuracy, rollback, ...), e.g. your published docs site's runbooks."""
    suppress_during_rollout: bool = True
    """Hold back a rollout candidate's alerts: its rollout's gates judge it (and page)."""
    evaluate_every: Duration | None = 60.0
    """How often a server evaluates its own report and raises alerts; null: never (then
    ``dnnops monitor report --alert`` on a schedule does it)."""


class ObjectiveConfig(Section):
    name: str
    kind: Annotated[str, AfterValidator(_slo_kind)]
    """A registered SLO kind (``dnnops.plugins.SLO_KINDS``): ``latency``, ``success_rate``,
    ``accuracy``, ``label_coverage`` (the share of answered predictions that receive a
    label), ``label_lag`` (the share of labels that arrive within ``threshold`` of their
    prediction), or your own."""
    target: Annotated[float, Field(gt=0.0, lt=1.0)]
    threshold: Duration | None = None
    """Latency objectives: the share of requests faster than this; label_lag: the share of
    labels arriving within this."""

    @model_validator(mode="after")
    def _threshold_if_needed(self) -> ObjectiveConfig:
        kind = SLO_KINDS.get(self.kind)
        if kind.threshold == "required" and self.threshold is None:
            example = f" (e.g. threshold: {kind.threshold_example})" * bool(kind.threshold_example)
            raise ValueError(f"a {self.kind} objective needs a threshold{example}")
        return self


class BurnRuleConfig(Section):
    """One burn-rate alert: it fires when both windows burn the budget at least this fast.
    The speed is a ``factor`` (times the rate that spends the budget exactly over
    ``slo.window``) or a ``budget`` share spent within ``long``, as the SRE Workbook
    states its table ("2% of the budget in an hour" is factor 14.4 over 30 days)."""

    severity: Literal["page", "ticket"]
    long: Duration
    short: Duration
    factor: Annotated[float, Field(gt=0.0)] | None = None
    budget: Annotated[float, Field(gt=0.0, le=1.0)] | None = None

    @model_validator(mode="after")
    def _one_speed(self) -> BurnRuleConfig:
        if (self.factor is None) == (self.budget is None):
            raise ValueError("a burn rule needs exactly one of factor or budget")
        if not 0 < self.short < self.long:
            raise ValueError("a burn rule's short window must be shorter than its long one")
        return self


BurnPreset = Literal["workbook", "conservative"]
"""``workbook``: the SRE Workbook's table (pages on 2% of the budget in 1 h and 5% in 6 h,
a ticket on 10% in 3 days). ``conservative``: pages only when half the budget goes
within 6 h, a ticket when half goes within 3 days (fewer, later, surer alerts)."""


class SloConfig(Section):
    window: Duration = 30 * 86400.0
    objectives: list[ObjectiveConfig] = Field(default_factory=list)
    burn_rules: BurnPreset | list[BurnRuleConfig] = "workbook"
    """The burn-rate alerts: a preset's name, or the rules themselves."""
    min_events: Annotated[int, Field(ge=0)] = 100
    """A burn-rate rule fires only with at least this many events in its long window:
    two failures in the first three requests are not a page."""


class RolloutConfig(Section):
    mode: Literal["canary", "blue_green", "shadow"] = "canary"
    steps: list[Annotated[int, Field(ge=1, le=100)]] = Field(default=[5, 25, 50, 100])
    interval: Duration = 30.0
    min_requests: Annotated[int, Field(ge=0)] = 100
    failure_threshold: Annotated[int, Field(ge=1)] = 2
    min_success_rate: Fraction = 0.99
    max_p99_latency_ratio: Annotated[float, Field(gt=0.0)] = 1.5
    latency_slack: Duration = 0.005
    """p99 differences below this are noise, not a regression (millisecond models)."""
    max_prediction_divergence: Fraction = 0.1
    max_accuracy_drop: Fraction = 0.02
    max_error_increase: float = Field(default=0.1, ge=0.0)
    """A regressor's mean absolute error on labels may grow this much (a share of the
    stable version's) before the canary fails."""
    max_estimated_accuracy_drop: Fraction | None = None
    """Before labels: fail a step when the candidate's accuracy, as its calibrated confidence
    estimates it, is this much below the stable's (beyond noise). None: off."""


class RetrainConfig(Section):
    drift_share: Fraction | None = 0.5
    drift_window: Duration = 3600.0
    accuracy_below: Fraction | None = None
    estimated_accuracy_below: Fraction | None = None
    """Before labels: retrain when the production version's accuracy, as its calibrated
    confidence estimates it over ``drift_window``, is below this (and the estimate is
    reliable: the inputs stayed within the training support)."""
    mae_above: Annotated[float, Field(gt=0.0)] | None = None
    """A regressor: retrain when its mean absolute error on labels exceeds this (in the
    target's units)."""
    every: Duration | None = None
    min_new_labels: Annotated[int, Field(ge=0)] = 200
    approval: bool = False
    holdout: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.25
    """Newest share of the captured labeled rows kept out of training: the window on which
    the challenger must beat the champion."""
    background: bool = False
    """Let a server started with ``-c dnnops.yaml`` check the triggers every
    ``check_every`` and run ``dnnops retrain`` in a child process when one fires."""
    check_every: Duration = 300.0
    """How often a server with ``background: true`` checks the retraining triggers."""


class LogsConfig(Section):
    retention: Duration | None = None
    """Delete prediction and feedback segments (with their digests) last written longer
    ago than this; the server applies it every monitor.evaluate_every. None keeps all.
    Shorter than slo.window, error budgets see only what is kept."""
    ship_every: Annotated[Duration, Field(gt=0)] = 5.0
    """In a fleet (``DNNOPS_LOGS_URL`` on an object store): how often each replica ships
    what its segments gained and pulls its siblings'. Also the recovery point of a replica
    lost for good."""


class ParamSpace(Section):
    """One tuned key: a range (``low``/``high``, ``log`` for scales like a learning rate,
    ``step`` or whole numbers with ``int``) or a list of ``choices``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    int_: bool = Field(default=False, alias="int")
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> ParamSpace:
        ranged = self.low is not None and self.high is not None
        if ranged == (self.choices is not None):
            raise ValueError("give either low and high, or choices")
        if ranged and not (self.low or 0) < (self.high or 0):
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if ranged and self.log and (self.low or 0) <= 0:
            raise ValueError("a log range needs low > 0")
        if self.choices is not None and not self.choices:
            raise ValueError("choices must not be empty")
        return self


class TuneConfig(Section):
    """``dnnops tune``: Optuna's TPE over ``space`` (keys are dotted paths into this file,
    e.g. ``train.lr``, ``model.params.hidden``), pruning trials whose validation score
    trails the median of earlier trials at the same epoch."""

    space: dict[str, ParamSpace] | None = None
    """None: lr, batch size, weight decay, and an MLP's width, depth and dropout."""
    metric: Literal["valid_loss", "valid_accuracy", "valid_mae"] = "valid_loss"
    """The validation score a trial is judged on (its best epoch's)."""
    pruner: Literal["median", "none"] = "median"
    startup_trials: Annotated[int, Field(ge=0)] = 5
    """Trials run in full (and sampled at random) before TPE and pruning start."""
    warmup_epochs: Annotated[int, Field(ge=0)] = 3
    """Epochs a trial always runs before it can be pruned."""
    seed: int = 0

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "maximize" if self.metric == "valid_accuracy" else "minimize"


class ProjectConfig(Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
    task: Literal["classification", "regression"] = "classification"
    """classification: labels of any type; regression: a number to predict."""
    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    slo: SloConfig = Field(default_factory=SloConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)


def parse_config(raw: object, origin: str = "dnnops.yaml") -> ProjectConfig:
    """Validate an already-parsed mapping; raise ``ConfigError`` listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: the file must be a mapping of sections (name, data, ...)")
    try:
        config = ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, ProjectConfig, origin)) from None
    check_arch_params(config.model, origin)
    return apply_preset(config)


FAST_EPOCHS = 10
BEST_ENSEMBLE = 4
BEST_PATIENCE = 8


def apply_preset(config: ProjectConfig) -> ProjectConfig:
    """The project with ``train.preset``'s values in place of what the file left unset (or,
    for ``fast``, capped). Idempotent, so a run's saved config resumes to the same run."""
    train, model = config.train, config.model
    if train.preset == "fast":
        train = train.model_copy(update={"epochs": min(train.epochs, FAST_EPOCHS)})
        model = model.model_copy(update={"ensemble": 1})
    elif train.preset == "best":
        if "ensemble" not in model.model_fields_set:
            model = model.model_copy(update={"ensemble": BEST_ENSEMBLE})
        if train.early_stopping is None:
            stopping = EarlyStoppingConfig(patience=BEST_PATIENCE, restore_best=True)
            train = train.model_copy(update={"early_stopping": stopping})
    if train is config.train and model is config.model:
        return config
    return config.model_copy(update={"train": train, "model": model})


def check_arch_params(model: ModelConfig, origin: str = "dnnops.yaml") -> Section | None:
    """Validate ``model.params`` against the built-in architecture's parameters.

    Done after the main pass because which keys are allowed depends on ``model.arch``.
    A user module's parameters are checked by its own constructor, so None is returned.
    """
    params_model = ARCH_PARAMS.get(model.arch)
    if params_model is None:
        return None
    try:
        return params_model.model_validate(model.params)
    except ValidationError as exc:
        message = format_validation_error(exc, params_model, origin, prefix=("model", "params"))
        raise ConfigError(message) from None


def load_config(path: str | Path) -> ProjectConfig:
    """Read and validate ``path``; a missing or malformed file is a ``ConfigError``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"no project file at {path}; write one with: dnnops init --example digits"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(raw, str(path))
