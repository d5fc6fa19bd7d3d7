"""``logs.retention`` on a running server: its monitoring loop deletes the segments (and
digests) older than the retention, and keeps answering and logging."""

from __future__ import annotations

import time
from pathlib import Path

from dnnops.predlog.reader import PREDICTIONS, read_predictions
from dnnops.predlog.records import PredictionRecord
from tests.predlog.test_retention import DAY, _segment
from tests.serve.conftest import start_server


def test_the_server_applies_logs_retention(trained_home: Path, tmp_path: Path) -> None:
    logs = trained_home / "logs" / PREDICTIONS
    old = PredictionRecord(ts=time.time() - 40 * DAY, status=200, id="ancient", output=1)
    ancient = _segment(logs, PREDICTIONS, [old.encode()], age_s=40 * DAY)
    config = tmp_path / "dnnops.yaml"
    config.write_text(
        "name: digits\ndata: {source: builtin:digits}\n"
        "monitor: {evaluate_every: 1s}\nlogs: {retention: 30d}\n"
    )
    server = start_server(trained_home, "-c", str(config))
    try:
        with server.client() as http:
            answer = http.post("/v1/models/digits:predict", json={"instances": [[0.0] * 64]})
            assert answer.status_code == 200
            deadline = time.monotonic() + 30
            while ancient.exists():
                assert time.monotonic() < deadline, "retention never deleted the old segment"
                time.sleep(0.2)
            [pid] = answer.json()["prediction_ids"]
    finally:
        server.stop()
    kept = {r.id for r in read_predictions(logs)}
    assert pid in kept and "ancient" not in kept
