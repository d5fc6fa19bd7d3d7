"""Evidently: DataDriftPreset with its defaults (Wasserstein / Jensen-Shannon over 1,000 rows)."""

import json
import sys

import pandas as pd

reference, current = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
try:  # evidently >= 0.7
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset()]).run(current, reference)
    flagged = []
    for metric in snapshot.dict()["metrics"]:
        name = metric.get("metric_name", "")
        value = metric.get("value")
        if name.startswith("ValueDrift(") and isinstance(value, (int, float)):
            column = name.split("column=")[1].split(",")[0].rstrip(")")
            method_threshold = metric.get("config", {}).get("threshold")
            flagged_now = value >= method_threshold if method_threshold is not None else False
            if flagged_now:
                flagged.append(column)
except ImportError:  # evidently < 0.7
    from evidently.metric_preset import DataDriftPreset
    from evidently.report import Report

    report = Report(metrics=[DataDriftPreset()])
    report.run(reference_data=reference, current_data=current)
    table = report.as_dict()["metrics"][1]["result"]["drift_by_columns"]
    flagged = [name for name, column in table.items() if column["drift_detected"]]
print(json.dumps({"flagged": sorted(flagged)}))
