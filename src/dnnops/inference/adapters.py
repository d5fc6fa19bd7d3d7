"""The input adapter of a version: rows and tensors, or one image or text column."""

from __future__ import annotations

from dnnops.config import ServeConfig
from dnnops.data.preprocess import Preprocessor
from dnnops.data.schema import Schema
from dnnops.inference.inputs import INPUT, InputAdapter
from dnnops.inference.media_inputs import MediaAdapter

Adapter = InputAdapter | MediaAdapter


def adapter_for(
    schema: Schema, policy: ServeConfig, pre: Preprocessor, *, input_name: str = INPUT
) -> Adapter:
    medium = schema.medium
    if medium is not None:
        return MediaAdapter(medium, input_name=input_name)
    return InputAdapter(schema, policy, pre, input_name=input_name)
