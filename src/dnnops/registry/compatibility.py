"""Can a new version be judged beside the production version on the same rows?

Asked twice with one answer: before training (so a user who dropped a column hears at once
that the new version will be gated on its own), and at registration (where the champion
comparison is skipped with that reason instead of failing the registration).
"""

from __future__ import annotations

from dnnops.data.schema import Schema
from dnnops.errors import DnnopsError
from dnnops.registry.loader import LoadedVersion, load_version
from dnnops.registry.versions import Registry, VersionNotFound


def champion_mismatch(champion: LoadedVersion, schema: Schema) -> str | None:
    """Why ``champion`` cannot predict the rows of a dataset described by ``schema``
    (None: it can, and the two are compared side by side)."""
    ref = champion.record.ref
    regression = schema.target is not None and schema.target.is_regression
    if champion.is_regression != regression:
        kind = "a regressor" if champion.is_regression else "a classifier"
        return f"production {ref} is {kind} and this model is not"
    if not regression and schema.target is not None:
        classes = list(schema.target.classes)
        if champion.classes != classes:
            return (
                f"production {ref} answers the classes {champion.classes[:10]}, "
                f"this data has {classes[:10]}"
            )
    if champion.schema.kind != schema.kind:
        return f"production {ref} takes {champion.schema.kind} inputs, this data is a {schema.kind}"
    if schema.kind == "tensor":
        theirs, ours = _tensor_shape(champion.schema), _tensor_shape(schema)
        return None if theirs == ours else f"production {ref} takes shape {theirs}, not {ours}"
    lacking = sorted(set(champion.schema.feature_names) - set(schema.feature_names))
    if lacking:
        return f"production {ref} reads the columns {lacking[:5]} that this data no longer has"
    return None


def _tensor_shape(schema: Schema) -> list[int]:
    return list(schema.tensor.shape) if schema.tensor is not None else []


def production_mismatch(registry: Registry, model: str, schema: Schema) -> str | None:
    """``champion_mismatch`` against ``model``'s production version; None when there is
    none yet (the first version has nothing to be compared with)."""
    try:
        champion = load_version(registry, registry.resolve(model, "production"))
    except VersionNotFound:
        return None
    except DnnopsError as exc:
        return f"production of {model} cannot be loaded: {exc}"
    return champion_mismatch(champion, schema)
