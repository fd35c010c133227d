"""Proof that a model is integer-only: no floating-point tensor between input quantization and output dequantization.

The check reads only the ONNX file. ONNX shape inference gives every tensor's
element type; the rules are then:

* a float graph input may feed only ``QuantizeLinear`` nodes;
* a float initializer may feed only the scale input of ``QuantizeLinear`` /
  ``DequantizeLinear``;
* every ``DequantizeLinear`` output is a graph output and feeds nothing;
* every other tensor - node outputs, initializers, graph outputs - has an integer
  (or bool) type, and a tensor whose type inference cannot determine fails the check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import onnx
from onnx import TensorProto

from ..core.errors import first_line

INTEGER_TYPES = {TensorProto.INT8, TensorProto.UINT8, TensorProto.INT16, TensorProto.UINT16, TensorProto.INT32,
                 TensorProto.UINT32, TensorProto.INT64, TensorProto.UINT64, TensorProto.BOOL}
FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}


@dataclass
class IntegerOnlyReport:
    ok: bool
    problems: list[str] = field(default_factory=list)
    integer_tensors: int = 0
    nodes: int = 0
    quantize_nodes: int = 0
    dequantize_nodes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"integer_only": self.ok, "problems": self.problems, "integer_tensors": self.integer_tensors,
                "nodes": self.nodes, "quantize_nodes": self.quantize_nodes, "dequantize_nodes": self.dequantize_nodes}


def check_integer_only(model: onnx.ModelProto, max_problems: int = 20) -> IntegerOnlyReport:
    graph = model.graph
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as e:  # noqa: BLE001 - inference failure is itself a finding
        first = first_line(e)
        return IntegerOnlyReport(False, [f"ONNX type inference failed: {first}"], nodes=len(graph.node))
    types: dict[str, int] = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        types[vi.name] = vi.type.tensor_type.elem_type
    for init in graph.initializer:
        types[init.name] = init.data_type
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            if i:
                consumers.setdefault(i, []).append(n)
    problems: list[str] = []
    inputs = {i.name for i in graph.input}
    outputs = {o.name for o in graph.output}
    inits = {i.name for i in graph.initializer}

    def is_float(name: str) -> bool:
        return types.get(name) in FLOAT_TYPES

    for name in inputs:
        if is_float(name):
            bad = [n for n in consumers.get(name, []) if n.op_type != "QuantizeLinear" or n.input[0] != name]
            for n in bad:
                problems.append(f"float input {name} feeds {n.op_type} node {n.name or '?'} (only QuantizeLinear may)")
    for name in inits:
        if is_float(name):
            for n in consumers.get(name, []):
                if n.op_type not in ("QuantizeLinear", "DequantizeLinear") or list(n.input).index(name) != 1:
                    problems.append(f"float initializer {name} feeds {n.op_type} node {n.name or '?'}")
        elif types.get(name) not in INTEGER_TYPES:
            problems.append(f"initializer {name} has non-integer type {types.get(name)}")
    n_int = 0
    for n in graph.node:
        for o in n.output:
            if not o:
                continue
            t = types.get(o)
            if n.op_type == "DequantizeLinear":
                if o not in outputs:
                    problems.append(f"DequantizeLinear output {o} is not a graph output: float math follows it")
                if consumers.get(o):
                    problems.append(f"DequantizeLinear output {o} feeds {consumers[o][0].op_type}: float math follows it")
                continue
            if t in INTEGER_TYPES:
                n_int += 1
            elif t is None or t == TensorProto.UNDEFINED:
                problems.append(f"type of {o} ({n.op_type} node {n.name or '?'}) cannot be inferred")
            else:
                problems.append(f"{o} ({n.op_type} node {n.name or '?'}) is {TensorProto.DataType.Name(t)}")
    for name in outputs:
        producer = next((n for n in graph.node if name in n.output), None)
        if is_float(name) and (producer is None or producer.op_type != "DequantizeLinear"):
            problems.append(f"float graph output {name} is not produced by DequantizeLinear")
    return IntegerOnlyReport(
        ok=not problems, problems=problems[:max_problems] + ([f"... and {len(problems) - max_problems} more"]
                                                              if len(problems) > max_problems else []),
        integer_tensors=n_int, nodes=len(graph.node),
        quantize_nodes=sum(n.op_type == "QuantizeLinear" for n in graph.node),
        dequantize_nodes=sum(n.op_type == "DequantizeLinear" for n in graph.node))
