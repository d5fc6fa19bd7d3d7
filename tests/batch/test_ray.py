"""``dnnops predict --engine ray`` on a local Ray cluster of two nodes (Ray's own
``cluster_utils``, kept on loopback): the same answers, in the same order, as
``--engine local``, on user-shaped data (string labels, categories, missing values)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

import dnnops
from tests.conftest import CliResult, subprocess_env
from tests.userdata import penguins_frame, project_file, write_csv

LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
"""Ray's own switch for clusters on one host's loopback (as on macOS): no node listens
on an outside address."""


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """Two Ray nodes of two logical CPUs each; yields the head's address."""
    saved = {name: os.environ.get(name) for name in LOOPBACK_ONLY}
    os.environ.update(LOOPBACK_ONLY)
    from ray.cluster_utils import Cluster

    small = {"num_cpus": 2, "object_store_memory": 100_000_000}
    cluster = Cluster(initialize_head=True, head_node_args={**small, "include_dashboard": False})
    try:
        cluster.add_node(**small)
        cluster.wait_for_nodes()
        yield str(cluster.address)
    finally:
        cluster.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# Slow (50-80 s here): Ray's own start of a two-node cluster (head and worker processes)
# is most of it; the file prediction on it takes seconds.
@pytest.mark.slow
def test_ray_answers_as_the_local_engine_on_a_two_node_cluster(
    tmp_path: Path, home: Path, ray_cluster: str
) -> None:
    source = write_csv(penguins_frame(), tmp_path / "penguins.csv")
    dnnops.Project(project_file(tmp_path / "dnnops.yaml", "penguins", source, "species")).train()
    rows = penguins_frame(rows=3000, seed=5).drop(columns=["species"])
    rows.loc[7, "island"] = "Mars"  # unseen: the unknown bucket, on either engine
    parquet = tmp_path / "rows.parquet"
    rows.to_parquet(parquet, row_group_size=500)
    outs, summaries = {}, {}
    for engine in ("local", "ray"):
        out = tmp_path / f"{engine}.parquet"
        extra = ["--address", ray_cluster] if engine == "ray" else []
        done = subprocess.run(
            [
                sys.executable, "-m", "dnnops", "predict", str(parquet), "--model", "penguins@1",
                "--out", str(out), "--engine", engine, "--chunk-rows", "400", "--json", *extra,
            ],
            env={**subprocess_env(home), **LOOPBACK_ONLY},
            capture_output=True,
            text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        # Ray may print its own lines to the driver's stdout before the (indented) summary
        text = done.stdout
        start = 0 if text.startswith("{") else text.find("\n{") + 1
        assert start >= 0 and text[start:].startswith("{"), text[-2000:]
        summary, _ = json.JSONDecoder().raw_decode(text[start:])
        assert summary["rows"] == 3000
        summaries[engine] = summary
        outs[engine] = pd.read_parquet(out)
    local, ray = outs["local"], outs["ray"]
    assert list(ray["prediction"]) == list(local["prediction"]), "same answers, same order"
    probabilities = [c for c in local.columns if c.startswith("probability_")]
    pd.testing.assert_frame_equal(ray[probabilities], local[probabilities], atol=1e-6)
    assert ray["prediction_id"].is_unique and len(ray) == 3000
    # every actor's input anomalies reach the summary, as the local engine counts them
    assert summaries["ray"]["anomalies"] == summaries["local"]["anomalies"]
    assert summaries["ray"]["anomalies"].get("island:unseen_category") == 1


def test_ray_options_are_refused_where_they_make_no_sense(
    tmp_path: Path, home: Path, cli: Callable[..., CliResult]
) -> None:
    source = write_csv(penguins_frame(rows=20), tmp_path / "rows.csv")
    for options, message in (
        (["--engine", "spark"], "--engine must be local or ray"),
        (["--engine", "ray", "--log"], "--log is for --engine local"),
        (["--address", "127.0.0.1:6379"], "--address is for --engine ray"),
    ):
        result = cli("predict", str(source), "--model", "x@1", "--out", "o.parquet", *options)
        assert result.code == 2 and message in result.err, result.err
