"""Accuracy estimated without labels: dnnops's CBPE and ATC against NannyML's CBPE on the
same windows, side by side (issue 17: mean absolute error at most 2 points of accuracy with
at least 1,000 predictions a window, interval coverage at least 90%, time per window).

For each built-in set it trains the dnnops model into a scratch home (the calibrator is
fitted at registration on the validation split), then draws windows of ``--window`` rows
from the test split under covariate shifts of the raw inputs (none, noise, a shift or a
scaling of a third of the features, and for the digits the quickstart's new camera),
predicts them with the registered version, and estimates each window's accuracy:
- dnnops: the mean calibrated confidence (CBPE) with its 95% interval, and ATC, computed
  as the server's digest computes them;
- dnnops's agreement estimate (the version's panel of members on halves of the features,
  ``evaluate/agreement.py``), and the one the report uses: agreement on windows it flags
  shifted, CBPE otherwise (issue 31: at most 4 points where CBPE errs over 10);
- NannyML 0.13's CBPE, fitted on the same validation rows, in its own virtual environment
  (``--nannyml PYTHON``; see nannyml_cbpe.py).

    .venv/bin/python benchmarks/monitor/estimate.py --nannyml /tmp/nannyml-venv/bin/python

Prints one row per dataset and shift, then the mean absolute error, the coverage and the
time per window of each estimator against the targets. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from dnnops.config import MonitorConfig, load_config
from dnnops.data.prepare import prepare_data
from dnnops.data.preprocess import apply_preprocessing
from dnnops.evaluate.calibration import MIN_ROWS
from dnnops.evaluate.metrics import softmax
from dnnops.home import resolve_home
from dnnops.monitor.judgements.signals import estimated_accuracy
from dnnops.monitor.judgements.signals import input_drift as report_drift
from dnnops.monitor.segments.digest import Reference, estimate_of, stats_of
from dnnops.predlog.records import PredictionRecord
from dnnops.quickstart.camera import new_camera
from dnnops.registry.loader import LoadedVersion, load_version, make_predictor
from dnnops.registry.open import open_registry

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MODELS = {
    "digits": "{hidden: [64], dropout: 0.0}",
    "breast_cancer": "{hidden: [32], dropout: 0.0}",
    "wine": "{hidden: [16], dropout: 0.0}",
}
TARGET_MAE = 0.02
TARGET_COVERAGE = 0.90
WINDOWS_PER_SHIFT = 5
TARGET_CBPE_FAILS = 0.10
TARGET_SHIFTED_MAE = 0.04


@dataclass
class Windows:
    probabilities: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    inputs: list[pd.DataFrame] = field(default_factory=list)


def shifts(dataset: str) -> dict[str, object]:
    out: dict[str, object] = {
        "none": lambda x, rng: x,
        "noise 0.5 sd": lambda x, rng: x + rng.normal(0, 0.5, x.shape) * x.std(axis=0),
        "noise 1 sd": lambda x, rng: x + rng.normal(0, 1.0, x.shape) * x.std(axis=0),
        "third +1 sd": lambda x, rng: _third(x, rng, lambda c, s: c + s),
        "third x1.5": lambda x, rng: _third(x, rng, lambda c, s: c * 1.5),
    }
    if dataset == "digits":
        out["new camera"] = lambda x, rng: new_camera(x, seed=int(rng.integers(1 << 30)))
    return out


def _third(x: np.ndarray, rng: np.random.Generator, change: object) -> np.ndarray:
    out = x.copy()
    picked = np.random.default_rng(0).permutation(x.shape[1])[: max(1, x.shape[1] // 3)]
    for column in picked:
        out[:, column] = change(out[:, column], x[:, column].std())  # type: ignore[operator]
    return out


def train(folder: Path, dataset: str) -> Path:
    config = folder / f"{dataset}.yaml"
    config.write_text(
        f"name: {dataset}\n"
        f'data: {{source: "builtin:{dataset}", preprocessing: {{numeric: standardize}}}}\n'
        f"model: {{arch: mlp, params: {MODELS[dataset]}}}\n"
        "train: {epochs: 20, lr: 0.005, seed: 1}\n"
        "evaluate: {gates: []}\n"
    )
    subprocess.run(
        [str(REPO / ".venv/bin/dnnops"), "train", "-c", str(config), "--quiet"],
        env={**os.environ, "DNNOPS_HOME": str(folder / "home")},
        check=True,
        capture_output=True,
    )
    return config


def probabilities_of(loaded: LoadedVersion, frame: pd.DataFrame) -> np.ndarray:
    predict = make_predictor(loaded, 1)
    return softmax(predict(apply_preprocessing(loaded.preprocessor, frame)))


def as_records(
    frame: pd.DataFrame, probabilities: np.ndarray, classes: list[int | str]
) -> list[PredictionRecord]:
    """The window as the server logs it: one record per row, inputs keyed by feature."""
    now = time.time()
    return [
        PredictionRecord(
            ts=now,
            status=200,
            endpoint="bench",
            model="bench",
            version="1",
            id=str(i),
            inputs=row,
            output=classes[int(p.argmax())],
            probabilities=p.tolist(),
        )
        for i, (row, p) in enumerate(
            zip(frame.to_dict(orient="records"), probabilities, strict=True)
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--nannyml", help="the python of a virtual environment with nannyml")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for dataset in MODELS:
            config = load_config(train(folder, dataset))
            registry = open_registry(resolve_home(folder / "home"))
            loaded = load_version(registry, registry.resolve(dataset, "1"))
            calibrator = loaded.calibrator
            assert calibrator is not None, (
                dataset,
                registry.manifest(loaded.record)["files"].keys(),
            )
            prepared = prepare_data(config.data, config.model, config.task)
            features = loaded.schema.feature_names
            valid = prepared.dataset.take(prepared.split.valid)
            test = prepared.dataset.take(prepared.split.test)
            small = len(prepared.valid.y) < MIN_ROWS  # as the calibrator: add the test rows
            held_y = (
                np.concatenate([prepared.valid.y, prepared.test.y]) if small else prepared.valid.y
            )
            valid_inputs, test_inputs = (
                cast(pd.DataFrame, valid.inputs),
                cast(pd.DataFrame, test.inputs),
            )
            held_inputs = pd.concat([valid_inputs, test_inputs]) if small else valid_inputs
            held_out = probabilities_of(loaded, held_inputs)
            test_x = test_inputs[features].to_numpy(dtype="float64")
            test_y = prepared.test.y
            windows = Windows()
            rng = np.random.default_rng(1)
            for name, shift in shifts(dataset).items():
                for _ in range(WINDOWS_PER_SHIFT):
                    picked = rng.integers(0, len(test_y), args.window)
                    shifted = shift(test_x[picked], rng)  # type: ignore[operator]
                    frame = pd.DataFrame(shifted, columns=features)
                    windows.probabilities.append(probabilities_of(loaded, frame))
                    windows.inputs.append(frame)
                    windows.labels.append(test_y[picked])
                    windows.names.append(name)
            theirs = _nannyml(args.nannyml, folder, held_out, held_y, windows, args.window)
            reference = Reference(
                loaded.profile,
                features,
                tensor=False,
                calibrator=calibrator,
                agreement=loaded.agreement,
            )
            for index, (probabilities, labels) in enumerate(
                zip(windows.probabilities, windows.labels, strict=True)
            ):
                records = as_records(windows.inputs[index], probabilities, loaded.classes)
                started = time.perf_counter()
                estimate_of(records, calibrator)  # the estimate's share of the digest
                took = time.perf_counter() - started
                stats = stats_of(records, reference, ())  # the server's digest of a window
                drift = report_drift(loaded, stats, MonitorConfig())
                section_estimate = estimated_accuracy(loaded, stats, drift=drift, quality=None)
                assert section_estimate is not None
                truth = float((probabilities.argmax(axis=1) == labels).mean())
                shifted = (
                    drift is not None
                    and drift.multivariate is not None
                    and (drift.multivariate.drifted)
                )
                row = {
                    "dataset": dataset,
                    "shift": windows.names[index],
                    "accuracy": truth,
                    "cbpe": section_estimate.cbpe,
                    "cbpe_in": section_estimate.low <= truth <= section_estimate.high,
                    "atc": section_estimate.atc,
                    "agreement": section_estimate.agreement,
                    "used": section_estimate.value,
                    "method": section_estimate.method,
                    "reliable": not shifted,
                    "dnnops_s": took,
                    "calibration": calibrator.method,
                }
                if theirs is not None:
                    row["nannyml"] = theirs["value"][index]
                    row["nannyml_in"] = theirs["low"][index] <= truth <= theirs["high"][index]
                    row["nannyml_s"] = theirs["estimate_s_per_window"]
                rows.append(row)
    report(pd.DataFrame(rows))


def _nannyml(
    python: str | None,
    folder: Path,
    reference: np.ndarray,
    reference_labels: np.ndarray,
    windows: Windows,
    window: int,
) -> dict[str, list[float]] | None:
    if python is None:
        return None
    data, out = folder / "windows.npz", folder / "nannyml.json"
    np.savez(
        data,
        reference_probabilities=reference,
        reference_labels=reference_labels,
        probabilities=np.concatenate(windows.probabilities),
        labels=np.concatenate(windows.labels),
        window=window,
    )
    subprocess.run([python, str(HERE / "nannyml_cbpe.py"), str(data), str(out)], check=True)
    found: dict[str, list[float]] = json.loads(out.read_text())
    return found


def report(frame: pd.DataFrame) -> None:
    grouped = frame.groupby(["dataset", "shift"], sort=False)
    has_theirs = "nannyml" in frame
    print(
        "| dataset | shift | accuracy | dnnops CBPE | reliable | dnnops ATC | agreement "
        "| dnnops (as used) | NannyML CBPE |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (dataset, shift), part in grouped:
        theirs = f"{part['nannyml'].mean():.3f}" if has_theirs else "-"
        print(
            f"| {dataset} | {shift} | {part['accuracy'].mean():.3f} | {part['cbpe'].mean():.3f} "
            f"| {part['reliable'].mean():.0%} | {part['atc'].mean():.3f} "
            f"| {part['agreement'].mean():.3f} | {part['used'].mean():.3f} | {theirs} |"
        )
    print()
    print("| estimator | MAE (points) | interval coverage | time per window |")
    print("| --- | --- | --- | --- |")
    estimators = [
        ("dnnops CBPE", "cbpe", "cbpe_in", "dnnops_s"),
        ("dnnops ATC", "atc", None, None),
        ("dnnops agreement", "agreement", None, None),
        ("dnnops (as used)", "used", None, None),
    ]
    if has_theirs:
        estimators.append(("NannyML CBPE", "nannyml", "nannyml_in", "nannyml_s"))
    for label, column, covered, seconds in estimators:
        mae = 100 * (frame[column] - frame["accuracy"]).abs().mean()
        coverage = f"{frame[covered].mean():.0%}" if covered else "-"
        timing = f"{1000 * frame[seconds].median():.2f} ms" if seconds else "-"
        print(f"| {label} | {mae:.2f} | {coverage} | {timing} |")
    reliable = frame[frame["reliable"]]
    flagged = frame[~frame["reliable"]]
    print(
        f"\ndnnops flags {len(flagged)} of {len(frame)} windows unreliable (multivariate drift); "
        f"their mean error {100 * (flagged['cbpe'] - flagged['accuracy']).abs().mean():.1f} "
        "points. On the windows it calls reliable:"
    )
    print("| estimator | MAE (points) | interval coverage |")
    print("| --- | --- | --- |")
    for label, column, covered in [("dnnops CBPE", "cbpe", "cbpe_in")] + (
        [("NannyML CBPE", "nannyml", "nannyml_in")] if has_theirs else []
    ):
        mae = 100 * (reliable[column] - reliable["accuracy"]).abs().mean()
        print(f"| {label} | {mae:.2f} | {reliable[covered].mean():.0%} |")
    overall = float((reliable["cbpe"] - reliable["accuracy"]).abs().mean())
    covered_share = float(reliable["cbpe_in"].mean())
    print(
        f"\ntarget (issue 17, on windows called reliable): MAE <= {100 * TARGET_MAE:.0f} points: "
        f"{'met' if overall <= TARGET_MAE else 'MISSED'} ({100 * overall:.2f}); coverage >= "
        f"{TARGET_COVERAGE:.0%}: {'met' if covered_share >= TARGET_COVERAGE else 'MISSED'} "
        f"({covered_share:.0%})"
    )

    shifted_report(frame)


def shifted_report(frame: pd.DataFrame) -> None:
    """Issue 31's target for shifted windows: where CBPE errs over 10 points, the estimate
    the report uses errs at most 4 on average; unshifted, it is no worse than CBPE."""
    error = {c: (frame[c] - frame["accuracy"]).abs() for c in ("cbpe", "agreement", "used")}
    bad = error["cbpe"] > TARGET_CBPE_FAILS
    plain = frame["shift"] == "none"
    used = frame.loc[~frame["reliable"], "method"].value_counts().to_dict()
    print(f"\nshifted windows the report judged by agreement: {used}")
    print("| windows | n | CBPE MAE | agreement MAE | as used MAE |")
    print("| --- | --- | --- | --- | --- |")
    for label, rows in [("CBPE errs > 10 points", bad), ("unshifted", plain), ("all", None)]:
        part = {c: (e if rows is None else e[rows]) for c, e in error.items()}
        print(
            f"| {label} | {len(part['cbpe'])} | {100 * part['cbpe'].mean():.2f} "
            f"| {100 * part['agreement'].mean():.2f} | {100 * part['used'].mean():.2f} |"
        )
    where_bad = float(error["used"][bad].mean()) if bad.any() else 0.0
    unshifted_ok = error["used"][plain].mean() <= error["cbpe"][plain].mean() + 1e-9
    print(
        f"\ntarget (issue 31, item 7): MAE <= {100 * TARGET_SHIFTED_MAE:.0f} points where CBPE "
        f"errs over 10: {'met' if where_bad <= TARGET_SHIFTED_MAE else 'MISSED'} "
        f"({100 * where_bad:.2f}); no worse than CBPE unshifted: "
        f"{'met' if unshifted_ok else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
