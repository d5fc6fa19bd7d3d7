"""A registered version's weights as a run's starting point (``train.init_from:
NAME@REF``): read through the registry, so their digest (and signature) are checked."""

from __future__ import annotations

import hashlib

from dnnops.errors import UsageError
from dnnops.registry.versions import Registry
from dnnops.train.starting import StartingWeights, WeightsResolver

WEIGHTS = "weights.safetensors"


def version_weights(registry: Registry) -> WeightsResolver:
    """A resolver of ``NAME@REF`` to that version's torch weights."""

    def resolve(ref: str) -> StartingWeights:
        from safetensors.torch import load

        name, _, wanted = ref.partition("@")
        record = registry.resolve(name, wanted)
        manifest = registry.manifest(record)
        if WEIGHTS not in manifest.files:
            raise UsageError(
                f"train.init_from: {record.ref} has no torch weights (an imported graph); "
                "start from a trained version or a weights file"
            )
        data = registry.file(record, manifest, WEIGHTS)
        return StartingWeights(load(data), record.ref, hashlib.sha256(data).hexdigest())

    return resolve
