"""Shared fixtures: an isolated dnnops home, and the CLI run in-process through ``main``."""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from dnnops.cli import main

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Recipe = Callable[[Path], object]
"""Builds a project folder in place: its configs, and a dnnops home at ``folder/"home"``."""


@dataclass(frozen=True)
class BuiltFolders:
    """Project folders built once per session and copied for each user: the same digits
    model trained again by each test module cost ~18 s apiece, about three minutes in all.
    A copy is a private home; only its runs' absolute paths still name the original,
    which stays untouched for the session."""

    root: Path
    built: dict[str, Path]

    def copy(self, recipe: Recipe, into: Path) -> Path:
        """A fresh copy of what ``recipe`` builds, at ``into`` (which must not exist).
        The build is shared by the run's xdist workers: the first to need it builds it
        under a lock, the others wait and copy (each built its own: three recipes, six
        trainings, twice)."""
        key = f"{recipe.__module__}.{recipe.__qualname__}"
        source = self.built.get(key)
        if source is None:
            source = self.root / key
            with FileLock(str(self.root / f"{key}.lock")):
                if not (self.root / f"{key}.done").exists():
                    shutil.rmtree(source, ignore_errors=True)  # a build that failed midway
                    source.mkdir()
                    recipe(source)
                    (self.root / f"{key}.done").touch()
            self.built[key] = source
        shutil.copytree(source, into)
        return into


@pytest.fixture(scope="session")
def built_folders(tmp_path_factory: pytest.TempPathFactory) -> BuiltFolders:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # one per run, shared by its workers
    if run is None:
        return BuiltFolders(tmp_path_factory.mktemp("built"), {})
    shared = tmp_path_factory.getbasetemp().parent / f"built-{run}"
    shared.mkdir(exist_ok=True)
    return BuiltFolders(shared, {})


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """One PostgreSQL server for the session (see tests/postgres.py)."""
    from tests.postgres import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The metadata database URL, once for SQLite and once for a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    from tests.postgres import create_database

    server: str = request.getfixturevalue("postgres")
    return create_database(server, f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(autouse=True)
def _close_database_pools() -> Iterator[None]:
    """Each test's engines are closed after it, so no connection outlives its database."""
    yield
    from dnnops.registry.db import close_engines

    close_engines()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh DNNOPS_HOME, and the working directory set to the test's folder."""
    folder = tmp_path / "home"
    monkeypatch.setenv("DNNOPS_HOME", str(folder))
    for name in (
        "DNNOPS_DB_URL",
        "DNNOPS_ARTIFACTS_URL",
        "DNNOPS_LOGS_URL",
        "DNNOPS_SERVER_URL",
        "DNNOPS_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return folder


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., CliResult]:
    """Run ``dnnops ARGS`` through the real entry point and capture its exit code and output."""

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["dnnops", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def subprocess_env(home: Path) -> dict[str, str]:
    """The environment for a ``dnnops`` child process: this venv first on PATH, quiet."""
    env = dict(os.environ)
    env["DNNOPS_HOME"] = str(home)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


TRIVIAL_BASELINE = """The digits projects of the suite skip the gradient-boosting yardstick
(10 classes: ~2 s a training, a minute over the suite) and the agreement panel (~1.6 s a
registration); tests/evaluate/test_baseline.py, tests/test_init.py and
tests/train/test_registration.py train with the first, tests/registry/test_publish.py,
tests/monitor/test_estimated_accuracy.py and the quickstart with the second."""


def write_project(folder: Path, **sections: Any) -> Path:
    """A small, fast digits project file; keyword arguments override whole sections."""
    import yaml

    project: dict[str, Any] = {
        "name": "digits",
        "data": {"source": "builtin:digits", "preprocessing": {"numeric": "scale"}},
        "model": {"arch": "mlp", "params": {"hidden": [32], "dropout": 0.1}},
        "train": {"epochs": 3, "batch_size": 64, "lr": 0.003, "seed": 7},
        "evaluate": {"baseline": "trivial", "agreement_members": 0},  # see TRIVIAL_BASELINE
    }
    project.update(sections)
    path = folder / "dnnops.yaml"
    path.write_text(yaml.safe_dump(project), encoding="utf-8")
    return path


SLOW_FIRST = (
    "tests/serve/test_fleet.py",
    "tests/batch/test_ray.py",
    "tests/rollout/test_rollout_server.py",
    "tests/test_quickstart.py",
    "tests/retrain/test_background.py",
    "tests/media/test_retrain.py",
    "tests/rollout/test_rollout_workers.py",
    "tests/serve/test_workers.py",
)
"""The longest files (measured: 40-90 s each), handed out first. ``make test`` runs two
workers a file at a time in collection order, and with these last one worker ran alone
for the final few minutes."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow files first, every other test in its usual order (a stable sort)."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}

    def order(item: pytest.Item) -> int:
        return rank.get(item.nodeid.split("::", 1)[0], len(rank))

    items.sort(key=order)
