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

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        defer_build=True,
        use_attribute_docstrings=True,
    )


class SplitConfig(Section):
    """How the rows are split into training, validation and test parts."""

    train: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.8
    """Share of the rows trained on."""
    valid: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    """Share of the rows that validate each epoch (early stopping, the threshold, calibration)."""
    test: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    """Share of the rows held out for the evaluation and its gates."""
    seed: int = 0
    """Seed of the shuffle, so a split is the same on every run."""
    stratify: bool = True
    """Keep each class's share alike in the three parts (classification)."""
    by: str | None = None
    """A time column: train on the oldest rows, validate on the next, test on the newest
    (a forecast never learns from what it predicts). The column orders the rows and is not
    a feature; numbers or dates."""
    folds: Annotated[int, Field(ge=2)] | None = None
    """K-fold cross-validation (``dnnops eval --cv K`` sets it): the rows are dealt into
    ``folds`` folds (stratified for classes); fold ``fold`` is the test part and ``valid``
    of the rest validates."""
    fold: Annotated[int, Field(ge=0)] = 0
    """Which of the ``folds`` folds is the test part (0-based)."""

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
    """What the columns are, where inference would guess wrong."""

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
    """How numbers and categories become the network's inputs (fitted on the training split,
    stored with the version)."""

    numeric: Literal["standardize", "scale", "none"] = "standardize"
    """standardize: (x - mean) / std per column; scale: x / max|x| over all numeric columns
    (images: keeps pixels comparable); none: as is."""
    one_hot_max: Annotated[int, Field(ge=1)] = 500
    """A category column with more distinct training values than this (an identifier, a
    free-text field) is hashed into ``hash_buckets`` inputs instead of one input per value.
    Measured (benchmarks/defaults_vs_gbm.py, a price with 300 zip codes): one-hot MAE 0.96x
    gradient boosting's, 512 buckets 1.05x, 64 buckets 1.30x."""
    hash_buckets: Annotated[int, Field(ge=2, le=4096)] = 512
    """Inputs a hashed category column (over ``one_hot_max`` values) is spread over."""
    numeric_bins: Annotated[int, Field(ge=0, le=64)] = 0
    """0: numbers enter as one standardized input each. N: each number with more than two
    distinct training values also enters as a piecewise-linear encoding over up to N
    quantile bins of its training values (Gorishniy et al., 2022): the network can bend
    at every bin edge, as a tree splits, where one input would need many units."""


Side = Annotated[int, Field(ge=8, le=1024)]


class ImageConfig(Section):
    """An image input: a folder with one subfolder per class (``data.source: photos/``), or
    a table column holding each image's path relative to the table's folder."""

    column: str = "image"
    """The column holding the images (a folder source names it this)."""
    size: Annotated[list[Side], Field(min_length=2, max_length=2)] = Field(default=[64, 64])
    """Height and width the model sees: each image is scaled so its shorter side fits, then
    cut from its centre (torchvision's Resize and CenterCrop)."""
    channels: Literal[1, 3] = 3
    """3: RGB; 1: greyscale. Other modes (RGBA, palette, CMYK) are converted."""
    max_pixels: Annotated[int, Field(ge=1)] = 40_000_000
    """An image with more pixels is refused before it is decoded (decompression bombs)."""
    unreadable: Literal["skip", "fail"] = "skip"
    """A training image that cannot be used (not_an_image, unsupported_format,
    too_many_pixels, truncated): skip leaves it out with a warning naming it, as a row
    without a label; fail stops training and names them all."""
    mean: list[float] | None = None
    """Per-channel mean subtracted from pixels in [0, 1]; default ImageNet's for RGB (what
    torchvision weights expect), 0.5 for greyscale."""
    std: list[float] | None = None
    """Per-channel standard deviation pixels are divided by; default as ``mean``."""

    @model_validator(mode="after")
    def _per_channel(self) -> ImageConfig:
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values is not None and len(values) != self.channels:
                raise ValueError(f"{name} needs {self.channels} value(s), one per channel")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError("std must be positive")
        return self

    @property
    def normalization(self) -> tuple[list[float], list[float]]:
        """(mean, std) per channel."""
        rgb = self.channels == 3
        mean = self.mean or ([0.485, 0.456, 0.406] if rgb else [0.5])
        std = self.std or ([0.229, 0.224, 0.225] if rgb else [0.5])
        return mean, std


class TextConfig(Section):
    """A text input: one column of a CSV or Parquet file, tokenized by a tokenizer trained
    on the training split and stored with the version."""

    column: str
    """The column holding the text."""
    tokenizer: Literal["bpe", "wordpiece"] = "bpe"
    """bpe: byte-pair merges (the same vocabulary every time on the same data); wordpiece:
    BERT's scheme (Hugging Face's trainer breaks ties in hash order, so two trainings on
    the same data can differ; a version keeps its own either way)."""
    vocab_size: Annotated[int, Field(ge=16, le=200_000)] = 8000
    """Tokens in the vocabulary, the three special ones ([PAD], [UNK], [CLS]) included."""
    max_length: Annotated[int, Field(ge=2, le=4096)] = 128
    """Tokens the model sees per text, [CLS] included; longer texts are cut (or refused,
    with ``too_long: reject``)."""
    lowercase: bool = True
    """Fold case before tokenizing."""
    too_long: Literal["truncate", "reject"] = "truncate"
    """A text with more tokens than ``max_length - 1``: keep its beginning, or refuse it."""
    empty: Literal["accept", "reject"] = "reject"
    """An empty (or all-whitespace) text: a [CLS] alone, or refused."""


class DataConfig(Section):
    """Where the data is and what it holds."""

    source: str
    """A CSV, Parquet or .npz file (relative to the project file), a folder of images
    (``photos/``: one subfolder per class), an fsspec URL, or a built-in set such as
    ``builtin:digits``."""
    target: str = "target"
    """The column to predict."""
    group: str | None = None
    """A column kept out of the features and used for per-group (fairness) metrics."""
    split: SplitConfig = Field(default_factory=SplitConfig)
    keep: list[str] = Field(default_factory=list)
    """Columns to keep as features although they look like row numbers or identifiers
    (training drops those by default, saying why)."""
    schema_: SchemaConfig = Field(default_factory=SchemaConfig, alias="schema")
    preprocessing: PreprocessingConfig = Field(default_factory=PreprocessingConfig)
    image: ImageConfig | None = None
    """The images, for a folder source (implied there) or a table with an image column."""
    text: TextConfig | None = None
    """The text column, for a table whose input is text."""

    @model_validator(mode="before")
    @classmethod
    def _folder_holds_images(cls, data: Any) -> Any:
        source = data.get("source") if isinstance(data, dict) else None
        if isinstance(source, str) and is_folder_source(source) and data.get("image") is None:
            return {**data, "image": {}}
        return data

    @model_validator(mode="after")
    def _one_medium(self) -> DataConfig:
        if self.image is not None and self.text is not None:
            raise ValueError("a model takes images or text: set data.image or data.text, not both")
        return self

    @property
    def is_folder(self) -> bool:
        """A folder of images: the source ends with a slash or has no file suffix."""
        return is_folder_source(self.source)

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value.startswith("builtin:"):
            name = value.removeprefix("builtin:")
            if name not in BUILTIN_DATASETS:
                allowed = ", ".join(f"builtin:{n}" for n in BUILTIN_DATASETS)
                raise ValueError(f"unknown built-in dataset {name!r}; allowed: {allowed}")
            return value
        if is_folder_source(value):
            return value
        if Path(value).suffix.lower() not in DATA_SUFFIXES:
            raise ValueError(
                f"{value!r} has no supported extension; use .csv, .parquet, .npz, "
                "a folder of images (photos/) or a built-in set such as builtin:digits"
            )
        return value


BUILTIN_DATASETS = ("digits", "breast_cancer", "wine")
DATA_SUFFIXES = (".csv", ".parquet", ".npz")


def is_folder_source(source: str) -> bool:
    """A folder of images: a source ending with a slash, or without a file suffix."""
    if source.startswith("builtin:"):
        return False
    return source.endswith("/") or not Path(source.rstrip("/")).suffix


class MlpParams(Section):
    """``arch: mlp``: a multilayer perceptron over the encoded features."""

    hidden: list[Annotated[int, Field(ge=1)]] = Field(default=[256, 128])
    """Widths of the hidden layers, first to last."""
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    """Dropout after each hidden layer."""
    activation: Literal["relu", "gelu"] = "relu"
    """The hidden layers' activation."""
    embedding_dim: Annotated[int, Field(ge=0, le=256)] = 0
    """0: category inputs (one-hot or hashed) feed the first layer as they are. N: each
    category column with more than N inputs first passes through its own learned N-wide
    embedding (a linear map of its one-hot block): 300 zip codes cost 300 x N weights
    instead of 300 x ``hidden[0]``, and values can share what they learn."""


class CnnParams(Section):
    """``arch: cnn``: a small convolutional network over ``model.input_shape``."""

    channels: list[Annotated[int, Field(ge=1)]] = Field(default=[32, 64], min_length=1)
    """Channels of each convolution block (a convolution, ReLU and 2x2 max pooling)."""
    kernel_size: Annotated[int, Field(ge=1)] = 3
    """Side of each convolution's kernel."""
    hidden: Annotated[int, Field(ge=1)] = 128
    """Width of the dense layer after the convolutions."""
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    """Dropout before the output layer."""


class TransformerParams(Section):
    """``arch: transformer``: a transformer encoder over one token per feature (FT-
    Transformer)."""

    d_model: Annotated[int, Field(ge=2)] = 32
    """Width of each feature's token embedding."""
    heads: Annotated[int, Field(ge=1)] = 4
    """Attention heads (must divide d_model)."""
    layers: Annotated[int, Field(ge=1)] = 2
    """Encoder layers."""
    ff_dim: Annotated[int, Field(ge=1)] = 64
    """Width of each layer's feed-forward block."""
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    """Dropout inside the encoder."""

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TransformerParams:
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        return self


class ResnetParams(Section):
    """``arch: resnet18``: ResNet-18 over images, with torchvision's parameter names."""

    width: Annotated[int, Field(ge=4, le=256)] = 64
    """Channels of the first stage (64 is torchvision's: its weights load as they are;
    16 trains on a CPU in minutes)."""
    small_input: bool = False
    """A 3x3 stride-1 stem without max pooling, for images of 32-64 pixels (torchvision's
    weights then load except ``conv1``)."""


class MobilenetParams(Section):
    """``arch: mobilenet_v2``: MobileNetV2 over images (a fifth of ResNet-18's compute),
    with torchvision's parameter names."""

    width: Annotated[float, Field(gt=0.0, le=4.0)] = 1.0
    """Channel multiplier (1.0 is torchvision's: its weights load as they are; 0.25 trains
    on a CPU in minutes)."""
    small_input: bool = False
    """Stride 1 in the stem and the first downsampling, for images of 32-64 pixels (the
    weights' shapes do not change: torchvision's still load)."""
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    """Dropout before the classifier."""


class TextTransformerParams(Section):
    """``arch: text_transformer``: a transformer encoder over a text's tokens."""

    d_model: Annotated[int, Field(ge=2)] = 64
    """Width of each token's embedding."""
    heads: Annotated[int, Field(ge=1)] = 4
    """Attention heads (must divide d_model)."""
    layers: Annotated[int, Field(ge=1)] = 2
    """Encoder layers."""
    ff_dim: Annotated[int, Field(ge=1)] = 128
    """Width of each layer's feed-forward block."""
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    """Dropout inside the encoder."""

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TextTransformerParams:
        if self.d_model % self.heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by heads ({self.heads})")
        return self


class EmbeddingBagParams(Section):
    """``arch: embedding_bag``: the mean of a text's token embeddings, then a linear layer
    (fastText's model: the baseline a text transformer has to beat)."""

    dim: Annotated[int, Field(ge=2, le=1024)] = 64
    """Width of each token's embedding."""


ARCH_PARAMS: dict[str, type[Section]] = {
    "mlp": MlpParams,
    "cnn": CnnParams,
    "transformer": TransformerParams,
    "resnet18": ResnetParams,
    "mobilenet_v2": MobilenetParams,
    "text_transformer": TextTransformerParams,
    "embedding_bag": EmbeddingBagParams,
}
TEXT_ARCHS = ("text_transformer", "embedding_bag")
IMAGE_ARCHS = ("resnet18", "mobilenet_v2")
"""Architectures that read token ids (a ``data.text`` input)."""


class ModelConfig(Section):
    """The network: an architecture and its parameters."""

    arch: str = "mlp"
    """mlp, cnn, transformer, or a user module as python:pkg.mod:Class."""
    input_shape: list[Annotated[int, Field(ge=1)]] | None = None
    """View each row as this shape (digits: [1, 8, 8] for the cnn)."""
    params: dict[str, Any] = Field(default_factory=dict)
    """The architecture's own keys (an MLP's ``hidden``, ``dropout``, ...): checked against it
    after this file is read; a user module's go to its constructor."""
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
    """Stop when the validation score stops improving."""

    metric: Literal["valid_loss", "valid_accuracy"] = "valid_loss"
    """The validation score watched."""
    patience: Annotated[int, Field(ge=1)] = 5
    """Epochs without improvement before training stops."""
    min_delta: Annotated[float, Field(ge=0.0)] = 0.0
    """The least change that counts as an improvement."""
    restore_best: bool = True
    """Keep the best epoch's weights, not the last's."""

    @property
    def mode(self) -> Literal["min", "max"]:
        return "min" if self.metric.endswith("loss") else "max"


class CheckpointEvery(BaseModel):
    """How often a resumable checkpoint is written."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)
    unit: Literal["epochs", "steps"]
    """``epochs`` or ``steps``."""
    count: int
    """How many of them between checkpoints."""
    """How many of them between checkpoints."""


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


class AugmentConfig(Section):
    """Random changes to training batches only (never evaluation or serving), drawn from
    ``train.seed``: the same run gives the same batches, resumed or not."""

    crop: Annotated[int, Field(ge=0, le=64)] = 0
    """Images: pad each side by this many pixels (edge pixels repeated), then cut a random
    window of the original size (a shift of up to ``crop`` pixels)."""
    flip: bool = False
    """Images: mirror half of them left to right."""
    colour: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """Images: scale brightness and contrast by a random factor within 1 ± this."""
    token_dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    """Text: replace this share of each text's tokens with [UNK]."""


class TrainConfig(Section):
    """The training loop: optimizer, schedule, precision, checkpoints."""

    epochs: Annotated[int, Field(ge=1)] = 20
    """Passes over the training split (fewer with early stopping)."""
    batch_size: Annotated[int, Field(ge=1)] = 64
    """Rows per optimizer step (``dnnops init`` sizes it to the data)."""
    optimizer: Literal["adamw", "sgd"] = "adamw"
    """adamw (decoupled weight decay) or sgd (with ``momentum``)."""
    lr: Annotated[float, Field(gt=0.0)] = 1e-3
    """The peak learning rate."""
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.01
    """L2 penalty on the weights (decoupled for adamw)."""
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    """SGD's momentum (unused by adamw)."""
    schedule: Literal["cosine", "constant"] = "cosine"
    """cosine: decay to ``min_lr_ratio`` x lr over the run; constant: lr throughout."""
    warmup_steps: Annotated[int, Field(ge=0)] = 0
    """Steps of linear warm-up from zero to lr."""
    min_lr_ratio: Fraction = 0.0
    """Where the cosine schedule ends, as a share of lr."""
    grad_clip: Annotated[float, Field(gt=0.0)] | None = 1.0
    """Clip the gradients' global norm to this; null: no clipping."""
    grad_accum: Annotated[int, Field(ge=1)] = 1
    """Batches whose gradients add up before one optimizer step."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """bf16: autocast on CPU or CUDA; fp16: autocast with a gradient scaler, CUDA only."""
    device: Device = "auto"
    """auto (a CUDA device when torch sees one), cpu, cuda or cuda:N; under torchrun auto
    and cuda take the local rank's GPU, with NCCL between them."""
    early_stopping: EarlyStoppingConfig | None = None
    """Stop when the validation score stops improving; null: train every epoch."""
    checkpoint_every: Annotated[CheckpointEvery, BeforeValidator(_checkpoint_every)] = (
        CheckpointEvery(unit="epochs", count=1)
    )
    """``3`` (epochs), ``'3 epochs'`` or ``'200 steps'``: how often a resumable checkpoint is
    written."""
    keep_checkpoints: Annotated[int, Field(ge=1)] = 2
    """The newest this many checkpoints are kept."""
    seed: int = 0
    """Seed of the weights and the shuffling: a rerun is bit-exact."""
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    """Random changes to training batches (images: crop, flip, colour; text: token
    dropout); none by default."""
    init_from: str | None = None
    """Start from existing weights: a registered version (``NAME@REF``) or a weights file
    on any fsspec URL (safetensors, or a torch state dict such as torchvision's
    ``resnet18`` or ``mobilenet_v2``). Tensors whose name and shape fit are loaded; a head
    for other classes starts fresh. Nothing is ever downloaded for you."""
    freeze: Literal["none", "backbone"] = "none"
    """backbone: train the last linear layer (the head) alone; the rest stays as loaded."""
    threads: Annotated[int, Field(ge=1)] | None = None
    """torch's intra-op threads; null: torch's default."""
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
    """What a false positive and a false negative cost, for ``threshold: cost``."""
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
    """One bound on one evaluation metric."""

    metric: str
    """A metric of the evaluation (``accuracy``, ``roc_auc``, ``mae``, ``beats_baseline``,
    ``latency_p99_ms_b1``, ...)."""
    min: float | None = None
    """The metric must be at least this."""
    max: float | None = None
    """The metric must be at most this."""

    @model_validator(mode="after")
    def _has_bound(self) -> GateConfig:
        if self.min is None and self.max is None:
            raise ValueError(f"gate on {self.metric!r} needs min or max")
        return self


class EvaluateConfig(Section):
    """How a trained model is scored before it may serve."""

    gates: list[GateConfig] = Field(default_factory=list)
    """Bounds a version must meet on the test split before it may serve (``dnnops models
    alias`` and rollouts refuse it otherwise)."""
    baseline: Literal["hist_gradient_boosting", "trivial", "none"] = "hist_gradient_boosting"
    """What the model is scored beside on the same rows: the trivial baseline (majority
    class or mean) and scikit-learn's HistGradientBoosting fitted on the same training
    split (its metric ``beats_baseline`` can be gated); ``trivial``: the first only."""
    noise_std: Annotated[float, Field(ge=0.0)] = 0.1
    """Gaussian noise, in units of each feature's std, for the robustness metric."""
    agreement_members: Annotated[int, Field(ge=0, le=16)] = 6
    """Small networks, each on a random half of a table's numeric features, registered
    beside a classifier: when its inputs shift, the monitor estimates its accuracy from
    how often they agree with it (the report's ``estimated_accuracy.method``). 0: none."""


class TlsConfig(Section):
    """HTTPS for the server: a PEM certificate (its chain after it) and its private key.
    Relative paths are read from the project file's folder."""

    certfile: Path | None = None
    """PEM certificate, its chain after it."""
    keyfile: Path | None = None
    """PEM private key of the certificate."""

    @model_validator(mode="after")
    def _both_or_neither(self) -> TlsConfig:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("serve.tls needs both certfile and keyfile (PEM files)")
        return self

    @property
    def enabled(self) -> bool:
        return self.certfile is not None


class OidcConfig(Section):
    """Bearer tokens from a company's identity provider (OpenID Connect): a JWT signed by
    one of the issuer's keys (its JWKS), for this audience, unexpired, is a caller with
    the roles its ``roles_claim`` names. Off while ``issuer`` is unset."""

    issuer: str | None = None
    """The ``iss`` every token must carry, e.g. ``https://login.example.com/realms/ml``."""
    audience: str | None = None
    """The ``aud`` every token must carry (the client id this server was registered as)."""
    jwks_url: str | None = None
    """Where the issuer's signing keys are; found from the issuer's
    ``/.well-known/openid-configuration`` when unset."""
    roles_claim: str = "roles"
    """The claim that lists the caller's roles; a dotted path reaches into objects
    (``realm_access.roles`` for Keycloak)."""
    name_claim: str = "sub"
    """The claim the audit log names the caller by (``email``, ``preferred_username``)."""
    role_map: dict[str, str] = Field(default_factory=dict)
    """A claim value to a dnnops role, ``ROLE`` or ``ROLE:MODEL`` (``{"ml-admins":
    "admin"}``). A value that is itself such a role counts without an entry."""
    algorithms: list[str] = Field(default=["RS256", "ES256"])
    """Signature algorithms accepted (never ``none``, never a shared secret's)."""
    leeway: Duration = 30.0
    """Clock skew allowed on ``exp`` and ``nbf``."""

    @model_validator(mode="after")
    def _complete(self) -> OidcConfig:
        if self.issuer is not None and not self.audience:
            raise ValueError("serve.oidc needs an audience with its issuer (the client id)")
        weak = [a for a in self.algorithms if not a.startswith(("RS", "ES", "PS", "EdDSA"))]
        if weak:
            raise ValueError(f"serve.oidc.algorithms: {weak} are not public-key signatures")
        return self

    @property
    def enabled(self) -> bool:
        return self.issuer is not None


class ServeLogConfig(Section):
    """What the prediction log keeps of sensitive features."""

    redact: Literal["hash", "drop"] = "hash"
    """How the prediction log keeps a feature marked data.schema.sensitive: as a keyed
    hash (HMAC-SHA256 with the home's key or DNNOPS_REDACT_KEY; equal values stay equal),
    or not at all."""


class ServeConfig(Section):
    """The inference server: batching, limits, input policy, workers, TLS."""

    backend: Literal["onnx", "onnx-int8", "torch"] = "onnx"
    """onnx (onnxruntime), onnx-int8 (the dynamic-INT8 graph) or torch (the safetensors weights
    in torch)."""
    device: Device = "cpu"
    """cpu, cuda, cuda:N, or auto (CUDA when the backend sees a GPU: onnxruntime-gpu for
    onnx, a CUDA build of torch for torch). A batch that runs the GPU out of memory is
    split in halves and retried."""
    max_batch_size: Annotated[int, Field(ge=1)] = 64
    """Rows the dynamic batcher puts in one batch at most."""
    max_delay: Duration = 0.002
    """How long the first request of a batch waits for others (Triton's ``max_queue_delay``)."""
    close_when_quiet: bool = False
    """Close a batch before ``max_delay`` when every request the server has received is
    queued (none is still being read or validated): waiting longer only adds latency for
    clients that send their next request after this answer."""
    queue_limit: Annotated[int, Field(ge=1)] = 2048
    """Rows queued per version before new requests are refused with 503."""
    timeout: Duration = 1.0
    """A request still queued after this is answered 504."""
    max_body_bytes: Annotated[int, Field(ge=1024)] = 8 * 1024 * 1024
    """A larger request body is refused with 413 before it is read."""
    public_url: Annotated[str, Field(pattern=r"^https?://[^/]+")] | None = None
    """How others reach this server (``https://models.example.com``): its alerts link the
    runbooks it serves there, ``<public_url>/runbooks/<page>``. Unset: the host's name and
    the port it listens on. ``monitor.runbook_url``, when set, wins."""
    grpc_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    """Also answer the Open Inference Protocol over gRPC (KServe's and Triton's
    ``GRPCInferenceService``) on this port, through the same hot path; off when unset."""
    max_header_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    """A request line and headers larger than this are refused with 431."""
    header_timeout: Duration = 10.0
    """A request whose headers have not all arrived this long after its first byte gets
    408 and its connection closed (a slow client holds no connection open forever)."""
    body_timeout: Duration = 60.0
    """A request whose body has not all arrived this long after its headers gets 408 and
    its connection closed."""
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
    """Intra-op threads of each model runner; default: the machine's cores minus one (all
    of them for an image model, whose convolutions outweigh the HTTP work), shared among
    the workers."""
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    """Server processes sharing the port (``dnnops serve --workers``). One Python process
    answers HTTP on one core; more workers use more cores, each with its own copy of the
    models and its own batches."""
    warmup_batch_sizes: list[Annotated[int, Field(ge=1)]] = Field(default=[1, 64])
    """Batch sizes run once at startup, before the version turns ready."""
    drain_timeout: Duration = 10.0
    """On SIGTERM: how long queued requests may still run before the server exits."""
    lease: Annotated[float, BeforeValidator(_duration), Field(gt=0)] = 10.0
    """Replicas sharing a PostgreSQL database elect one leader with a lease this long:
    a leader that dies is replaced within it."""
    sticky_header: str = "x-routing-key"
    """Requests with the same value of this header meet the same version during a canary."""
    tls: TlsConfig = Field(default_factory=TlsConfig)
    """HTTPS: the certificate and key the server answers with."""
    oidc: OidcConfig = Field(default_factory=OidcConfig)
    """Callers known by their identity provider's tokens, beside API keys."""
    log: ServeLogConfig = Field(default_factory=ServeLogConfig)
    """How the prediction log keeps sensitive features."""


def _drift_method(name: str) -> str:
    if name != "auto":
        DRIFT_METHODS.get(name)  # an unknown name raises, listing the registered ones
    return name


def _slo_kind(name: str) -> str:
    SLO_KINDS.get(name)
    return name


class DriftConfig(Section):
    """How input drift is judged, per feature and for the whole dataset."""

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
    embedding_alpha: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.01
    """Significance level of an image or text model's embedding drift test (MMD of its
    penultimate layer's embeddings against its held-out rows')."""


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
    """An explain request whose explanation takes longer is answered 504 (starting the
    explaining process and loading the version come first and are not counted)."""
    max_instances: Annotated[int, Field(ge=1)] = 64
    """Instances one explain request may hold."""
    min_explained: Annotated[int, Field(ge=1)] = 30
    """Explanations a window needs before its attribution drift is judged."""
    drift_threshold: Fraction = 0.2
    """Attribution drift: the share of the attributions that moved to other features
    (half the L1 distance between live and validation importance profiles)."""


SignalName = Literal[
    "confidence_drop",
    "estimated_accuracy_drop",
    "attribution_drift",
    "label_drift",
    "production_gap",
    "stale_features",
    "invalid_outputs",
    "cost",
    "client_errors",
]
"""The signals an alert watches beside the SLOs' burn rates and input drift
(``monitor/judgements/signal_alerts.py`` reads each one)."""


KPI_NAME = r"^[a-z][a-z0-9_]{0,39}$"
"""A KPI's name: a folder of the outcome log and a metric label, so kept plain."""


class KpiConfig(Section):
    """A business outcome that arrives after the prediction and is not its label (a
    purchase, a refund, a click, a chargeback amount), sent by prediction id to
    ``POST /v1/outcomes`` or ``dnnops outcomes FILE``, and judged per version as a KPI."""

    name: Annotated[str, Field(pattern=KPI_NAME)]
    """The outcome's name, as clients send it (``purchase``)."""
    better: Literal["higher", "lower"] = "higher"
    """Which way is good: a purchase rate higher, a refund amount lower."""
    missing: Literal["ignore", "zero"] = "ignore"
    """A prediction no outcome arrived for: left out (ignore: the KPI is the mean over the
    outcomes sent), or counted as 0 (zero: clients send only the events that happened,
    such as clicks, and the KPI is per answered prediction)."""


class KpiGateConfig(Section):
    """A canary gate on a KPI: the candidate's not worse than the stable's beyond noise."""

    kpi: str
    """A KPI of ``monitor.kpis``."""
    max_drop: Annotated[float, Field(ge=0.0)] = 0.0
    """How much worse (in the KPI's own units) the candidate may be before it fails; 0:
    any worsening beyond the sampling noise (a one-sided test at the gates' level)."""
    min_outcomes: Annotated[int, Field(ge=2)] = 30
    """Outcomes each side needs in a step before the gate judges it."""


class SignalAlertsConfig(Section):
    """Alerts on the signals the report measures. Each fires once its signal has stayed
    past its threshold for its ``for`` hold-down, and clears only once the signal is back
    under ``clear`` times the threshold, so a value wandering on the boundary does not
    flap. A threshold set to null turns that alert off."""

    for_: Annotated[dict[SignalName, Duration], Field(alias="for")] = Field(default_factory=dict)
    """Each signal's hold-down, where its default does not suit (client_errors: 1 min,
    invalid_outputs: 0, the others: 5 min)."""
    severity: dict[SignalName, Literal["page", "ticket"]] = Field(default_factory=dict)
    """Each signal's severity, where its default does not suit (invalid_outputs and
    client_errors page; the others open tickets)."""
    clear: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    """Hysteresis: a firing alert clears once its signal is under this times its threshold."""
    min_predictions: Annotated[int, Field(ge=1)] = 100
    """Predictions a window needs before its confidence, estimate, cost, stale features or
    client errors (requests, over their short window) are judged."""
    min_labels: Annotated[int, Field(ge=1)] = 50
    """Labels a window needs before its production gap or label drift is judged."""
    confidence_drop: Fraction | None = 0.1
    """The live mean top probability this far under the version's on its test split."""
    accuracy_drop: Fraction | None = 0.05
    """Estimated accuracy (reliable estimates only) this far under the test split's."""
    production_gap: Fraction | None = 0.05
    """Accuracy on arrived labels this far under the test split's, beyond the labels'
    sampling noise (95%); for a regressor, MAE this share over its test MAE."""
    label_drift: Annotated[float, Field(gt=0.0)] | None = 0.1
    """The arrived labels' class distribution this far (Jensen-Shannon) from training's."""
    stale_after: Duration | None = 900.0
    """A feature with no value for this long while requests keep arriving is stale."""
    invalid_outputs: Fraction | None = 0.001
    """The share of requests the model answered with NaN or infinity."""
    client_errors: Fraction | None = 0.25
    """The share of requests refused as invalid (400, 413, 422) over ``client_errors_window``."""
    client_errors_window: Duration = 300.0
    """The window client errors are counted over: short, so a flood is seen while it lasts."""


class MonitorConfig(Section):
    """Monitoring: the report's window, drift, explanations, cost and alerts."""

    window: Duration = 3600.0
    """The report's default window."""
    drift: DriftConfig = Field(default_factory=DriftConfig)
    """How input drift is judged, per feature and for the dataset."""
    explain: ExplainConfig = Field(default_factory=ExplainConfig)
    """Explanations: on request and a background sample of live predictions."""
    cpu_second_price: Annotated[float, Field(ge=0.0)] = 0.00001
    """The price of one CPU-second, for the cost per prediction."""
    currency: Annotated[str, Field(min_length=1, max_length=8)] = "USD"
    """The unit of cpu_second_price, shown beside every cost."""
    webhook_url: str | dict[Literal["page", "ticket"], str] | None = None
    """New and resolved alerts are posted here, one body per model and status, in
    Alertmanager's webhook shape (tried three times): one URL for all, or one per severity
    (``{page: URL, ticket: URL}``; a severity without one is only logged)."""
    alertmanager_url: str | None = None
    """An Alertmanager (``http://alertmanager:9093``): every evaluation posts the firing
    alerts and the newly resolved ones to its ``/api/v2/alerts``, as Prometheus does, and
    it routes, groups, inhibits and silences them (``dnnops export alertmanager``)."""
    runbook_url: Annotated[str, Field(pattern=r"\{page\}")] = "docs/runbooks/{page}.md"
    """Where alerts point for what to do: a template with ``{page}`` (drift, latency,
    availability, accuracy, rollback, ...), e.g. your published docs site's runbooks.
    Unset, a server's alerts link the pages it serves itself, ``<serve.public_url or
    http://host:port>/runbooks/<page>``; the CLI's and the exported rules keep this
    relative default."""
    suppress_during_rollout: bool = True
    """Hold back a rollout candidate's alerts: its rollout's gates judge it (and page)."""
    evaluate_every: Duration | None = 60.0
    """How often a server evaluates its own report and raises alerts; null: never (then
    ``dnnops monitor report --alert`` on a schedule does it)."""
    cost_budget: Annotated[float, Field(gt=0.0)] | None = None
    """The most one prediction may cost (in ``currency``); over it, the cost alert fires.
    Null: cost is shown, never alerted on."""
    kpis: list[KpiConfig] = Field(default_factory=list)
    """Business outcomes judged per version (``POST /v1/outcomes``): the report's KPIs,
    the ``kpi`` objective kind and ``rollout.kpi_gates`` read them."""
    alerts: SignalAlertsConfig = Field(default_factory=SignalAlertsConfig)
    """Alerts on the report's other signals: confidence, estimated accuracy, attribution
    and label drift, the gap to the test split, stale features, invalid outputs, cost and
    client errors."""


class ObjectiveConfig(Section):
    """One service-level objective."""

    name: str
    """The objective's name in the report, alerts and rules."""
    kind: Annotated[str, AfterValidator(_slo_kind)]
    """A registered SLO kind (``dnnops.plugins.SLO_KINDS``): ``latency``, ``success_rate``,
    ``accuracy``, ``label_coverage`` (the share of answered predictions that receive a
    label), ``label_lag`` (the share of labels that arrive within ``threshold`` of their
    prediction), or your own."""
    target: Annotated[float, Field(gt=0.0, lt=1.0)]
    """The share of good events the objective promises (0.999: three nines)."""
    threshold: Duration | None = None
    """Latency objectives: the share of requests faster than this; label_lag: the share of
    labels arriving within this; kpi: a good outcome is at least this (a KPI where higher
    is better) or at most this (lower), by default over 0 or at most 0."""
    kpi: str | None = None
    """A kpi objective: the KPI of ``monitor.kpis`` it judges."""

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
    """page or ticket."""
    long: Duration
    """The long window: the alert needs its burn rate over the speed."""
    short: Duration
    """The short window: it must burn fast too, so the alert stops fast."""
    factor: Annotated[float, Field(gt=0.0)] | None = None
    """The speed as times the rate that spends the budget exactly over ``slo.window``."""
    budget: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    """The speed as the share of the budget spent within ``long``."""

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
    """Service-level objectives, their error budgets and burn-rate alerts."""

    window: Duration = 30 * 86400.0
    """The error budget's period (the SRE Workbook's 30 days)."""
    objectives: list[ObjectiveConfig] = Field(default_factory=list)
    """The service-level objectives, each of a registered kind."""
    burn_rules: BurnPreset | list[BurnRuleConfig] = "workbook"
    """The burn-rate alerts: a preset's name, or the rules themselves."""
    min_events: Annotated[int, Field(ge=0)] = 100
    """A burn-rate rule fires only with at least this many events in its long window:
    two failures in the first three requests are not a page."""


class RolloutConfig(Section):
    """How a new version takes traffic, and the gates that judge it."""

    mode: Literal["canary", "blue_green", "shadow"] = "canary"
    """canary (traffic in steps), blue_green (all at once, then a verification window) or
    shadow (a copy of traffic, never answered)."""
    steps: list[Annotated[int, Field(ge=1, le=100)]] = Field(default=[5, 25, 50, 100])
    """The canary's traffic percentages, in order."""
    interval: Duration = 30.0
    """How long each step runs before it is judged."""
    min_requests: Annotated[int, Field(ge=0)] = 100
    """Requests the candidate needs in a step before it is judged."""
    failure_threshold: Annotated[int, Field(ge=1)] = 2
    """Failed checks in a row that roll the candidate back."""
    min_success_rate: Fraction = 0.99
    """The candidate's success rate must be at least this."""
    max_p99_latency_ratio: Annotated[float, Field(gt=0.0)] = 1.5
    """The candidate's p99 latency may be at most this many times the stable's."""
    latency_slack: Duration = 0.005
    """p99 differences below this are noise, not a regression (millisecond models)."""
    max_prediction_divergence: Fraction = 0.1
    """Share of requests where the candidate's answer may differ from the stable's."""
    max_accuracy_drop: Fraction = 0.02
    """With labels: the candidate's accuracy may be at most this below the stable's (beyond
    noise)."""
    max_error_increase: float = Field(default=0.1, ge=0.0)
    """A regressor's mean absolute error on labels may grow this much (a share of the
    stable version's) before the canary fails."""
    max_estimated_accuracy_drop: Fraction | None = None
    """Before labels: fail a step when the candidate's accuracy, as its calibrated confidence
    estimates it, is this much below the stable's (beyond noise). None: off."""
    kpi_gates: list[KpiGateConfig] = Field(default_factory=list)
    """Business KPIs each step judges: a candidate whose outcomes are worse than the
    stable's beyond noise is rolled back, however accurate it is."""
    replay: Literal["off", "required"] = "off"
    """required: a rollout starts only after a passing ``dnnops replay`` of the candidate
    (logged production inputs run offline through it, judged by these gates) within
    ``replay_max_age``; ``dnnops retrain`` runs one on its challenger."""
    replay_max_age: Duration = 86400.0
    """How recent the passing replay must be."""


class RetrainConfig(Section):
    """When the production version is retrained, and how the challenger is judged."""

    drift_share: Fraction | None = 0.5
    """Retrain when at least this share of features drift over ``drift_window``; null: never on
    drift."""
    drift_window: Duration = 3600.0
    """The window the drift and estimated-accuracy triggers read."""
    accuracy_below: Fraction | None = None
    """Retrain when the production version's accuracy on labels falls below this."""
    estimated_accuracy_below: Fraction | None = None
    """Before labels: retrain when the production version's accuracy, as its calibrated
    confidence estimates it over ``drift_window``, is below this (and the estimate is
    reliable: the inputs stayed within the training support)."""
    mae_above: Annotated[float, Field(gt=0.0)] | None = None
    """A regressor: retrain when its mean absolute error on labels exceeds this (in the
    target's units)."""
    every: Duration | None = None
    """Retrain on a schedule as well; null: only on a trigger."""
    min_new_labels: Annotated[int, Field(ge=0)] = 200
    """Labels that arrived since the last training before a retrain may run."""
    approval: bool = False
    """Hold the challenger's rollout for a person to release (``dnnops rollout start`` on
    the held version)."""
    warm_start: bool = False
    """Train the challenger from the champion's weights (``train.init_from`` set to it)
    instead of from scratch; the retrain says which it did."""
    holdout: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.25
    """Newest share of the captured labeled rows kept out of training: the window on which
    the challenger must beat the champion."""
    background: bool = False
    """Let a server started with ``-c dnnops.yaml`` check the triggers every
    ``check_every`` and run ``dnnops retrain`` in a child process when one fires."""
    check_every: Duration = 300.0
    """How often a server with ``background: true`` checks the retraining triggers."""


class LogsConfig(Section):
    """How long the prediction and feedback logs are kept, and a fleet's shipping."""

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
    """The range's lower end."""
    high: float | None = None
    """The range's upper end."""
    log: bool = False
    """Sample on a log scale (learning rates, weight decay)."""
    int_: bool = Field(default=False, alias="int")
    """Whole numbers only."""
    choices: list[Any] | None = None
    """The values to choose from, instead of a range."""

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
    """median: stop a trial trailing the median of earlier trials at the same epoch; none: run
    every trial in full."""
    startup_trials: Annotated[int, Field(ge=0)] = 5
    """Trials run in full (and sampled at random) before TPE and pruning start."""
    warmup_epochs: Annotated[int, Field(ge=0)] = 3
    """Epochs a trial always runs before it can be pruned."""
    seed: int = 0
    """Seed of the sampler, so a study is repeatable."""

    @property
    def direction(self) -> Literal["minimize", "maximize"]:
        return "maximize" if self.metric == "valid_accuracy" else "minimize"


class ProjectConfig(Section):
    """One project: its data, model, training, evaluation, serving and operations."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
    """The model's name in the registry, the endpoint and every metric."""
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

    @model_validator(mode="after")
    def _inputs_fit_the_model(self) -> ProjectConfig:
        augment, data = self.train.augment, self.data
        if (augment.crop or augment.flip or augment.colour) and data.image is None:
            raise ValueError(
                "train.augment: crop, flip and colour change images; set data.image (or use "
                "a folder of images as data.source)"
            )
        if augment.token_dropout and data.text is None:
            raise ValueError("train.augment.token_dropout changes texts; set data.text")
        if self.model.arch in TEXT_ARCHS and data.text is None:
            raise ValueError(f"model.arch {self.model.arch} reads text: set data.text")
        if self.model.arch in IMAGE_ARCHS and data.image is None:
            raise ValueError(f"model.arch {self.model.arch} reads images: set data.image")
        return self

    @model_validator(mode="after")
    def _kpis_are_declared(self) -> ProjectConfig:
        """A gate or an objective on a KPI names one of ``monitor.kpis``."""
        declared = [kpi.name for kpi in self.monitor.kpis]
        if len(set(declared)) != len(declared):
            raise ValueError(f"monitor.kpis: each name once ({', '.join(declared)})")
        named = [
            (f"rollout.kpi_gates[{i}].kpi", g.kpi) for i, g in enumerate(self.rollout.kpi_gates)
        ]
        for index, objective in enumerate(self.slo.objectives):
            if objective.kind == "kpi":
                named.append((f"slo.objectives[{index}].kpi", objective.kpi or ""))
        for where, name in named:
            if name not in declared:
                known = ", ".join(declared) or "none declared"
                raise ValueError(f"{where}: {name!r} is not in monitor.kpis ({known})")
        return self


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
