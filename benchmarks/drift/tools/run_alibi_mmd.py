"""alibi-detect: MMDDrift (RBF kernel, median-heuristic bandwidth, permutation null) on
embedding windows. argv: reference.npy windows.npz alpha permutations -> JSON lines."""

import json
import sys
import time

import numpy as np
from alibi_detect.cd import MMDDrift

reference = np.load(sys.argv[1]).astype("float32")
windows = np.load(sys.argv[2])
alpha, permutations = float(sys.argv[3]), int(sys.argv[4])
detector = MMDDrift(reference, backend="pytorch", p_val=alpha, n_permutations=permutations)
for name in windows.files:
    flagged, seconds = [], []
    for window in windows[name]:
        started = time.perf_counter()
        answer = detector.predict(window.astype("float32"))
        seconds.append(time.perf_counter() - started)
        flagged.append(bool(answer["data"]["is_drift"]))
    print(json.dumps({"scenario": name, "flagged": flagged, "seconds": seconds}), flush=True)
