"""A version's manifest, read through typed names instead of string keys.

The manifest stays the JSON the registry signs and stores (a ``dict``, so writing,
signing and ``models show --json`` are unchanged); every reader asks for ``files``,
``task``, ``classes``... here, so a key is spelled in this module only.
"""

from __future__ import annotations

from typing import Any, cast

from dnnops.evaluate.gates import GateResult
from dnnops.vocabulary import Task


class Manifest(dict[str, Any]):
    """A verified manifest (``Registry.manifest``)."""

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        """File name -> ``{"sha256", "size"}``."""
        return cast(dict[str, dict[str, Any]], self.get("files") or {})

    def has(self, name: str) -> bool:
        return name in self.files

    def digest(self, name: str) -> str:
        return str(self.files[name]["sha256"])

    @property
    def task(self) -> Task:
        return "regression" if self.get("task") == "regression" else "classification"

    @property
    def classes(self) -> list[int | str]:
        return list(self.get("classes") or [])

    @property
    def spec(self) -> dict[str, Any] | None:
        """The architecture's spec (None for an imported ONNX graph)."""
        return cast(dict[str, Any] | None, self.get("spec"))

    @property
    def decision(self) -> dict[str, Any] | None:
        """A binary classifier's tuned threshold, as stored."""
        return cast(dict[str, Any] | None, self.get("decision"))

    @property
    def started_from(self) -> dict[str, Any] | None:
        """Where the weights started (``train.init_from``): origin, sha256, loaded, fresh."""
        return cast(dict[str, Any] | None, self.get("started_from"))

    @property
    def input_name(self) -> str:
        return str((self.get("input") or {}).get("name") or "input")

    @property
    def signature(self) -> str | None:
        found = self.get("signature")
        return found if isinstance(found, str) else None

    @property
    def tiers(self) -> list[str]:
        """A tiered version's members (``model@version``), first tier first."""
        return list(self.get("tiers") or [])

    @property
    def int8(self) -> dict[str, Any] | None:
        """The INT8 graph's measured size ratio and metric change, when it was made."""
        return cast(dict[str, Any] | None, self.get("int8"))

    @property
    def onnx_parity(self) -> float | None:
        """The largest difference between the ONNX graph and torch at registration."""
        found = self.get("onnx_parity_max_abs_diff")
        return float(found) if found is not None else None

    @property
    def gates(self) -> list[GateResult]:
        """The evaluation gates the version was registered with."""
        return [GateResult.from_dict(stored) for stored in self.get("gates") or []]

    @property
    def metrics(self) -> dict[str, Any]:
        return dict(self.get("metrics") or {})
