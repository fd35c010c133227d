"""FP32 graph rewrites before ONNX Runtime's quantizer, and a bias fix after it.

ORT's ``quantize_static`` does neither of the data-free fixes of Nagel et al.,
"Data-Free Quantization Through Weight Equalization and Bias Correction" (ICCV
2019), nor does it accept every graph it is given; this module supplies the three
pieces by hand because no library edgevis already uses applies them to an ONNX
graph (AIMET and NNCF do, on their own model formats):

* ``equalize``: cross-layer equalization. For ``Conv A -> (Relu | nothing) -> Conv B``
  where A's output feeds only B, output channel ``c`` of A is divided by ``s_c``
  and input channel ``c`` of B multiplied by it, with ``s_c = sqrt(r1_c / r2_c)``
  (``r1``/``r2``: the channel's weight range in A and B). ReLU commutes with a
  positive scale, so the FP32 function is unchanged while both layers' per-channel
  weight ranges become equal: the int8 grid of each fits its channels better.
  ``Clip(0, 6)`` (ReLU6) does not commute with a per-channel scale and is left alone.
* ``unshare_initializers``: ORT's quantizer refuses a weight that several nodes read
  when one of them wants to share quantization parameters with it ("shared mode is
  not supported for weight"); each extra reader gets its own copy.
* ``correct_biases``: after quantization, each Conv/Gemm's bias absorbs the mean
  output shift its rounded weights cause, ``(W_q - W) * E[x]``, with ``E[x]`` the
  mean of the layer's FP32 input measured on calibration images, per position for a
  Conv (so that what its padding reads at the borders counts).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import onnx
from onnx import numpy_helper

from ..core.onnxfile import TensorIndex, node_attr

# scales are clamped so that a channel whose weights are all (nearly) zero is not blown up
_S_MIN, _S_MAX = 1e-4, 1e4


@dataclass
class EqualizeReport:
    pairs: list[tuple[str, str]] = field(default_factory=list)
    # per pair, the largest imbalance max(r1/r2, r2/r1) between a channel's weight range in A and in B
    imbalance_before: list[float] = field(default_factory=list)
    imbalance_after: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"pairs": len(self.pairs),
                "worst_imbalance_before": round(max(self.imbalance_before, default=1.0), 3),
                "worst_imbalance_after": round(max(self.imbalance_after, default=1.0), 3)}


def _conv_weight(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> np.ndarray | None:
    if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in inits:
        return None
    w = numpy_helper.to_array(inits[node.input[1]])
    return w if w.ndim >= 3 and w.dtype == np.float32 else None


def _ranges_out(w: np.ndarray) -> np.ndarray:
    return np.abs(w.reshape(w.shape[0], -1)).max(axis=1)


def _ranges_in(w: np.ndarray, group: int) -> np.ndarray:
    """Per input channel of a (grouped) conv: the weight range that input channel meets."""
    co, cig = w.shape[0], w.shape[1]
    per = np.abs(w).reshape(group, co // group, cig, -1).max(axis=(1, 3))  # (group, cig)
    return per.reshape(-1)


def _scale_in(w: np.ndarray, group: int, s: np.ndarray) -> np.ndarray:
    co, cig = w.shape[0], w.shape[1]
    s = s.reshape(group, 1, cig, *([1] * (w.ndim - 2)))
    return (w.reshape(group, co // group, cig, *w.shape[2:]) * s).reshape(w.shape).astype(np.float32)


def find_pairs(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, onnx.NodeProto]]:
    """(A, B) with ``A -> [Relu] -> B``: A's output (and the Relu's) read by that path alone, no graph output,
    weights constant and used by that node alone."""
    idx = TensorIndex.of(model)
    inits = {i.name: i for i in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    uses = Counter(i for n in model.graph.node for i in n.input)
    pairs = []
    for a in model.graph.node:
        wa = _conv_weight(a, inits)
        if wa is None or uses[a.input[1]] != 1 or (len(a.input) > 2 and a.input[2] and a.input[2] not in inits):
            continue
        t = a.output[0]
        nxt = idx.consumers.get(t, [])
        if t in outputs or len(nxt) != 1:
            continue
        b = nxt[0]
        if b.op_type == "Relu":
            t = b.output[0]
            nxt = idx.consumers.get(t, [])
            if t in outputs or len(nxt) != 1:
                continue
            b = nxt[0]
        wb = _conv_weight(b, inits)
        if wb is None or b.input[0] != t or uses[b.input[1]] != 1:
            continue
        if wb.shape[1] * node_attr(b, "group", 1) != wa.shape[0]:
            continue
        pairs.append((a, b))
    return pairs


def equalize(model: onnx.ModelProto, iterations: int = 4) -> tuple[onnx.ModelProto, EqualizeReport]:
    """A copy of ``model`` with every ``Conv -> [Relu] -> Conv`` pair's weights equalized (same FP32 outputs)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    report = EqualizeReport()
    pairs = find_pairs(out)
    if not pairs:
        return out, report
    inits = {i.name: i for i in out.graph.initializer}
    arrays: dict[str, np.ndarray] = {}

    def get(name: str) -> np.ndarray:
        if name not in arrays:
            arrays[name] = numpy_helper.to_array(inits[name]).astype(np.float32)
        return arrays[name]

    def imbalance(a: onnx.NodeProto, b: onnx.NodeProto) -> float:
        r1, r2 = _ranges_out(get(a.input[1])), _ranges_in(get(b.input[1]), node_attr(b, "group", 1))
        ok = (r1 > 0) & (r2 > 0)
        q = r1[ok] / r2[ok]
        return float(np.maximum(q, 1 / q).max()) if q.size else 1.0

    report.imbalance_before = [imbalance(a, b) for a, b in pairs]
    # a conv can be B of one pair and A of the next: a few sweeps settle the chain (as in the paper)
    for _ in range(iterations):
        for a, b in pairs:
            wa, wb, gb = get(a.input[1]), get(b.input[1]), node_attr(b, "group", 1)
            r1, r2 = _ranges_out(wa), _ranges_in(wb, gb)
            s = np.where((r1 > 0) & (r2 > 0), np.sqrt(r1 / np.maximum(r2, 1e-30)), 1.0)
            s = np.clip(s, _S_MIN, _S_MAX).astype(np.float32)
            arrays[a.input[1]] = (wa / s.reshape(-1, *([1] * (wa.ndim - 1)))).astype(np.float32)
            if len(a.input) > 2 and a.input[2]:
                arrays[a.input[2]] = (get(a.input[2]) / s).astype(np.float32)
            arrays[b.input[1]] = _scale_in(wb, gb, s)
    report.pairs = [(a.name, b.name) for a, b in pairs]
    report.imbalance_after = [imbalance(a, b) for a, b in pairs]
    for name, arr in arrays.items():
        inits[name].CopyFrom(numpy_helper.from_array(arr, name))
    return out, report


def unshare_initializers(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of ``model`` in which every initializer is read by one node input only (extra readers get copies)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    inits = {i.name: i for i in out.graph.initializer}
    taken = {i.name for i in out.graph.initializer} | {o for n in out.graph.node for o in n.output}
    seen: set[str] = set()
    copies = 0
    for node in out.graph.node:
        for k, name in enumerate(node.input):
            if name not in inits:
                continue
            if name not in seen:
                seen.add(name)
                continue
            j = 1
            while f"{name}_copy{j}" in taken:
                j += 1
            new = f"{name}_copy{j}"
            taken.add(new)
            t = onnx.TensorProto()
            t.CopyFrom(inits[name])
            t.name = new
            out.graph.initializer.append(t)
            node.input[k] = new
            copies += 1
    return out, copies


# ---------------------------------------------------------------------------------------------
# bias correction on the quantized (QDQ) graph


def _dequantized_initializer(name: str, idx: TensorIndex, inits: dict[str, onnx.TensorProto]) -> tuple[onnx.NodeProto, np.ndarray] | None:
    """(the DequantizeLinear node, its float value) when ``name`` is a constant dequantized from an initializer."""
    dq = idx.producer.get(name)
    if dq is None or dq.op_type != "DequantizeLinear" or any(i not in inits for i in dq.input if i):
        return None
    from .qdq_graph import dequantized_constant

    return dq, dequantized_constant(dq, inits)


def bias_targets(qmodel: onnx.ModelProto) -> list[tuple[onnx.NodeProto, str]]:
    """(int8 Conv/Gemm with a quantized weight and an int32 bias, the name of its float input tensor)."""
    idx = TensorIndex.of(qmodel)
    inits = {i.name: i for i in qmodel.graph.initializer}
    out = []
    for n in qmodel.graph.node:
        if n.op_type not in ("Conv", "Gemm") or len(n.input) < 3 or not n.input[2]:
            continue
        if n.op_type == "Gemm" and node_attr(n, "transA", 0):
            continue
        w, b = _dequantized_initializer(n.input[1], idx, inits), _dequantized_initializer(n.input[2], idx, inits)
        x = idx.producer.get(n.input[0])
        if w is None or b is None or x is None or x.op_type != "DequantizeLinear":
            continue
        out.append((n, x.input[0]))
    return out


def correct_biases(qmodel: onnx.ModelProto, float_model: onnx.ModelProto,
                   feeds: Iterable[dict[str, np.ndarray]]) -> tuple[onnx.ModelProto, int]:
    """A copy of ``qmodel`` whose int8 Conv/Gemm biases cancel the mean shift their weight rounding causes.

    ``float_model`` is the graph the quantizer was given (same node names); ``feeds`` are calibration
    inputs for it. Returns (corrected model, number of layers corrected).
    """
    out = onnx.ModelProto()
    out.CopyFrom(qmodel)
    fnodes = {n.name: n for n in float_model.graph.node if n.name}
    finits = {i.name: i for i in float_model.graph.initializer}
    todo = []
    for n, _ in bias_targets(out):
        f = fnodes.get(n.name)
        if f is None or f.op_type != n.op_type or len(f.input) < 2 or f.input[1] not in finits:
            continue
        todo.append((n, f))
    if not todo:
        return out, 0

    # what each corrected layer reads on average over the calibration images, per input channel and kernel tap
    # for a Conv (a border output reads padding where an inner one reads the image: with one mean per channel the
    # correction was wrong at every border, and on the digits net at 64 px, whose late maps are 4x4, it did not
    # shrink the network's mean shift at all), per feature for a Gemm
    wanted = list(dict.fromkeys(f.input[0] for _, f in todo))
    sess = _probe_session(float_model, wanted)
    sums: dict[str, np.ndarray] = {}
    count = 0
    for feed in feeds:
        vals = dict(zip(wanted, sess.run(wanted, feed)))
        for n, f in todo:
            v = vals[f.input[0]]
            w_shape = list(finits[f.input[1]].dims)
            if n.op_type == "Conv":
                if v.ndim != len(w_shape) or v.shape[1] != w_shape[1] * node_attr(n, "group", 1):
                    return out, 0  # not what the weights say this Conv reads: correct nothing rather than guess
                m = _tap_means(v.astype(np.float64).sum(axis=0), n, w_shape[2:])
            else:
                m = v.astype(np.float64).sum(axis=0) if v.ndim == 2 else None
            if m is None or (n.name in sums and sums[n.name].shape != m.shape):
                return out, 0  # inputs of varying size
            sums[n.name] = sums.get(n.name, 0.0) + m
        count += len(vals[wanted[0]])
    if count == 0:
        return out, 0
    means = {k: v / count for k, v in sums.items()}

    idx = TensorIndex.of(out)
    inits = {i.name: i for i in out.graph.initializer}
    fixed = 0
    for n, f in todo:
        _, wq = _dequantized_initializer(n.input[1], idx, inits)  # type: ignore[misc]
        bdq, _ = _dequantized_initializer(n.input[2], idx, inits)  # type: ignore[misc]
        w = numpy_helper.to_array(finits[f.input[1]]).astype(np.float64)
        ex = means[n.name]
        if w.shape != wq.shape:
            continue
        dw = wq - w
        if n.op_type == "Conv":
            # delta[o] = sum_{i,k} dW[o,i,k] * E[what tap k reads of input channel i of o's group]
            g = node_attr(n, "group", 1)
            co, cig = w.shape[0], w.shape[1]
            taps = ex.reshape(g, 1, cig, -1)  # (groups, 1, in-channels per group, taps)
            delta = (dw.reshape(g, co // g, cig, -1) * taps).sum(axis=(2, 3)).reshape(co)
        else:  # Gemm: y = x @ W (+ transB) + b
            wk = dw.T if node_attr(n, "transB", 0) else dw
            if ex.shape != (wk.shape[0],):
                continue
            delta = ex @ wk
        bq_t = inits[bdq.input[0]]
        bscale = numpy_helper.to_array(inits[bdq.input[1]]).astype(np.float64)
        bq = numpy_helper.to_array(bq_t).astype(np.float64)
        if bq.shape != delta.shape:
            continue
        new = np.clip(np.round(bq - delta / bscale), -(2 ** 31), 2 ** 31 - 1).astype(np.int32)
        bq_t.CopyFrom(numpy_helper.from_array(new.astype(numpy_helper.to_array(bq_t).dtype), bq_t.name))
        fixed += 1
    return out, fixed


def _tap_means(x: np.ndarray, node: onnx.NodeProto, kernel: list[int]) -> np.ndarray:
    """(C, *kernel): for each input channel and kernel tap, the sum of what that tap reads of ``x`` (C, *spatial)
    over the Conv's output positions (padding reads 0), divided by their number.

    Along one axis, tap ``k`` of output ``o`` reads ``o * stride + k * dilation - pad_begin``: the positions
    inside the map that it reads form a strided slice, and the axes are independent, so each tap is one slice's
    sum (the Conv's input map is never held beyond the batch that is being read)."""
    nd = len(kernel)
    size = list(x.shape[1:])
    strides, dil = node_attr(node, "strides", [1] * nd), node_attr(node, "dilations", [1] * nd)
    pads, auto = node_attr(node, "pads", [0] * (2 * nd)), node_attr(node, "auto_pad", b"NOTSET")
    if auto in (b"SAME_UPPER", b"SAME_LOWER"):
        pads = [0] * (2 * nd)
        for d in range(nd):
            total = max((-(-size[d] // strides[d]) - 1) * strides[d] + (kernel[d] - 1) * dil[d] + 1 - size[d], 0)
            small, big = total // 2, total - total // 2
            pads[d], pads[d + nd] = (small, big) if auto == b"SAME_UPPER" else (big, small)
    elif auto == b"VALID":
        pads = [0] * (2 * nd)
    outs = [(size[d] + pads[d] + pads[d + nd] - (kernel[d] - 1) * dil[d] - 1) // strides[d] + 1 for d in range(nd)]
    m = np.zeros((x.shape[0], *kernel))
    for tap in np.ndindex(*kernel):
        sl = []
        for d in range(nd):
            first = tap[d] * dil[d] - pads[d]  # the position output 0 reads (negative: padding)
            o0 = -(first // strides[d]) if first < 0 else 0  # the first output that reads inside the map
            o1 = min(outs[d], (size[d] - 1 - first) // strides[d] + 1)  # one past the last
            if o1 <= o0:
                break
            sl.append(slice(first + o0 * strides[d], first + (o1 - 1) * strides[d] + 1, strides[d]))
        else:
            m[(slice(None), *tap)] = x[(slice(None), *sl)].sum(axis=tuple(range(1, nd + 1)))
    return m / float(np.prod(outs))


def _pad_free(node: onnx.NodeProto) -> bool:
    pads, auto = node_attr(node, "pads", []), node_attr(node, "auto_pad", b"NOTSET")
    return not any(pads) and auto in (b"NOTSET", b"VALID")


def offset_streams(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, list[str], list[onnx.NodeProto]]]:
    """(Conv A, the tensors its output flows into unchanged but for additions, the pad-free Convs that read them).

    Shifting A's output channels by ``-c`` (A's bias) is exact when every reader of the shifted tensors
    is a Conv without padding (its bias takes ``+W.c`` back) or an Add whose other operand is not
    shifted (its output carries the same shift on): a MobileNet/EfficientNet stage's residual stream."""
    idx = TensorIndex.of(model)
    inits = {i.name: i for i in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    found = []
    for a in model.graph.node:
        if _conv_weight(a, inits) is None or len(a.input) < 3 or a.input[2] not in inits:
            continue
        stream, readers, todo, ok = [a.output[0]], [], [a.output[0]], True
        while todo and ok:
            t = todo.pop()
            cons = idx.consumers.get(t, [])
            if t in outputs or not cons:
                ok = False
            for n in cons:
                if _conv_weight(n, inits) is not None and n.input[0] == t and t not in n.input[1:] and _pad_free(n):
                    readers.append(n)
                elif n.op_type == "Add" and len(n.input) == 2 and sum(i in stream for i in n.input) == 1 \
                        and not any(i in inits for i in n.input):
                    stream.append(n.output[0])
                    todo.append(n.output[0])
                else:
                    ok = False
        if ok and readers:
            found.append((a, stream, readers))
    return found


def absorb_offsets(model: onnx.ModelProto, feeds: Iterable[dict[str, np.ndarray]]) -> tuple[onnx.ModelProto, int]:
    """A copy of ``model`` in which every ``offset_streams`` stream is centred per channel (midrange of its
    values on ``feeds``), the offset moved into the biases of the convs that read it: the same FP32
    function, but a per-tensor int8 range no longer spent on one channel's constant (DFQ's bias absorption,
    generalised to the linear bottlenecks and residual streams of inverted-residual nets)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    streams = offset_streams(out)
    if not streams:
        return out, 0
    wanted = [a.output[0] for a, _, _ in streams]
    sess = _probe_session(out, wanted)
    lo: dict[str, np.ndarray] = {}
    hi: dict[str, np.ndarray] = {}
    for feed in feeds:
        for t, v in zip(wanted, sess.run(wanted, feed)):
            axes = tuple(i for i in range(v.ndim) if i != 1)
            mn, mx = v.min(axis=axes).astype(np.float64), v.max(axis=axes).astype(np.float64)
            lo[t] = np.minimum(lo[t], mn) if t in lo else mn
            hi[t] = np.maximum(hi[t], mx) if t in hi else mx
    if not lo:
        return out, 0
    inits = {i.name: i for i in out.graph.initializer}

    def add_to(name: str, delta: np.ndarray) -> None:
        v = numpy_helper.to_array(inits[name]).astype(np.float64) + delta
        inits[name].CopyFrom(numpy_helper.from_array(v.astype(np.float32), name))

    done = 0
    for a, _, readers in streams:
        c = (lo[a.output[0]] + hi[a.output[0]]) / 2
        add_to(a.input[2], -c)
        for n in readers:
            w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float64)
            g = node_attr(n, "group", 1)
            co, cig = w.shape[0], w.shape[1]
            back = (w.reshape(g, co // g, cig, -1).sum(axis=3) * c.reshape(g, 1, cig)).sum(axis=2).reshape(co)
            if len(n.input) > 2 and n.input[2]:
                add_to(n.input[2], back)
            else:  # a bias the reader did not have
                name = f"{n.name or n.output[0]}_absorbed_bias"
                out.graph.initializer.append(numpy_helper.from_array(back.astype(np.float32), name))
                inits[name] = out.graph.initializer[-1]
                if len(n.input) == 2:
                    n.input.append(name)
                else:
                    n.input[2] = name
        done += 1
    return out, done


def prepare_float(model: onnx.ModelProto, equalize_pairs: bool, absorb: bool = False,
                  feeds: Iterable[dict[str, np.ndarray]] = ()) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """The FP32 graph ORT's quantizer is given: initializers unshared, equalized and offsets absorbed when
    asked. Returns (model, a record of what was rewritten, for the INT8 settings)."""
    from .qdq_graph import name_every_node

    record: dict[str, Any] = {}
    named = name_every_node(model)  # before anything that keys nodes by name
    if named:
        record["named_nodes"] = named
    model, copies = unshare_initializers(model)
    if copies:
        record["unshared_initializers"] = copies
    if equalize_pairs:
        model, rep = equalize(model)
        record["equalized"] = rep.to_dict()
    if absorb:
        model, record["offsets_absorbed"] = absorb_offsets(model, feeds)
    return model, record


def _probe_session(model: onnx.ModelProto, tensors: list[str]):  # type: ignore[no-untyped-def]
    """An unoptimized CPU session of a copy of ``model`` that also outputs ``tensors`` (so none is fused away)."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.ValueInfoProto(name=t) for t in tensors if t not in have)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
