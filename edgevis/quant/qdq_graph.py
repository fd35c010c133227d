"""Reading and editing a Q/DQ graph made by ``onnxruntime.quantization``.

ORT's quantizer inserts the Q/DQ nodes; edgevis then has to try many placements
(which ops stay in float) to find the one that is fast *and* accurate. Running
the quantizer once per placement costs seconds per call on a 500-node model (its
graph edits are quadratic), so edgevis quantizes everything once and derives
each placement by taking ops back out of int8: an op kept in float reads the
float tensors it read in the source model, and Q/DQ nodes nobody reads any more
are dropped. The op's output is still quantized where the next op needs it, so
keeping one op in float costs no int8 neighbour its fused kernel.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np
import onnx
from onnx import numpy_helper

from ..core.onnxfile import QDQ_OPS, TensorIndex


def name_every_node(model: onnx.ModelProto) -> int:
    """Give every node of ``model`` (in place) a name no other node has; returns how many were renamed.
    Placements, ``kept_float`` and ORT's ``nodes_to_exclude`` all name nodes, so two unnamed nodes
    (ONNX allows it) would be one: a Conv taken back to float would be rebuilt from the Gemm's inputs."""
    seen: set[str] = set()
    taken = {n.name for n in model.graph.node if n.name}
    renamed = 0
    for i, node in enumerate(model.graph.node):
        if node.name and node.name not in seen:
            seen.add(node.name)
            continue
        base = f"{node.name or node.op_type}_{i}"
        name, k = base, 0
        while name in taken or name in seen:
            k += 1
            name = f"{base}_{k}"
        node.name = name
        seen.add(name)
        taken.add(name)
        renamed += 1
    return renamed


def dequantized_constant(dq: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> np.ndarray:
    """The float64 value of a DequantizeLinear node whose inputs are all initializers (per-tensor or per-axis)."""
    q = numpy_helper.to_array(inits[dq.input[0]]).astype(np.float64)
    scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float64)
    zp = numpy_helper.to_array(inits[dq.input[2]]).astype(np.float64) if len(dq.input) > 2 and dq.input[2] else 0.0
    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
    if np.ndim(scale) == 1 and q.ndim > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), np.reshape(zp, shape) if np.ndim(zp) else zp
    return (q - zp) * scale


# Group names, in the order the latency search tries them: cheap ops whose int8
# form mostly adds Q/DQ work first, the ops int8 is for last.
GROUPS = (
    "data movement", "elementwise", "activation", "pooling", "normalization", "depthwise conv",
    "matmul/gemm", "conv", "other",
)
_GROUP_OF_OP = {
    **dict.fromkeys(("Reshape", "Transpose", "Concat", "Split", "Slice", "Gather", "Squeeze", "Unsqueeze",
                     "Flatten", "Resize", "Pad", "Expand", "Tile", "DepthToSpace", "SpaceToDepth"), "data movement"),
    **dict.fromkeys(("Add", "Mul", "Sub", "Div", "Sum", "Where", "Max", "Min"), "elementwise"),
    **dict.fromkeys(("Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "Gelu", "Tanh", "Erf",
                     "Softplus", "Elu", "PRelu"), "activation"),
    **dict.fromkeys(("AveragePool", "GlobalAveragePool", "MaxPool", "GlobalMaxPool", "ReduceMean", "ReduceMax",
                     "ReduceSum"), "pooling"),
    **dict.fromkeys(("Softmax", "LayerNormalization", "InstanceNormalization", "BatchNormalization",
                     "GroupNormalization"), "normalization"),
    **dict.fromkeys(("MatMul", "Gemm"), "matmul/gemm"),
}


def node_group(node: onnx.NodeProto) -> str:
    if node.op_type == "Conv":
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        return "depthwise conv" if group > 1 else "conv"
    return _GROUP_OF_OP.get(node.op_type, "other")


def quantized_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Compute nodes that read at least one dequantized tensor (the ops running in int8)."""
    idx = TensorIndex.of(model)
    out = []
    for n in model.graph.node:
        if n.op_type in QDQ_OPS:
            continue
        if any(i in idx.producer and idx.producer[i].op_type == "DequantizeLinear" for i in n.input if i):
            out.append(n)
    return out


def group_counts(nodes: Iterable[onnx.NodeProto]) -> dict[str, int]:
    c = Counter(node_group(n) for n in nodes)
    return {g: c[g] for g in GROUPS if c[g]}


# ops that only move or rescale a tensor: when everything that reads their output runs in float,
# they go back to float too, so the float op really reads float values (no 8-bit round trip on the way)
_CHAIN_ELEMENTWISE = ("Add", "Mul", "Sub", "Div")
FEEDER_REASON = "float feed (data movement whose output only ops kept in float read)"


def _is_constant(name: str, idx: TensorIndex) -> bool:
    if name in idx.initializers:
        return True
    p = idx.producer.get(name)
    return p is not None and (p.op_type == "Constant" or (p.op_type == "DequantizeLinear"
                                                           and _is_constant(p.input[0], idx)))


def _readers(name: str, idx: TensorIndex, outputs: set[str]) -> list[onnx.NodeProto] | None:
    """The compute ops that read tensor ``name``, looking through the Q->DQ pairs ORT put on it
    (``None`` when a graph output reads it, directly or through Q/DQ)."""
    if name in outputs:
        return None
    found: list[onnx.NodeProto] = []
    for c in idx.consumers.get(name, []):
        if c.op_type in QDQ_OPS:
            for o in c.output:
                sub = _readers(o, idx, outputs)
                if sub is None:
                    return None
                found.extend(sub)
        else:
            found.append(c)
    return found


def float_feeders(model: onnx.ModelProto, kept: Iterable[str]) -> list[str]:
    """Data-movement ops (and elementwise ops with a constant operand: bias, scale) of ``model`` whose
    outputs are read only by ops in ``kept`` or by other such ops, found to a fixed point.

    ORT's quantizer puts Q/DQ on every tensor between ops it quantizes, so an op excluded from
    quantization (attention's activation x activation MatMuls) still reads the Transpose/Reshape
    chain's 8-bit-rounded output: it runs in float on int8 values. Keeping this chain in float too
    (``keep_float``) makes "kept in float" what the graph does.
    """
    idx = TensorIndex.of(model)
    outputs = {o.name for o in model.graph.output}
    floating = set(kept)
    found: list[str] = []
    changed = True
    while changed:
        changed = False
        for n in reversed(model.graph.node):  # consumers first: a chain is found in one sweep
            if n.name in floating or n.op_type in QDQ_OPS:
                continue
            if node_group(n) != "data movement":
                if n.op_type not in _CHAIN_ELEMENTWISE or sum(1 for i in n.input if i and not _is_constant(i, idx)) != 1:
                    continue
            per_output = [_readers(o, idx, outputs) for o in n.output if o]
            if any(r is None for r in per_output):
                continue
            readers = [r for rs in per_output for r in rs or []]
            if readers and all(r.name in floating for r in readers):
                floating.add(n.name)
                found.append(n.name)
                changed = True
    return found


def keep_float(qmodel: onnx.ModelProto, float_model: onnx.ModelProto, names: Iterable[str]) -> onnx.ModelProto:
    """A copy of ``qmodel`` in which the nodes named ``names`` read float tensors again.

    ``float_model`` is the model the quantizer was given (same node names). An
    input goes back to its float source when that tensor still exists in the
    quantized graph or is a weight of the float model; where ORT folded the
    producing op into the quantization (a ReLU removed because the quantized range
    already clips at zero), the dequantized tensor is the only correct value and
    stays.
    """
    wanted = set(names)
    q = onnx.ModelProto()
    q.CopyFrom(qmodel)
    float_nodes = {n.name: n for n in float_model.graph.node if n.name in wanted}
    float_inits = {i.name: i for i in float_model.graph.initializer}
    idx = TensorIndex.of(q)
    fidx = TensorIndex.of(float_model)
    graph_inputs = {i.name for i in q.graph.input}
    added: set[str] = set()
    inserts: dict[str, list[onnx.NodeProto]] = {}
    for node in q.graph.node:
        src = float_nodes.get(node.name)
        if src is None or node.op_type in QDQ_OPS or len(src.input) != len(node.input):
            continue
        for k, (cur, orig) in enumerate(zip(node.input, src.input)):
            p = idx.producer.get(cur)
            if p is None or p.op_type != "DequantizeLinear":
                continue
            if orig in float_inits:
                # ORT names a bias's DequantizeLinear output after the float bias: give the float copy its own name
                name = orig if orig not in idx.producer else f"{orig}_float"
                if name not in idx.initializers and name not in added:
                    init = onnx.TensorProto()
                    init.CopyFrom(float_inits[orig])
                    init.name = name
                    q.graph.initializer.append(init)
                    added.add(name)
                node.input[k] = name
            elif orig in graph_inputs or same_producer(orig, idx, fidx):
                node.input[k] = orig
            elif _is_folded_activation(orig, idx, fidx):
                # Re-apply the activation ORT folded into the Q range to the float tensor, so the op
                # reads no DequantizeLinear: an op between a DQ and a Q is what ORT's load-time
                # WeightBiasQuantization pass turns back into int8 (per-tensor), silently undoing
                # the placement.
                act = fidx.producer[orig]
                out_name = f"{orig}_refloat"
                if out_name not in added:
                    copy = onnx.NodeProto()
                    copy.CopyFrom(act)
                    copy.name = f"{act.name}_refloat"
                    copy.input[0] = orig  # in the quantized graph this name holds the pre-activation value
                    copy.output[0] = out_name
                    for extra in act.input[1:]:
                        if extra and extra in float_inits and extra not in idx.initializers and extra not in added:
                            q.graph.initializer.append(float_inits[extra])
                            added.add(extra)
                    inserts.setdefault(node.name, []).append(copy)
                    added.add(out_name)
                node.input[k] = out_name
    if inserts:
        nodes = []
        for n in q.graph.node:
            nodes.extend(inserts.get(n.name, []))
            nodes.append(n)
        del q.graph.node[:]
        q.graph.node.extend(nodes)
    remove_dead_qdq(q)
    return q


def _is_folded_activation(name: str, q: TensorIndex, f: TensorIndex) -> bool:
    fp, qp = f.producer.get(name), q.producer.get(name)
    return (fp is not None and qp is not None and fp.op_type in ("Relu", "Clip") and qp.op_type != fp.op_type
            and all(i in f.initializers for i in fp.input[1:] if i))


def same_producer(name: str, q: TensorIndex, f: TensorIndex) -> bool:
    """Does ``name`` hold the same value in the quantized and the float graph?

    When ORT folds a ReLU/Clip into the quantized range it deletes the activation
    and gives its output name to the op before it, so the name survives but holds
    the pre-activation value; the producing op type tells the two apart.
    """
    qp, fp = q.producer.get(name), f.producer.get(name)
    return qp is not None and fp is not None and qp.op_type == fp.op_type


def unquantize_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose graph outputs are not rounded through a final Q/DQ pair.

    ORT quantizes the classifier's output like any other tensor; 256 levels over the
    logits' range turns near-ties between classes into exact ties and flips top-1
    answers for nothing (the int8 kernel can write float directly).
    """
    m = onnx.ModelProto()
    m.CopyFrom(model)
    idx = TensorIndex.of(m)
    for out in m.graph.output:
        dq = idx.producer.get(out.name)
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        q = idx.producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear" or q.input[0] not in idx.producer:
            continue
        x = q.input[0]
        prod = idx.producer[x]
        for k, o in enumerate(prod.output):
            if o == x:
                prod.output[k] = out.name
        for n in idx.consumers.get(x, []):
            if n is not q:
                for k, i in enumerate(n.input):
                    if i == x:
                        n.input[k] = out.name
        m.graph.node.remove(dq)
        m.graph.node.remove(q)
    remove_dead_qdq(m)
    return m


def remove_dead_qdq(model: onnx.ModelProto) -> None:
    """Drop Q/DQ nodes whose outputs nobody reads, then initializers nobody reads (in place)."""
    graph_outputs = {o.name for o in model.graph.output}
    while True:
        read = {i for n in model.graph.node for i in n.input} | graph_outputs
        dead = [n for n in model.graph.node
                if n.op_type in QDQ_OPS and not any(o in read for o in n.output)]
        if not dead:
            break
        for n in dead:
            model.graph.node.remove(n)
    read = {i for n in model.graph.node for i in n.input} | graph_outputs
    unused = [i for i in model.graph.initializer if i.name not in read]
    for i in unused:
        model.graph.initializer.remove(i)

