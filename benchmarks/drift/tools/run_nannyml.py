"""NannyML: univariate drift (KS and chi-square) plus the PCA data reconstruction drift."""

import json
import sys

import nannyml as nml
import pandas as pd

reference, current = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
names = list(reference.columns)
chunk = {"chunk_number": 10}  # thresholds come from the spread over reference chunks
univariate = nml.UnivariateDriftCalculator(
    column_names=names,
    continuous_methods=["kolmogorov_smirnov"],
    categorical_methods=["chi2"],
    **chunk,
).fit(reference)
table = univariate.calculate(current).filter(period="analysis").to_df()
flagged = [
    n
    for n in names
    if any(table[n][m]["alert"].any() for m in table[n].columns.get_level_values(0).unique())
]
numeric = [n for n in names if not isinstance(reference[n].dtype, pd.CategoricalDtype)]
pca = nml.DataReconstructionDriftCalculator(column_names=numeric, **chunk).fit(reference)
joint = pca.calculate(current).filter(period="analysis").to_df()
if float(joint["reconstruction_error"]["alert"].mean()) > 0.5:
    flagged.append("(multivariate)")
print(json.dumps({"flagged": flagged}))
