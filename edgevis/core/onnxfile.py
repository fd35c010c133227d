"""Reading ONNX files with errors a user can act on, and what is inside them."""

from __future__ import annotations

import collections
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

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
    why = malformed(model, external_data=not load_external_data)
    if why:
        raise OnnxFileError(f"{p} is not a valid ONNX model: {why}")
    if check:
        try:
            onnx.checker.check_model(model, full_check=False)
        except Exception as e:  # ValidationError, and the checker's own failures on odd protos
            first = first_line(e, 400)
            raise OnnxFileError(f"{p} is not a valid ONNX model: {first}") from None
    return model


# bits per element of the packed sub-byte types (numpy's dtypes for them are one byte wide)
_PACKED_BITS = {"INT4": 4, "UINT4": 4, "FLOAT4E2M1": 4, "INT2": 2, "UINT2": 2}
# the typed repeated field each data type is stored in when raw_data is not used, and values per element
_TYPED_FIELD = {"FLOAT": ("float_data", 1), "COMPLEX64": ("float_data", 2), "DOUBLE": ("double_data", 1),
                "COMPLEX128": ("double_data", 2), "INT64": ("int64_data", 1), "UINT32": ("uint64_data", 1),
                "UINT64": ("uint64_data", 1), "STRING": ("string_data", 1)}
MAX_ELEMENTS = 2**40  # more elements than any file can hold: a corrupt shape


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    yield graph
    for n in graph.node:
        for a in n.attribute:
            if a.HasField("g"):
                yield from _graphs(a.g)
            for g in a.graphs:
                yield from _graphs(g)


def data_type_name(dt: int) -> str | None:
    """``TensorProto.DataType``'s name for ``dt``, or None for a number ONNX does not define."""
    try:
        return onnx.TensorProto.DataType.Name(dt)
    except ValueError:
        return None


def tensor_problem(t: onnx.TensorProto, *, external_data: bool = False) -> str | None:
    """Why the tensor ``t`` cannot be read (unknown data type, data length that disagrees with its shape)."""
    name = data_type_name(t.data_type)
    if name is None or name == "UNDEFINED":
        return f"tensor {t.name!r} has an unknown data type ({t.data_type})"
    if any(d < 0 for d in t.dims):
        return f"tensor {t.name!r} has a negative dimension {list(t.dims)}"
    n = 1
    for d in t.dims:
        n *= d
    if n > MAX_ELEMENTS:
        return f"tensor {t.name!r} declares {n} elements (shape {list(t.dims)})"
    if t.data_location == onnx.TensorProto.EXTERNAL:
        return None if external_data else f"tensor {t.name!r} names external data that was not loaded"
    if t.HasField("raw_data"):
        if name == "STRING":
            return f"tensor {t.name!r} is of type STRING but holds raw bytes"
        bits = _PACKED_BITS.get(name) or 8 * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
        want = (n * bits + 7) // 8
        if len(t.raw_data) != want:
            return (f"tensor {t.name!r} holds {len(t.raw_data)} bytes of data, but its shape {list(t.dims)} "
                    f"and type {name} need {want}")
        return None
    field, per = _TYPED_FIELD.get(name, ("int32_data", 1))
    have = len(getattr(t, field))
    if name in _PACKED_BITS:
        want = -(-n * _PACKED_BITS[name] // 8)
        ok = have in (n, want)  # packed per byte, or one element per int32 (both are seen)
    else:
        want = n * per
        ok = have == want
    if not ok:
        return (f"tensor {t.name!r} holds {have} values in {field}, but its shape {list(t.dims)} "
                f"and type {name} need {want}")
    return None


def _non_text(msg: Any, where: str = "") -> str | None:
    """Where a string field of ``msg`` (a name, a dim_param, a doc string, ...) is not UTF-8 text: protobuf
    hands such values over as bytes, and every f-string and JSON dump downstream trips on them."""
    if isinstance(msg, onnx.TensorProto):  # ListFields would copy its data: look at its text fields only
        for name, v in (("name", msg.name), ("doc_string", msg.doc_string),
                        *(("external_data", x.value) for x in msg.external_data)):
            if isinstance(v, bytes):
                return f"{where}.{name} is not UTF-8 text ({v[:40]!r})"
        return None
    for fd, value in msg.ListFields():
        repeated = fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED
        values = value if repeated else (value,)
        if fd.type == fd.TYPE_MESSAGE:
            for v in values:
                why = _non_text(v, f"{where}.{fd.name}" if where else fd.name)
                if why:
                    return why
        elif fd.type == fd.TYPE_STRING:
            for v in values:
                if isinstance(v, bytes):
                    return f"{where}.{fd.name} is not UTF-8 text ({v[:40]!r})"
    return None


def malformed(model: onnx.ModelProto, *, external_data: bool = False) -> str | None:
    """What makes ``model`` unreadable beyond what protobuf checks: a name that is not UTF-8 text (protobuf
    hands those over as bytes), a tensor whose data disagrees with its shape or has an unknown type, a graph
    input or output of an unknown type. None when there is nothing of the kind."""
    text = _non_text(model)
    if text:
        return text
    if not model.graph.output:
        return "the graph has no outputs (nothing could be computed)"
    for g in _graphs(model.graph):
        for vi in (*g.input, *g.output, *g.value_info):
            if vi.type.HasField("tensor_type") and data_type_name(vi.type.tensor_type.elem_type) is None:
                return f"{vi.name!r} has an unknown element type ({vi.type.tensor_type.elem_type})"
        for n in g.node:
            for a in n.attribute:
                for t in (*([a.t] if a.HasField("t") else []), *a.tensors):
                    why = tensor_problem(t, external_data=external_data)
                    if why:
                        return why
        for t in g.initializer:
            why = tensor_problem(t, external_data=external_data)
            if why:
                return why
    return None


def static_batch(model: onnx.ModelProto) -> int:
    """The first input's batch size, or 1 where it is symbolic."""
    d = model.graph.input[0].type.tensor_type.shape.dim[0]
    return d.dim_value if d.dim_value > 0 else 1


FEEDABLE = ("FLOAT", "FLOAT16", "DOUBLE", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64",
            "BOOL")
MAX_FEED_ELEMENTS = 2**28  # one random test input of at most 1 GiB of float32


def random_feed(model: onnx.ModelProto, count: int = 2, seed: int = 0, *,
                source: str | os.PathLike[str] | None = None) -> dict[str, np.ndarray]:
    """Random inputs matching the model's graph inputs (symbolic batch: ``count``; other symbolic dims: 1).

    :class:`OnnxFileError` (naming ``source``) for an input random values cannot be made for: not a tensor,
    of a type such as STRING, BFLOAT16 or UNDEFINED, or too large (2^31 elements)."""
    rng = np.random.default_rng(seed)
    inits = {i.name for i in model.graph.initializer}
    where = f"{source}: " if source is not None else ""
    feed = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        if not vi.type.HasField("tensor_type"):
            raise OnnxFileError(f"{where}input {vi.name!r} is not a tensor ({vi.type.WhichOneof('value') or 'no type'}); "
                                "edgevis cannot make test inputs for it")
        tt = vi.type.tensor_type
        kind = data_type_name(tt.elem_type) or str(tt.elem_type)
        if kind not in FEEDABLE:
            raise OnnxFileError(f"{where}input {vi.name!r} is of type {kind}; edgevis makes test inputs only of "
                                "numeric and bool types")
        shape = [d.dim_value if d.dim_value > 0 else (count if k == 0 else 1) for k, d in enumerate(tt.shape.dim)]
        size = 1
        for d in shape:
            size *= d
        if size > MAX_FEED_ELEMENTS:
            raise OnnxFileError(f"{where}input {vi.name!r} has shape {shape}: {size} elements, too many for a test "
                                f"input (at most {MAX_FEED_ELEMENTS})")
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


def node_attr(node: onnx.NodeProto, name: str, default: Any) -> Any:
    """The value of ``node``'s attribute ``name`` as onnx.helper decodes it (int, float, bytes, list), else ``default``."""
    a = next((a for a in node.attribute if a.name == name), None)
    return default if a is None else onnx.helper.get_attribute_value(a)


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
