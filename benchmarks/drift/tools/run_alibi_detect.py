"""alibi-detect: TabularDrift (KS for numbers, chi-square for categories, Bonferroni)."""

import json
import sys

import numpy as np
import pandas as pd
from alibi_detect.cd import TabularDrift

reference, current = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
names = list(reference.columns)
categorical = [
    i for i, n in enumerate(names) if isinstance(reference[n].dtype, pd.CategoricalDtype)
]
encode = {
    n: {v: k for k, v in enumerate(reference[n].cat.categories)}
    for n in names
    if isinstance(reference[n].dtype, pd.CategoricalDtype)
}


def as_array(frame: pd.DataFrame) -> np.ndarray:
    columns = [
        frame[n].map(encode[n]).astype("float32") if n in encode else frame[n].astype("float32")
        for n in names
    ]
    return np.column_stack(columns)


detector = TabularDrift(
    as_array(reference), p_val=0.05, categories_per_feature={i: None for i in categorical}
)
result = detector.predict(as_array(current), drift_type="feature")
print(json.dumps({"flagged": [names[i] for i, d in enumerate(result["data"]["is_drift"]) if d]}))
