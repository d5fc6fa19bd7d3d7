"""``dnnops predict --engine ray``: the same chunk predictor, run by Ray Data's
``map_batches`` on every node of a Ray cluster.

Each Ray worker loads the version itself from the registry (the same home, database and
artifact store as the driver: a shared PostgreSQL and S3 on a real cluster, one folder on
one machine), checks it as every load does, and predicts its batches under the same input
policy as ``--engine local``. The driver streams the answers back in input order into the
one output file, so memory stays bounded on the driver too; the actors' input anomalies
are summed by one small tally actor, so the summary counts what the local engine's does.
Ray is an optional extra (``pip install 'dnnops[ray]'``) imported only here.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from dnnops.batch.predict import BatchResult, TableWriter, check_paths, predict_chunk
from dnnops.data.policy import Counts, InputPolicy
from dnnops.errors import UsageError
from dnnops.home import Home
from dnnops.registry.loader import LoadedVersion

PASSED_ON = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
"""The object store's settings, passed to every Ray worker as the driver has them."""


@dataclass(frozen=True)
class VersionSpec:
    """What a Ray worker needs to load the version on its own (small, picklable), and the
    tally its input anomalies go to."""

    ref: str
    policy: InputPolicy
    tally: Any = None
    """A ``_Tally`` actor's handle."""
    keep: tuple[str, ...] = ()
    """Input columns carried through to the output."""


class _Tally:
    """The run's input anomalies, summed over every actor (one small Ray actor)."""

    def __init__(self) -> None:
        self.counts: Counts = Counter()

    def add(self, counts: Counts) -> None:
        self.counts.update(counts)

    def total(self) -> Counts:
        return self.counts


class _ChunkPredictor:
    """One per Ray actor: the version loaded once, then ``__call__`` per batch."""

    def __init__(self, spec: VersionSpec) -> None:
        from dnnops.home import resolve_home
        from dnnops.inference.predictor import Predictor
        from dnnops.registry.loader import load_version
        from dnnops.registry.open import open_registry

        registry = open_registry(resolve_home(None))
        self.loaded = load_version(registry, registry.resolve_ref(spec.ref))
        self.predictor = Predictor.create(self.loaded, 1)  # Ray gives each actor one core
        self.policy = spec.policy
        self.tally = spec.tally
        self.keep = spec.keep
        self.prefix = f"{os.urandom(4).hex()}-r"  # ids unique across actors
        self.result = BatchResult()

    def __call__(self, frame: pd.DataFrame) -> pa.Table:
        import ray

        before = Counter(self.result.anomalies)
        table = predict_chunk(
            self.loaded, frame, self.predictor, policy=self.policy, prefix=self.prefix,
            result=self.result, keep=self.keep,
        ).table  # fmt: skip
        self.result.rows += len(frame)
        if self.tally is not None and self.result.anomalies != before:
            # waited for: counted before the batch's answers reach the driver
            ray.get(self.tally.add.remote(self.result.anomalies - before))
        return table


def predict_file_on_ray(
    loaded: LoadedVersion,
    source: str,
    out: Path,
    *,
    home: Home,
    policy: InputPolicy,
    address: str | None,
    chunk_rows: int = 65_536,
    keep: tuple[str, ...] = (),
) -> BatchResult:
    """Predict ``source`` (a Parquet or CSV path or URL, ``s3://`` included) on the Ray
    cluster at ``address`` (None: a local one started for this run) into ``out``; the
    workers read the registry of ``home``."""
    try:
        import ray
    except ImportError:
        raise UsageError(
            "--engine ray needs Ray: pip install 'dnnops[ray]' (or --engine local)"
        ) from None
    if not source.startswith(("s3://", "gs://")):
        check_paths(loaded, Path(source), out)
    env = {name: os.environ[name] for name in PASSED_ON if name in os.environ} | {
        "DNNOPS_HOME": str(home.root),
        "DNNOPS_DB_URL": home.db_url,
        "DNNOPS_ARTIFACTS_URL": home.artifacts_url,
    }
    started = time.perf_counter()
    ray.init(address=address, runtime_env={"env_vars": env}, logging_level=logging.ERROR)
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # answers in the input's order
        context.enable_progress_bars = False
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
        read = ray.data.read_parquet if source.endswith(".parquet") else ray.data.read_csv
        tally = ray.remote(num_cpus=0)(_Tally).remote()
        answers = read(source, override_num_blocks=2 * cpus).map_batches(
            _ChunkPredictor,
            fn_constructor_args=(VersionSpec(loaded.record.ref, policy, tally, keep),),
            batch_size=chunk_rows,
            batch_format="pandas",
            # up to one actor per core but one (the reads need a core), spread over the nodes;
            # each actor loads the version once
            concurrency=(1, max(1, cpus - 1)),
            num_cpus=1,
            scheduling_strategy="SPREAD",
        )
        result = BatchResult()
        writer = TableWriter(out)
        try:
            for batch in answers.iter_batches(batch_size=None, batch_format="pyarrow"):
                table = _as_table(batch)
                writer.write(table)
                result.rows += table.num_rows
        except BaseException:
            writer.close(finished=False)
            raise
        writer.close(finished=True)
        result.anomalies = Counter(ray.get(tally.total.remote()))  # type: ignore[attr-defined]
    finally:
        ray.shutdown()
    result.seconds = time.perf_counter() - started
    return result


def _as_table(batch: Any) -> pa.Table:
    return batch if isinstance(batch, pa.Table) else pa.Table.from_pandas(batch)
