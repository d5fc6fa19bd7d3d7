"""``dnnops predict FILE --model NAME@REF --out FILE``: batch prediction of a table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dnnops.cli.common import HomeOpt, JsonOpt, QuietOpt, print_json
from dnnops.config import ServeConfig, load_config
from dnnops.console import make_console, wants_progress
from dnnops.errors import UsageError
from dnnops.home import resolve_home


def predict_command(
    file: Annotated[
        str, typer.Argument(help="CSV or Parquet rows to predict (--engine ray: or s3://...).")
    ],
    model: Annotated[str, typer.Option(help="NAME@REF: a version number or an alias.")],
    out: Annotated[Path, typer.Option(help="Where to write: .parquet or .csv.")],
    log: Annotated[
        bool, typer.Option(help="Append the rows to the prediction log (labels join later).")
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Project file: its serve policy.")
    ] = None,
    chunk_rows: Annotated[int, typer.Option(min=1, help="Rows per chunk (bounds memory).")] = 65536,
    engine: Annotated[
        str, typer.Option(help="local, or ray (Ray Data map_batches on a cluster).")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(help="--engine ray: the cluster (host:port); none starts a local one."),
    ] = None,
    keep: Annotated[
        str | None,
        typer.Option(help="Input columns to carry into the output, comma-separated: id,region."),
    ] = None,
    home: HomeOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Predict every row of FILE with a registered version, under the server's input
    policy; write ids, predictions and probabilities to --out."""
    from rich.progress import Progress

    from dnnops.batch.predict import predict_file
    from dnnops.data.policy import InputPolicy
    from dnnops.inference.logger import PredictionLogger
    from dnnops.registry.loader import load_version
    from dnnops.registry.open import open_registry

    if engine not in ("local", "ray"):
        raise UsageError(f"--engine must be local or ray, not {engine!r}")
    if engine == "ray" and log:
        raise UsageError("--log is for --engine local: logging happens on one machine")
    if address is not None and engine != "ray":
        raise UsageError("--address is for --engine ray")
    kept = tuple(c.strip() for c in (keep or "").split(",") if c.strip())
    resolved = resolve_home(home)
    registry = open_registry(resolved)
    loaded = load_version(registry, registry.resolve_ref(model))
    serve = load_config(config).serve if config is not None else ServeConfig()
    policy = InputPolicy.of(serve)
    if engine == "ray":
        from dnnops.batch.ray_engine import predict_file_on_ray

        result = predict_file_on_ray(
            loaded,
            file,
            out,
            home=resolved,
            policy=policy,
            address=address,
            chunk_rows=chunk_rows,
            keep=kept,
        )
    else:
        logger = PredictionLogger(resolved.logs_dir).start() if log else None
        show = wants_progress(quiet or json_out)
        try:
            with Progress(console=make_console(), disable=not show, transient=True) as bar:
                task = bar.add_task(f"predicting {Path(file).name}", total=None)
                result = predict_file(
                    loaded,
                    Path(file),
                    out,
                    policy=policy,
                    chunk_rows=chunk_rows,
                    logger=logger,
                    redact=serve.log.redact,
                    progress=lambda rows: bar.advance(task, rows),
                    keep=kept,
                )
        finally:
            if logger is not None:
                logger.close()
    summary = {
        "model": loaded.record.ref,
        "rows": result.rows,
        "seconds": round(result.seconds, 3),
        "rows_per_second": round(result.rows_per_second),
        "out": str(out),
        "logged": log,
        "engine": engine,
        "anomalies": {f"{f}:{k}": n for (f, k), n in sorted(result.anomalies.items())},
    }
    if json_out:
        print_json(summary)
        return
    make_console().print(
        f"wrote {result.rows} predictions of {loaded.record.ref} to {out} "
        f"in {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s)"
        + (f"; accepted problems: {summary['anomalies']}" if result.anomalies else "")
    )
