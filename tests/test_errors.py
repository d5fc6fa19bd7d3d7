"""Every library error carries its two edges: the CLI's exit code and the HTTP status."""

from __future__ import annotations

import importlib
import pkgutil

import dnnops
from dnnops.errors import DnnopsError
from dnnops.registry.versions import VersionNotFound
from dnnops.rollout.store import NoRollout, RolloutConflict, StaleRollout
from dnnops.serve.errors import http_error_of


def _all_subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _all_subclasses(sub)
    return found


def test_each_error_class_declares_an_exit_code_and_an_http_status() -> None:
    for module in pkgutil.walk_packages(dnnops.__path__, "dnnops."):
        if not any(part in module.name for part in (".cli", "migrations", "__main__")):
            importlib.import_module(module.name)
    classes = _all_subclasses(DnnopsError)
    assert len(classes) > 15
    for cls in classes:
        assert cls.exit_code in (1, 2), cls
        assert 400 <= cls.http_status < 600, cls


def test_routes_answer_the_status_the_error_declares() -> None:
    cases = [
        (VersionNotFound("digits@9 does not exist"), 404),
        (NoRollout("no rollout"), 404),
        (RolloutConflict("already rolls out version 2"), 409),
        (StaleRollout("changed since it was read"), 409),
        (DnnopsError("bad"), 400),
    ]
    for error, status in cases:
        answer = http_error_of(error)
        assert (answer.status, answer.message) == (status, str(error))
