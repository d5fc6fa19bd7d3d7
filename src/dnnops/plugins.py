"""Named extension points: drift methods and SLO kinds, each a table of name -> entry.

Config validation, the report, the Prometheus rules and the generated docs all read the
same table, so adding a method is one module and one ``register`` call (as scikit-learn's
scorers). The built-ins register themselves when their package is imported, and a lookup
imports that package first, by name, the way entry points load: ``config`` (the bottom
layer) can then check a name without importing ``monitor`` when it is itself imported.

This module imports nothing from dnnops at run time: any layer may use it.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from dnnops.monitor.judgements.slo_kinds.kind import SloKind
    from dnnops.monitor.stats.drift.method import DriftMethod


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class UnknownName(ValueError):
    """A name no entry was registered under; the message lists the ones that were."""


class Registry(Generic[T]):
    """Entries by name, in registration order; the built-ins are imported on first use."""

    def __init__(self, what: str, builtins: str) -> None:
        self.what = what
        self.builtins = builtins
        self._entries: dict[str, T] = {}
        self._loaded = False
        self._loading = False
        self._lock = threading.RLock()

    def register(self, entry: T, *, replace: bool = False) -> T:
        """Add ``entry`` under its name; a second entry of the same name is an error
        unless ``replace`` says it is meant."""
        if entry.name in self._entries and not replace:
            raise ValueError(f"a {self.what} named {entry.name!r} is already registered")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove an entry (a test's, or a team's that replaces a built-in for a while)."""
        self._load()
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        self._load()
        found = self._entries.get(name)
        if found is None:
            raise UnknownName(f"unknown {self.what} {name!r}; choose one of {self.names()}")
        return found

    def names(self) -> tuple[str, ...]:
        self._load()
        return tuple(self._entries)

    def __iter__(self) -> Iterator[T]:
        self._load()
        return iter(list(self._entries.values()))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def _load(self) -> None:
        if self._loaded:
            return
        with self._lock:  # reentrant: a built-in's own lookup while importing returns here
            if self._loaded or self._loading:
                return
            self._loading = True
            try:
                importlib.import_module(self.builtins)
            finally:
                self._loading = False
            self._loaded = True  # only once they imported: a failed import fails again, named


DRIFT_METHODS: Registry[DriftMethod] = Registry(
    "drift method", "dnnops.monitor.stats.drift.methods"
)
"""Per-feature drift tests (``monitor.drift.method``)."""

SLO_KINDS: Registry[SloKind] = Registry("SLO kind", "dnnops.monitor.judgements.slo_kinds")
"""What an objective counts as good and bad events (``slo.objectives[].kind``)."""
