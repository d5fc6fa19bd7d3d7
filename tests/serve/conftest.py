"""Real servers for the serving tests: ``dnnops serve`` in a subprocess on 127.0.0.1."""

from __future__ import annotations

import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import BuiltFolders, subprocess_env

TRAIN = {"epochs": 8, "lr": 0.005, "seed": 3}


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str
    home: Path
    output: list[str] = field(default_factory=list)
    token: str | None = None
    """The admin token the server was started with: ``client()`` sends it (admin implies
    the labels and read scopes)."""
    """Everything the server printed after its address (stdout and stderr, interleaved): read
    as it comes, so a chatty server never blocks on a full pipe."""

    @property
    def address(self) -> str:
        return self.url.removeprefix("http://")

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers)

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)
        return self.process.returncode, "".join(self.output)

    _reader: threading.Thread | None = None

    def keep_reading(self) -> None:
        """Drain the server's output into ``output`` from a thread, until it exits."""
        assert self.process.stdout is not None
        stream = self.process.stdout

        def drain() -> None:
            with stream:
                for line in stream:
                    self.output.append(line)

        self._reader = threading.Thread(target=drain, daemon=True)
        self._reader.start()


def train_digits(
    folder: Path,
    home: Path,
    name: str = "digits",
    *,
    env: dict[str, str] | None = None,
    **train: Any,
) -> None:
    """Train and register a small digits MLP through the CLI, in a child process (with
    ``env`` added to its environment: another metadata database, say)."""
    config = folder / f"{name}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "data": {"source": "builtin:digits", "preprocessing": {"numeric": "scale"}},
                "model": {"arch": "mlp", "params": {"hidden": [64], "dropout": 0.0}},
                "train": {**TRAIN, **train},
                "evaluate": {"baseline": "trivial", "agreement_members": 0},  # TRIVIAL_BASELINE
            }
        )
    )
    subprocess.run(
        [sys.executable, "-m", "dnnops", "train", "-c", str(config), "--quiet", "--json"],
        env={**subprocess_env(home), **(env or {})},
        check=True,
        capture_output=True,
        timeout=300,
    )


def start_server(
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    verify: ssl.SSLContext | bool = True,
    preexec: Callable[[], None] | None = None,
) -> Server:
    """``dnnops serve --port 0 ARGS``; returns once it says where it listens and is ready
    (over HTTPS when it says https, trusting the certificate file ``verify``)."""
    environment = {**subprocess_env(home), **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "dnnops", "serve", "--port", "0", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=preexec,  # the tests' own limits (a full disk)
    )
    assert process.stdout is not None
    printed: list[str] = []
    deadline = time.monotonic() + 120
    url = None
    while url is None:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"the server exited: {''.join(printed)}{process.communicate()}")
        printed.append(line)
        found = re.search(r"(https?)://(127\.0\.0\.1:\d+)", line)
        url = f"{found.group(1)}://{found.group(2)}" if found else None
        assert time.monotonic() < deadline, "the server did not start"
    server = Server(process, url, home, printed, environment.get("DNNOPS_ADMIN_TOKEN"))
    server.keep_reading()
    while httpx.get(f"{url}/v2/health/ready", timeout=5, verify=verify).status_code != 200:
        assert time.monotonic() < deadline, "the server never turned ready"
        time.sleep(0.05)
    return server


def one_digits_model(folder: Path) -> None:
    """Recipe: version 1 of "digits", the production alias on it."""
    train_digits(folder, folder / "home")


def two_digits_models(folder: Path) -> None:
    """Recipe: versions 1 and 2 of "digits" (seeds 3 and 4)."""
    train_digits(folder, folder / "home")
    train_digits(folder, folder / "home", seed=4)


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory, built_folders: BuiltFolders) -> Path:
    folder = built_folders.copy(one_digits_model, tmp_path_factory.mktemp("serving") / "p")
    return folder / "home"


@pytest.fixture(scope="module")
def server(trained_home: Path) -> Iterator[Server]:
    running = start_server(
        trained_home, "--model", "digits@production", env={"DNNOPS_ADMIN_TOKEN": "s3cret"}
    )
    yield running
    running.stop()
