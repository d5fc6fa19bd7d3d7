"""One worker of ``dnnops serve --workers N`` (started by the supervisor, never by hand).

It builds the same server ``dnnops serve`` builds in-process, but accepts on the socket the
supervisor bound, and says "ready" on the supervisor's pipe instead of printing where it
listens.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
from pathlib import Path

from dnnops.serve.group import GROUP_ENV
from dnnops.serve.supervisor import WORKER_ENV, WorkerSpec


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM this worker if the supervisor dies (even by SIGKILL), so no
    orphan keeps serving the port."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return  # not Linux: the supervisor's own shutdown still stops the workers


def main() -> None:
    spec = WorkerSpec(**json.loads(os.environ[WORKER_ENV]))
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the supervisor died before the request above
        return
    from dnnops.config import load_config
    from dnnops.serve.launch import Launch, run_server

    config = Path(spec.config) if spec.config else None
    listener = socket.socket(fileno=spec.listen_fd)

    def ready(_: str) -> None:
        os.write(spec.ready_fd, f"{spec.index}\n".encode())

    launch = Launch(
        project=load_config(config) if config is not None else None,
        config=config,
        home=Path(spec.home) if spec.home else None,
        refs=spec.models,
        workers=spec.workers,
        host=spec.host,
        grpc_port=spec.grpc_port,
    )
    run_server(launch, sockets=[listener], announce=ready)
    group = os.environ.get(GROUP_ENV)
    if os.getppid() != parent and group:  # the supervisor died first: nobody else cleans up
        shutil.rmtree(group, ignore_errors=True)


if __name__ == "__main__":
    main()
