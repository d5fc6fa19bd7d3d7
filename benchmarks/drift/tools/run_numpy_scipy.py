"""Baseline: a plain numpy/scipy script (KS per numeric, chi-square per category, Bonferroni)."""

import json
import sys

import numpy as np
import pandas as pd
from scipy import stats

reference, current = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
alpha = 0.05 / len(reference.columns)
flagged = []
for name in reference.columns:
    if isinstance(reference[name].dtype, pd.CategoricalDtype) or reference[name].dtype == object:
        levels = sorted(set(reference[name].astype(str)) | set(current[name].astype(str)))
        ref = reference[name].astype(str).value_counts().reindex(levels, fill_value=0).to_numpy()
        cur = current[name].astype(str).value_counts().reindex(levels, fill_value=0).to_numpy()
        p = stats.chi2_contingency(np.vstack([ref, cur]))[1]
    else:
        p = stats.ks_2samp(reference[name].to_numpy(), current[name].to_numpy()).pvalue
    if p < alpha:
        flagged.append(name)
print(json.dumps({"flagged": flagged}))
