"""Reading ONNX files with errors a user can act on, and what is inside them."""

from __future__ import annotations

import collections
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx

from .errors import OnnxFileError, first_line

META_PROVENANCE = "edgevis.provenance"
META_PREPROCESS = "edgevis.preprocess"
PROTOBUF_LIMIT = 2 * 1024**3  # one protobuf message: a single-file ONNX model
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def load_onnx(path: str | os.PathLike[str], *, load_external_data: bool = True, check: bool = True) -> onnx.ModelProto:
    """The model in ``path``; :class:`OnnxFileError` if missing, not ONNX, truncated or invalid."""
    p = Path(path)
    if not p.exists():
        raise OnnxFileError(f"ONNX file not found: {p}")
    if not p.is_file():
        raise OnnxFileError(f"{p} is not a file")
    if p.stat().st_size == 0:
        raise OnnxFileError(f"{p} is empty (0 bytes), not an ONNX model")
    try:
        model = onnx.load(str(p), load_external_data=load_external_data)
    except Exception as e:  # protobuf DecodeError, or an OSError for missing external data
        msg = first_line(e)
        raise OnnxFileError(f"{p} is not a readable ONNX model (corrupt, truncated or another format): {msg}") from None
    if not model.graph.node and not model.graph.output:
        # protobuf happily parses many non-ONNX byte strings into an empty message
        raise OnnxFileError(f"{p} is not an ONNX model (no graph inside)")
    if check:
        try:
            onnx.checker.check_model(model, full_check=False)
        except onnx.checker.ValidationError as e:
            first = first_line(e)
            raise OnnxFileError(f"{p} is not a valid ONNX model: {first}") from None
    return model


def static_batch(model: onnx.ModelProto) -> int:
    """The first input's batch size, or 1 where it is symbolic."""
    d = model.graph.input[0].type.tensor_type.shape.dim[0]
    return d.dim_value if d.dim_value > 0 else 1


def random_feed(model: onnx.ModelProto, count: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs matching the model's graph inputs (symbolic batch: ``count``; other symbolic dims: 1)."""
    rng = np.random.default_rng(seed)
    inits = {i.name for i in model.graph.initializer}
    feed = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.dim_value > 0 else (count if k == 0 else 1) for k, d in enumerate(tt.shape.dim)]
        feed[vi.name] = random_array(shape, onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type), rng)
    return feed


def random_array(shape: Sequence[int], dtype: Any, rng: np.random.Generator) -> np.ndarray:
    """Random values of ``dtype``: standard normal for floats, 0/1 for bool, [-100, 100] for integers."""
    dtype = np.dtype(dtype)
    shape = list(shape)
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(shape).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -100), min(info.max, 100), shape, endpoint=True).astype(dtype)


@dataclass(frozen=True)
class TensorIndex:
    """Who produces and who reads each tensor of a model."""

    producer: dict[str, onnx.NodeProto]
    consumers: dict[str, list[onnx.NodeProto]]
    initializers: set[str]

    @classmethod
    def of(cls, model: onnx.ModelProto) -> "TensorIndex":
        producer: dict[str, onnx.NodeProto] = {}
        consumers: dict[str, list[onnx.NodeProto]] = {}
        for n in model.graph.node:
            for o in n.output:
                producer[o] = n
            for i in n.input:
                consumers.setdefault(i, []).append(n)
        return cls(producer, consumers, {i.name for i in model.graph.initializer})


def has_qdq(model: onnx.ModelProto) -> bool:
    """Whether the model holds QuantizeLinear/DequantizeLinear nodes (a Q/DQ quantized model)."""
    return any(n.op_type in QDQ_OPS for n in model.graph.node)


def op_histogram(model: onnx.ModelProto) -> dict[str, int]:
    """Node count per op type (top-level graph), most frequent first."""
    c = collections.Counter(n.op_type for n in model.graph.node)
    return dict(c.most_common())


def get_metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def set_metadata(model: onnx.ModelProto, items: dict[str, Any]) -> None:
    """Set ``metadata_props`` (non-string values are stored as JSON)."""
    existing = {p.key: p for p in model.metadata_props}
    for key, value in items.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        if key in existing:
            existing[key].value = text
        else:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, text


def read_json_metadata(model: onnx.ModelProto, key: str) -> dict[str, Any] | None:
    raw = get_metadata(model).get(key)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
