"""Per-tensor quantization error: how much error each quantized tensor carries.

For every activation the quantizer rounds, the quantized model is run with the
tensor exposed on both sides of its Q/DQ pair; the signal-to-quantization-noise
ratio (SQNR, dB) of that pair is the error quantizing this one tensor adds.
Weights are compared with their float originals the same way. An op's
sensitivity is the worst (lowest) SQNR among the quantized tensors it reads.

ORT's ``qdq_loss_debug`` computes the same ratios, but its ``collect_activations``
keeps every tensor of every image in memory; here the sums are accumulated image
by image so memory stays flat.

Local SQNR is cheap but a poor guide to what hurts the outputs (an early conv with
40 dB can matter more than a late one with 30 dB); the accuracy search ranks ops
by their measured effect on the outputs (``Searcher.op_sensitivity``) and this
module supplies the per-tensor figures for the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import onnx
from onnx import numpy_helper

from ..core.onnxfile import TensorIndex
from .qdq_graph import node_group, quantized_nodes


@dataclass(frozen=True)
class Sensitivity:
    """An int8 op and the share of the model's output error that goes away when it alone runs in float."""

    node: str
    op_type: str
    group: str
    error_share: float

    def to_dict(self) -> dict[str, object]:
        return {"node": self.node, "op": self.op_type, "group": self.group,
                "output_error_share": round(self.error_share, 4)}


@dataclass(frozen=True)
class TensorError:
    """The worst quantization SQNR among the tensors an int8 op reads (cheap, local)."""

    node: str
    op_type: str
    group: str
    sqnr_db: float
    tensor: str

    def to_dict(self) -> dict[str, object]:
        return {"node": self.node, "op": self.op_type, "group": self.group,
                "input_sqnr_db": round(self.sqnr_db, 2), "tensor": self.tensor}


def _db(signal: float, noise: float) -> float:
    if noise <= 0:
        return math.inf
    return 10.0 * math.log10(max(signal, 1e-30) / noise)


def _dequantize(model: onnx.ModelProto, dq: onnx.NodeProto) -> np.ndarray:
    from .qdq_graph import dequantized_constant

    return dequantized_constant(dq, {i.name: i for i in model.graph.initializer})


def _folded_bounds(name: str, q: TensorIndex, f: TensorIndex, float_model: onnx.ModelProto) -> tuple[float, float] | None:
    """(low, high) of the ReLU/Clip ORT removed in front of ``name``'s quantization, if it did."""
    qp, fp = q.producer.get(name), f.producer.get(name)
    if qp is None or fp is None or qp.op_type == fp.op_type:
        return None
    if fp.op_type == "Relu":
        return (0.0, math.inf)
    if fp.op_type == "Clip":
        consts = {i.name: float(numpy_helper.to_array(i)) for i in float_model.graph.initializer if not i.dims}
        for n in float_model.graph.node:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].t.dims == []:
                consts[n.output[0]] = float(numpy_helper.to_array(n.attribute[0].t))
        lo = consts.get(fp.input[1], -math.inf) if len(fp.input) > 1 and fp.input[1] else -math.inf
        hi = consts.get(fp.input[2], math.inf) if len(fp.input) > 2 and fp.input[2] else math.inf
        return (lo, hi)
    return None


def tensor_sqnr(qmodel: onnx.ModelProto, float_model: onnx.ModelProto, feeds: Iterable[dict[str, np.ndarray]],
                threads: int | None = None) -> dict[str, float]:
    """SQNR (dB) of every quantized activation (measured over ``feeds``) and weight."""
    from ..runtimes.latency import cpu_session

    idx = TensorIndex.of(qmodel)
    fidx = TensorIndex.of(float_model)
    pairs: dict[str, str] = {}  # float tensor -> its dequantized copy
    folded: dict[str, tuple[float, float]] = {}  # tensors whose ReLU/Clip ORT folded into the Q range
    for n in qmodel.graph.node:
        if n.op_type != "QuantizeLinear" or n.input[0] in idx.initializers:
            continue
        for dq in idx.consumers.get(n.output[0], []):
            if dq.op_type == "DequantizeLinear":
                pairs[n.input[0]] = dq.output[0]
                bounds = _folded_bounds(n.input[0], idx, fidx, float_model)
                if bounds is not None:
                    folded[n.input[0]] = bounds
                break
    out: dict[str, float] = {}
    float_inits = {i.name: i for i in float_model.graph.initializer}
    fnodes = {n.name: n for n in float_model.graph.node}
    # weights: compare the dequantized initializer with the float one the node read before
    for node in quantized_nodes(qmodel):
        src = fnodes.get(node.name)
        if src is None:
            continue
        for cur, orig in zip(node.input, src.input):
            p = idx.producer.get(cur)
            if p is not None and p.op_type == "DequantizeLinear" and p.input[0] in idx.initializers \
                    and orig in float_inits:
                w = numpy_helper.to_array(float_inits[orig]).astype(np.float64)
                d = _dequantize(qmodel, p)
                if d.shape == w.shape:
                    out[cur] = _db(float(np.sum(w * w)), float(np.sum((w - d) ** 2)))
    if not pairs:
        return out
    aug = onnx.ModelProto()
    aug.CopyFrom(qmodel)
    have = {o.name for o in aug.graph.output}
    names = [t for pair in pairs.items() for t in pair if t not in have]
    for t in names:
        aug.graph.output.append(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None))
    sess = cpu_session(aug.SerializeToString(), threads)
    out_names = [o.name for o in sess.get_outputs()]
    sig = dict.fromkeys(pairs, 0.0)
    noise = dict.fromkeys(pairs, 0.0)
    for feed in feeds:
        vals = dict(zip(out_names, sess.run(None, feed)))
        for f, d in pairs.items():
            a = vals[f].astype(np.float64)
            if f in folded:  # compare with the activation's output, which the float model computes
                a = np.clip(a, *folded[f])
            sig[f] += float(np.sum(a * a))
            noise[f] += float(np.sum((a - vals[d]) ** 2))
    for f, d in pairs.items():
        out[d] = _db(sig[f], noise[f])
    return out


def rank_by_sqnr(qmodel: onnx.ModelProto, sqnr: dict[str, float]) -> list[TensorError]:
    """Quantized ops, lowest input SQNR first."""
    idx = TensorIndex.of(qmodel)
    ranked = []
    for n in quantized_nodes(qmodel):
        worst = (math.inf, "")
        for i in n.input:
            p = idx.producer.get(i)
            if p is not None and p.op_type == "DequantizeLinear" and i in sqnr and sqnr[i] < worst[0]:
                worst = (sqnr[i], i)
        if worst[1]:
            ranked.append(TensorError(n.name, n.op_type, node_group(n), worst[0], worst[1]))
    ranked.sort(key=lambda s: s.sqnr_db)
    return ranked
