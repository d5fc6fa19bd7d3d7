"""NannyML's CBPE on the windows ``estimate.py`` wrote, run in NannyML's own virtual
environment (its pins differ from dnnops's):

    python3 -m venv /tmp/nannyml-venv && /tmp/nannyml-venv/bin/pip install nannyml==0.13.1
    /tmp/nannyml-venv/bin/python benchmarks/monitor/nannyml_cbpe.py WINDOWS.npz OUT.json

Reads the reference rows (the same held-out rows dnnops's calibrator was fitted on) and
the analysis windows (each ``window`` rows long, in order), fits CBPE on the reference and
estimates accuracy per window; writes each window's estimate, its confidence band and the
time taken.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import pandas as pd


def frame(probabilities: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    columns = {f"p{i}": probabilities[:, i] for i in range(probabilities.shape[1])}
    return pd.DataFrame(
        {**columns, "y_pred": probabilities.argmax(axis=1), "y_true": labels.astype(int)}
    )


def main() -> None:
    os.environ["NML_DISABLE_USAGE_LOGGING"] = "1"  # NannyML phones home otherwise
    import nannyml as nml

    data = np.load(sys.argv[1])
    reference = frame(data["reference_probabilities"], data["reference_labels"])
    analysis = frame(data["probabilities"], data["labels"])
    window = int(data["window"])
    classes = data["reference_probabilities"].shape[1]
    proba: str | dict[int, str]
    if classes == 2:
        problem, proba = "classification_binary", "p1"
    else:
        problem, proba = "classification_multiclass", {i: f"p{i}" for i in range(classes)}
    estimator = nml.CBPE(
        y_pred_proba=proba,
        y_pred="y_pred",
        y_true="y_true",
        problem_type=problem,
        metrics=["accuracy"],
        chunk_size=window,
    )
    started = time.perf_counter()
    estimator.fit(reference)
    fitted = time.perf_counter() - started
    started = time.perf_counter()
    results = estimator.estimate(analysis.drop(columns=["y_true"])).to_df()
    estimated = time.perf_counter() - started
    accuracy = results["accuracy"]
    out = {
        "fit_s": fitted,
        "estimate_s_per_window": estimated / len(accuracy),
        "value": accuracy["value"].tolist(),
        "low": accuracy["lower_confidence_boundary"].tolist(),
        "high": accuracy["upper_confidence_boundary"].tolist(),
    }
    with open(sys.argv[2], "w") as file:
        json.dump(out, file)


if __name__ == "__main__":
    main()
