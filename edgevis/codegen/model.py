"""An integer-only ONNX file read for code generation: static shapes, constants, the integer boundary.

The emitter works from the lowered integer graph in ``NAME.integer_only.onnx``, the
file the user has and the one its sidecar vouches for (the :class:`~edgevis.quant.ivit.program.Program`
that produced it is not stored; its lowering is proven bit-exact against it when the file
is written, and the tests compare the C with both). Every node between the input
``QuantizeLinear`` and the output ``DequantizeLinear`` is an integer op with ONNX
semantics, so a C kernel per op type reproduces ONNX Runtime bit for bit.

Shapes and constants come from one probe run of ONNX Runtime with every tensor as an
output: whatever does not depend on the input image (shape arithmetic, folded
constants) is a constant of the C program.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..core.errors import EdgevisError

C_TYPES = {TensorProto.INT64: "int64_t", TensorProto.INT32: "int32_t", TensorProto.INT8: "int8_t",
           TensorProto.UINT8: "uint8_t", TensorProto.UINT64: "uint64_t", TensorProto.BOOL: "uint8_t",
           TensorProto.INT16: "int16_t", TensorProto.UINT16: "uint16_t", TensorProto.UINT32: "uint32_t"}
NP_C_TYPES = {np.dtype(np.int64): "int64_t", np.dtype(np.int32): "int32_t", np.dtype(np.int8): "int8_t",
              np.dtype(np.uint8): "uint8_t", np.dtype(np.uint64): "uint64_t", np.dtype(np.bool_): "uint8_t",
              np.dtype(np.int16): "int16_t", np.dtype(np.uint16): "uint16_t", np.dtype(np.uint32): "uint32_t"}


class CodegenError(EdgevisError):
    """A file the C emitter cannot turn into C (not integer-only, no sidecar, an op without a C kernel)."""


@dataclass
class Tensor:
    name: str
    ctype: str
    shape: tuple[int, ...]
    value: np.ndarray | None = None  # constants only

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def itemsize(self) -> int:
        return {"int64_t": 8, "uint64_t": 8, "int32_t": 4, "uint32_t": 4, "int16_t": 2, "uint16_t": 2}.get(self.ctype, 1)

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize


@dataclass
class Node:
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]


@dataclass
class IntGraph:
    """The integer part of the file: nodes in order from the int8 input to the int32 logits."""

    input_name: str  # the float graph input
    input_int8: str  # QuantizeLinear's output: the C input
    logits: str  # the int32 tensor DequantizeLinear reads: the C output
    input_scale: float
    output_scale: float
    tensors: dict[str, Tensor]
    nodes: list[Node] = field(default_factory=list)

    def is_const(self, name: str) -> bool:
        return self.tensors[name].value is not None


def _float32_of(model: onnx.ModelProto, name: str, consts: dict[str, np.ndarray]) -> float:
    v = consts.get(name)
    if v is None or v.size != 1:
        raise CodegenError(f"the {name} scale of the integer boundary must be a constant scalar")
    return float(np.float32(v.reshape(-1)[0]))


def read_integer_graph(path: str | os.PathLike[str], model: onnx.ModelProto) -> IntGraph:
    """The integer graph of an integer-only ``model`` (checked float-free by the caller), probed for shapes."""
    g = model.graph
    if len(g.input) != 1 or len(g.output) != 1:
        raise CodegenError(f"{Path(path).name}: the C emitter takes a model with one input and one output")
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    quants = [n for n in g.node if n.op_type == "QuantizeLinear"]
    deqs = [n for n in g.node if n.op_type == "DequantizeLinear"]
    if len(quants) != 1 or quants[0].input[0] != g.input[0].name or len(deqs) != 1 or deqs[0].output[0] != g.output[0].name:
        raise CodegenError(f"{Path(path).name}: not an integer-only file (want one QuantizeLinear on the input and "
                           "one DequantizeLinear on the output)")
    q, dq = quants[0], deqs[0]
    for n, zp in ((q, 2), (dq, 2)):
        if len(n.input) > zp and n.input[zp] and np.any(consts.get(n.input[zp], np.ones(1)) != 0):
            raise CodegenError(f"{Path(path).name}: the {n.op_type} zero point must be 0")
    values, ctypes = _probe(model, [n for n in g.node if n is not q and n is not dq], q.output[0])
    tensors: dict[str, Tensor] = {}
    dyn: set[str] = {q.output[0]}
    nodes: list[Node] = []
    for n in g.node:
        if n is q or n is dq:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        depends = n.op_type not in ("Shape", "Size") and any(i in dyn for i in n.input if i)
        for o in n.output:
            if not o:
                continue
            if depends:
                dyn.add(o)
        if depends:
            nodes.append(Node(n.op_type, n.name or n.output[0], list(n.input), [o for o in n.output if o], attrs))
    for name, v in values.items():
        if name not in ctypes:
            continue
        tensors[name] = Tensor(name, ctypes[name], tuple(int(d) for d in v.shape), None if name in dyn else v)
    for name, v in consts.items():
        if name not in tensors and v.dtype in NP_C_TYPES:
            tensors[name] = Tensor(name, NP_C_TYPES[v.dtype], tuple(v.shape), v)
    tensors[""] = Tensor("", "int64_t", (), None)  # an omitted optional input
    if dq.input[0] not in dyn or tensors[dq.input[0]].ctype != "int32_t":
        raise CodegenError(f"{Path(path).name}: the output DequantizeLinear must read an int32 tensor computed from the input")
    return IntGraph(g.input[0].name, q.output[0], dq.input[0], _float32_of(model, q.input[1], consts),
                    _float32_of(model, dq.input[1], consts), tensors, nodes)


def _probe(model: onnx.ModelProto, nodes: list[onnx.NodeProto], q8: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every integer tensor's value on a zero image (shapes; constants), from one ONNX Runtime run."""
    import onnxruntime as ort

    inferred = onnx.shape_inference.infer_shapes(model)
    elem = {vi.name: vi.type.tensor_type.elem_type for vi in
            list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    ctypes: dict[str, str] = {}
    outs = []
    wanted = [q8] + [o for n in nodes for o in n.output if o]
    for name in wanted:
        t = elem.get(name)
        if t not in C_TYPES:
            raise CodegenError(f"tensor {name} has element type {TensorProto.DataType.Name(t or 0)}, "
                               "which the C emitter does not handle")
        ctypes[name] = C_TYPES[t]
        outs.append(helper.make_tensor_value_info(name, t, None))
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.output[:]
    m.graph.output.extend(outs)
    shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
             for d in model.graph.input[0].type.tensor_type.shape.dim]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
    res = sess.run(None, {model.graph.input[0].name: np.zeros(shape, np.float32)})
    return dict(zip(wanted, (np.asarray(r) for r in res))), ctypes
