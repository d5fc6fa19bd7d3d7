"""``dnnops init --data FILE --target COL``: a commented dnnops.yaml inferred from a file.

What is inferred, and why:
- the task, from the target: text, booleans or a few integers are classes; many distinct
  numbers are a quantity (regression);
- columns that are not features: an identifier (every value distinct, text or integers
  named like an id) is dropped;
- category columns: text columns are categories on their own; integer columns with few
  distinct values are listed as candidates in a comment, not forced;
- a model size for the row count (a wider network needs more rows to pay off), and a gate
  that demands the model beat always answering the most common class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml

from dnnops.config import PreprocessingConfig
from dnnops.data.leaks import Finding, Labeled, Leak, identifier_columns, single_feature_leaks
from dnnops.data.media.detect import text_columns
from dnnops.data.media.specs import ImageSpec
from dnnops.errors import UsageError
from dnnops.evaluate.baseline import Rows, strong_baseline, trivial_baseline

Task = Literal["classification", "regression"]
FEW_VALUES = 10
"""Integer columns with at most this many distinct values may be categories."""
MAX_CLASSES = 50
FEW_CLASSES = 10
NUMERIC_BINS = 16
"""Bins per number in the inferred project (see ``PreprocessingConfig.numeric_bins``)."""
EMBEDDING_DIM = 8
"""The inferred MLP's width per embedded category column (``MlpParams.embedding_dim``)."""
CLASS_SHARE = 0.05
ONE_HOT_MAX = PreprocessingConfig().one_hot_max


@dataclass(frozen=True)
class Inferred:
    name: str
    source: Path
    target: str
    task: Task
    task_reason: str
    rows: int
    drop: list[Finding]
    categories: list[str]
    category_candidates: list[str]
    missing: dict[str, int]
    hidden: list[int]
    epochs: int
    majority_share: float | None
    minority_share: float | None
    """The rarest class's share of the rows (classification)."""
    leaks: list[Leak]
    yardstick: Yardstick | None
    distinct: dict[str, int]
    """Distinct values per kept column."""
    text: str | None = None
    """The free-text column the model reads alone (a text project), None for a table."""
    text_reason: str = ""
    text_words: int = 0
    """Words in the longest texts (the 95th percentile): what ``max_length`` is sized from."""

    @property
    def imbalanced(self) -> bool:
        return self.minority_share is not None and self.minority_share < MINORITY_SHARE


MINORITY_SHARE = 0.2
"""A class rarer than this makes accuracy a poor judge: class weights and balanced gates."""
YARDSTICK_ROWS = 50_000
"""Rows the init-time baselines see at most: a quick estimate, not the evaluation."""


@dataclass(frozen=True)
class Yardstick:
    """One split of the file scored by the baselines: what gates can reasonably ask for."""

    held_out_rows: int
    classes: int
    """0 for a regressor."""
    trivial: dict[str, float]
    strong: dict[str, float]


def infer_project(source: Path, target: str, task: Task | None = None) -> Inferred:
    """Read ``source`` once and decide what the project file should say."""
    from dnnops.data.sources import load_table

    frame = load_table(source)
    if target not in frame.columns:
        raise UsageError(
            f"{source} has no column {target!r}; its columns are {list(frame.columns)[:20]}"
        )
    labels = frame[target]
    inferred_task, reason = infer_task(labels)
    chosen = task or inferred_task
    features = frame.drop(columns=[target])
    drop = identifier_columns(features)
    kept = features.drop(columns=[f.column for f in drop])
    labeled = labels.notna().to_numpy()
    rows = len(frame)
    counts = labels.value_counts(normalize=True)
    texts = text_columns(kept)
    text = next(iter(texts), None)
    if text is not None:  # the model reads its text alone: the other columns are dropped
        alone = "a text model reads its text column alone"
        drop += [Finding(str(c), alone) for c in kept.columns if str(c) != text]
        kept = kept[[text]]
        leaks: list[Leak] = []
        yardstick = _text_yardstick(kept[text][labeled], labels[labeled], chosen)
    else:
        leaks, yardstick = _check_rows(kept[labeled], labels[labeled], chosen)
    return Inferred(
        name=_project_name(source),
        source=source,
        target=target,
        task=chosen,
        task_reason=reason if task is None else f"given with --task (inferred: {inferred_task})",
        rows=rows,
        drop=drop,
        categories=[str(c) for c in kept.columns if not pd.api.types.is_numeric_dtype(kept[c])],
        category_candidates=[
            str(c)
            for c in kept.columns
            if pd.api.types.is_integer_dtype(kept[c]) and kept[c].nunique() <= FEW_VALUES
        ],
        missing={str(c): int(n) for c, n in kept.isna().sum().items() if n},
        hidden=_hidden(rows),
        epochs=60 if rows < 5_000 else 30 if rows < 100_000 else 10,
        majority_share=float(counts.iloc[0]) if len(counts) else None,
        minority_share=float(counts.iloc[-1])
        if chosen == "classification" and len(counts)
        else None,
        leaks=leaks,
        yardstick=yardstick,
        distinct={str(c): int(kept[c].nunique()) for c in kept.columns},
        text=text,
        text_reason=texts.get(text, "") if text else "",
        text_words=_longest_words(kept[text]) if text else 0,
    )


BAG_OF_WORDS = 512


def _text_yardstick(texts: pd.Series, labels: pd.Series, task: Task) -> Yardstick | None:
    """The baselines on a text column: gradient boosting on a bag of words (counts of the
    512 most frequent words), what training will print beside the network."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(max_features=BAG_OF_WORDS, token_pattern=r"(?u)\b\w+\b")
    counts = vectorizer.fit_transform(texts.fillna("").astype(str)).toarray()
    bag = pd.DataFrame(counts.astype(np.float32), columns=vectorizer.get_feature_names_out())
    return _check_rows(bag, labels.reset_index(drop=True), task, find_leaks=False)[1]


def _longest_words(texts: pd.Series) -> int:
    return int(np.ceil(texts.dropna().astype(str).str.count(r"\S+").quantile(0.95)))


def _check_rows(
    features: pd.DataFrame, labels: pd.Series, task: Task, *, find_leaks: bool = True
) -> tuple[list[Leak], Yardstick | None]:
    """Single-feature leaks and the baselines (without the leaking features, which a
    gate must not be set from), on a random fifth held out of (at most
    ``YARDSTICK_ROWS``) rows."""
    if len(features) < 50:
        return [], None
    rng = np.random.default_rng(0)
    order = rng.permutation(len(features))[:YARDSTICK_ROWS]
    cut = len(order) * 4 // 5
    train, test = order[:cut], order[cut:]
    regression = task == "regression"
    leaks = (
        single_feature_leaks(
            Labeled(features.iloc[train], labels.iloc[train]),
            Labeled(features.iloc[test], labels.iloc[test]),
            regression=regression,
        )
        if find_leaks
        else []
    )
    features = features.drop(columns=[leak.column for leak in leaks])  # gates it can reach
    if regression:
        y = pd.to_numeric(labels, errors="coerce").to_numpy(dtype="float64")
        if np.isnan(y).any():
            return leaks, None
        classes = 0
    else:
        names, y = np.unique(labels.astype(str).to_numpy(), return_inverse=True)
        classes = len(names)
        if classes < 2:
            return leaks, None
    trivial = trivial_baseline(y[train], y[test], classes=classes)
    shares = np.bincount(y.astype("int64")) / len(y) if classes else np.ones(1)
    strong = strong_baseline(
        Rows(features.iloc[train], y[train]),
        Rows(features.iloc[test], y[test]),
        classes=classes,
        balanced=bool(classes) and float(shares.min()) < MINORITY_SHARE,
    )
    return leaks, Yardstick(len(test), classes, trivial, strong)


def infer_task(labels: pd.Series) -> tuple[Task, str]:
    """Classification for text, booleans and a few distinct integers; regression for
    fractions and for integers too many to be classes: over ``MAX_CLASSES``, or over
    ``FEW_CLASSES`` and ``CLASS_SHARE`` of the rows (a count of bikes an hour has 572
    values in 8,645 rows; scikit-learn's gradient boosting would grow a tree per value
    per round, and the user meant a number). With the reason, for init's message."""
    values = labels.dropna()
    distinct = values.nunique()
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "classification", f"{distinct} distinct labels"
    if not (values == values.round()).all():
        return "regression", f"{distinct} distinct numbers with fractions"
    if distinct > MAX_CLASSES or (distinct > FEW_CLASSES and distinct > CLASS_SHARE * len(values)):
        return "regression", f"{distinct} distinct integers, too many to be classes"
    return "classification", f"{distinct} distinct integer labels"


def _hidden(rows: int) -> list[int]:
    if rows < 1_000:
        return [32]
    if rows < 10_000:
        return [64, 32]
    if rows < 100_000:
        return [128, 64]
    return [256, 128]


def _batch_size(rows: int) -> int:
    """Rows a step: 64 on a small table (enough steps an epoch to learn), more on a large
    one, where 64 rows a step leaves the cores idle between steps of Python (on a 43k-row
    table an epoch at 256 took a third of the time at 64, for the same validation loss)."""
    if rows < 10_000:
        return 64
    if rows < 100_000:
        return 256
    return 512


def _project_name(source: Path) -> str:
    name = "".join(c if c.isalnum() or c in "_.-" else "-" for c in source.stem).strip("-.")
    return (name or "project")[:64]


def project_text(inferred: Inferred) -> str:
    """The commented project file."""
    if inferred.text is not None:
        return text_project_text(inferred)
    lines = [
        *_head(
            inferred,
            "# Every key is optional except name and data.source; change what the inference got",
            '# wrong. Durations are strings: "500ms", "30s", "5m", "1h", "3d".',
        ),
        *(
            ["  # regression: the loss is train.loss (mse, or huber for outliers)"]
            if inferred.task == "regression"
            else []
        ),
        "  schema:",
        f"    categorical: {_flow([])}   # text columns are categories already: "
        + (", ".join(inferred.categories) or "none"),
    ]
    many = {
        c: int(inferred.distinct.get(c, 0))
        for c in inferred.categories
        if inferred.distinct.get(c, 0) > ONE_HOT_MAX
    }
    if many:
        shown = ", ".join(f"{c} ({n} values)" for c, n in many.items())
        lines.append(f"    # hashed into preprocessing.hash_buckets inputs, not one-hot: {shown}")
    if inferred.category_candidates:
        lines.append(
            "    # integer columns with few values that may be categories: "
            + ", ".join(inferred.category_candidates)
        )
    lines += [
        f"    drop: {_flow([f.column for f in inferred.drop])}"
        + ("   # not features (training drops such columns anyway):" if inferred.drop else ""),
        *[f"    #   {f.column}: {f.reason}" for f in inferred.drop],
        *[f"    # WARNING: {leak.message()}" for leak in inferred.leaks],
        "    range_tolerance: 0.1          # serving counts values 10% beyond the training range",
        "  preprocessing:",
        "    numeric: standardize          # missing numbers are imputed with the training mean",
        f"    numeric_bins: {NUMERIC_BINS}              # and a piecewise-linear encoding over "
        "quantile bins (0: off)",
    ]
    if inferred.missing:
        shown = ", ".join(f"{k} ({v})" for k, v in inferred.missing.items())
        lines.append(f"  # columns with missing values (rows): {shown}")
    lines += [
        "",
        "model:",
        "  arch: mlp",
        f"  params: {{hidden: {inferred.hidden}, dropout: 0.1, embedding_dim: {EMBEDDING_DIM}}}"
        f"   # sized for {inferred.rows} rows; a category with more values than "
        "embedding_dim is embedded",
        "",
        "train:",
        f"  epochs: {inferred.epochs}",
        f"  batch_size: {_batch_size(inferred.rows)}"
        f"          # rows a step, sized for {inferred.rows} rows",
        "  lr: 0.003",
        "  early_stopping: {metric: valid_loss, patience: 8, restore_best: true}",
        "  seed: 0",
        "  preset: auto                   # fast: <= 10 epochs; best: 4 networks averaged",
        *_class_weight(inferred),
        "",
        *_gates(inferred),
        "",
        "serve:                            # the input policy (docs/input-policy.md)",
        "  missing: impute                 # impute | reject",
        "  unseen_category: unknown        # unknown | reject",
        "  out_of_range: accept            # accept | clip | reject",
        "  non_finite: reject              # reject | impute",
        "",
        *SLO_LINES,
    ]
    return "\n".join(lines) + "\n"


def text_project_text(inferred: Inferred) -> str:
    """The commented project file of a text column: its tokenizer sized for the data."""
    assert inferred.text is not None
    # a word is ~1.3 BPE tokens; [CLS] and room to spare, in multiples of 8
    max_length = int(min(512, max(16, math.ceil(inferred.text_words * 1.3 / 8 + 1) * 8)))
    vocabulary = 8000 if inferred.rows >= 5_000 else 2000
    lines = [
        *_head(
            inferred, f"# {inferred.text!r} is {inferred.text_reason}: the model reads it alone."
        ),
        "  schema:",
        f"    drop: {_flow([f.column for f in inferred.drop])}",
        *[f"    #   {f.column}: {f.reason}" for f in inferred.drop],
        "  text:",
        f"    column: {_quote(inferred.text)}",
        "    tokenizer: bpe                # bpe | wordpiece, trained on the training split",
        f"    vocab_size: {vocabulary}",
        f"    max_length: {max_length}               # tokens the model reads, [CLS] "
        f"included: 95% of the texts have at most {inferred.text_words} words",
        "    too_long: truncate            # truncate | reject (at inference)",
        "    empty: reject                 # reject | accept (at inference)",
        "",
        "model:",
        "  arch: text_transformer          # text_transformer | embedding_bag (a mean of "
        "token embeddings)",
        "  params: {d_model: 64, heads: 4, layers: 2}",
        "",
        "train:",
        f"  epochs: {20 if inferred.rows < 5_000 else 10}",
        f"  batch_size: {_batch_size(inferred.rows)}",
        "  lr: 0.002",
        "  augment: {token_dropout: 0.1}   # drop a tenth of each training text's tokens",
        "  early_stopping: {metric: valid_loss, patience: 4, restore_best: true}",
        "  seed: 0",
        *_class_weight(inferred),
        "",
        *_gates(inferred),
        "",
        *SLO_LINES,
    ]
    return "\n".join(lines) + "\n"


def _head(inferred: Inferred, *notes: str) -> list[str]:
    """The file's opening comment, ``notes``, name, task and where the data is."""
    q = _quote
    return [
        f"# dnnops project file inferred from {inferred.source} ({inferred.rows} rows) by",
        f"#   dnnops init --data {inferred.source} --target {inferred.target}",
        *notes,
        f"name: {q(inferred.name)}",
        f"task: {inferred.task}                 # inferred: {inferred.task_reason}",
        "",
        "data:",
        f"  source: {q(str(inferred.source))}",
        f"  target: {q(inferred.target)}",
        "  split: {train: 0.8, valid: 0.1, test: 0.1, seed: 0, stratify: "
        + ("true}" if inferred.task == "classification" else "false}"),
    ]


def _class_weight(inferred: Inferred) -> list[str]:
    if not inferred.imbalanced:
        return []
    return [
        f"  class_weight: balanced         # the rarest class is "
        f"{inferred.minority_share or 0:.1%} of the rows: weigh it up, or the",
        "                                  # network learns to never answer it",
    ]


SLO_LINES = [
    "slo:",
    "  objectives:",
    "    - {name: latency, kind: latency, target: 0.99, threshold: 100ms}",
    "    - {name: availability, kind: success_rate, target: 0.999}",
]


GATE_SHARE = 0.5
"""Inferred gates ask for this share of the way from the trivial baseline to the strong
one on a held-out fifth: reachable by construction, yet never passed by a model that
learned nothing."""


def _gates(inferred: Inferred) -> list[str]:
    """Gates the data supports: each set from the baselines measured at init, on the
    metrics that stay honest for this task (balanced ones when a class is rare)."""
    yardstick = inferred.yardstick
    head = [
        "evaluate:",
        "  baseline: hist_gradient_boosting   # each evaluation scores it beside the model",
        "  gates:                          # a failed gate: registered, no alias moves, exit 1",
    ]
    if yardstick is None:
        return [*head[:2], "  gates: []   # too few labeled rows to set a reachable gate"]
    metrics = _gate_metrics(inferred)
    lines = [*head]
    for metric in metrics:
        low, high = yardstick.trivial.get(metric, 0.0), yardstick.strong.get(metric, 0.0)
        floor = math.floor((low + GATE_SHARE * max(0.0, high - low)) * 100) / 100
        lines.append(
            f"    - {{metric: {metric}, min: {floor}}}   # trivial {low:.3f}, "
            f"gradient boosting {high:.3f} on {yardstick.held_out_rows} held-out rows"
        )
    lines.append(
        "    # - {metric: beats_baseline, min: 1}   # ask the network to match gradient boosting"
    )
    return lines


def _gate_metrics(inferred: Inferred) -> list[str]:
    if inferred.task == "regression":
        return ["r2"]
    binary = inferred.yardstick is not None and inferred.yardstick.classes == 2
    if inferred.imbalanced:
        return ["balanced_accuracy", "min_recall"] + (["roc_auc"] if binary else [])
    return ["accuracy"]


def _quote(text: str) -> str:
    dumped: str = yaml.safe_dump(text, default_style=None).strip()
    return dumped.removesuffix("\n...").strip()


def _flow(items: list[str]) -> str:
    return "[" + ", ".join(_quote(i) for i in items) + "]"


@dataclass(frozen=True)
class PhotoFolder:
    """What ``dnnops init --data photos/`` read of a folder of images."""

    source: Path
    target: str
    classes: dict[str, int]
    """Images per class (subfolder)."""
    spec: ImageSpec

    @property
    def images(self) -> int:
        return sum(self.classes.values())

    @property
    def side(self) -> int:
        """The square the model sees: 64 when the smallest photo has it, else 32 (CPU
        friendly; raise it for detail)."""
        return 64 if min(self.spec.min_width, self.spec.min_height) >= 64 else 32

    @property
    def channels(self) -> int:
        return 1 if set(self.spec.modes) <= {"L", "1", "I;16", "I"} else 3


def _photo_batch_size(images: int) -> int:
    """Images a step. A small folder at 64 a step gives batch norm one or two updates an
    epoch, and its running statistics stay near their start: on 50 photos at 64 the
    validation accuracy stayed at chance while the training loss fell to 0.003; at 16,
    100% (the same project)."""
    return 16 if images < 1_000 else 32 if images < 5_000 else 64


def infer_photo_folder(source: Path, target: str) -> PhotoFolder:
    """Read the folder once: its classes and what its images are (a sample of them)."""
    from dnnops.data.media.describe import describe_images
    from dnnops.data.media.folder import load_image_folder

    frame = load_image_folder(source, image_column="image", target=target)
    classes = {str(k): int(v) for k, v in frame[target].value_counts().sort_index().items()}
    return PhotoFolder(source, target, classes, describe_images(frame["image"]))


def photo_project_text(folder: PhotoFolder) -> str:
    """The commented project file of a folder of photos."""
    q = _quote
    side, smallest = folder.side, min(folder.classes.values())
    lines = [
        f"# dnnops project file inferred from {folder.source}/ ({folder.images} images in "
        f"{len(folder.classes)} classes) by",
        f"#   dnnops init --data {folder.source}/ --target {folder.target}",
        f"# formats {', '.join(folder.spec.formats)}; modes {', '.join(folder.spec.modes)}; "
        f"{folder.spec.min_width}..{folder.spec.max_width} x "
        f"{folder.spec.min_height}..{folder.spec.max_height} pixels",
        f"name: {q(_project_name(folder.source))}",
        "task: classification",
        "",
        "data:",
        f"  source: {q(str(folder.source) + '/')}       # one subfolder per class",
        f"  target: {q(folder.target)}                   # what the class is called",
        "  split: {train: 0.8, valid: 0.1, test: 0.1, seed: 0, stratify: true}",
        "  image:",
        f"    size: [{side}, {side}]                # scaled and centre-cropped to this; "
        "larger sees more detail, slower",
        f"    channels: {folder.channels}                   # 1: greyscale | 3: RGB",
        "    unreadable: skip              # skip | fail: a file that is not a usable image",
        "",
        "model:",
        "  arch: resnet18                  # cnn | resnet18 | mobilenet_v2 (torchvision's names)",
        "  params: {width: 16, small_input: "
        + ("true}" if side <= 64 else "false}")
        + "   # 16 channels in the first stage",
        "",
        "train:",
        f"  epochs: {30 if folder.images < 2_000 else 15}",
        f"  batch_size: {_photo_batch_size(folder.images)}                 # small batches: "
        "batch norm needs steps to learn its statistics",
        "  lr: 0.003",
        f"  augment: {{crop: {side // 16}, flip: true}}   # no flip where a mirror image "
        "means another thing (text, digits)",
        "  # init_from: NAME@production    # start from a registered version, or a weights file",
        "  early_stopping: {metric: valid_loss, patience: 5, restore_best: true}",
        "  seed: 0",
        *(
            [
                "  class_weight: balanced         # the smallest class has "
                f"{smallest} of {folder.images} images"
            ]
            if smallest / folder.images < MINORITY_SHARE / max(1, len(folder.classes) - 1)
            else []
        ),
        "",
        "evaluate:                         # scored beside gradient boosting on the pixels",
        "  gates: []                       # e.g. [{metric: balanced_accuracy, min: 0.8}]",
        "",
        *SLO_LINES,
    ]
    return "\n".join(lines) + "\n"
