"""FP32 ONNX graph + calibrated ranges -> an integer-only :class:`~.program.Program`.

The converter walks the float graph in order and gives every node an integer rule.
Each float tensor becomes an integer tensor with a real scale known at conversion
time (``value = int * scale``) and a proven magnitude bound, which is what keeps
every int64 intermediate below 2**62. Tensor states:

* *activation*: per-tensor scale, 16-bit (scale = calibrated max|x| / 32767);
* *accumulator*: the exact result of a linear op, product or integer norm, with a
  per-channel or per-tensor scale; rescaled (dyadic requantization) only when a
  consumer needs a calibrated per-tensor scale, so bias adds, ReLU/Clip and sums
  of products with equal scales stay exact.

Linear ops (Conv, MatMul, Gemm) take int8 inputs (requantized from the
calibrated range of that tensor; a softmax output enters as uint8) and int8
symmetric per-output-channel weights, with the bias in int32 units of
``s_w * s_x``. A node without an integer rule fails the conversion with its name
and op type: there is no silent float island.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Callable

import numpy as np
import onnx
from onnx import numpy_helper

from ...core.errors import EdgevisError
from .arith import RangeError, check_bound, dyadic
from .kernels import (NORM_G, SIGMOID_P, Clip, ConvInteger, Elementwise, Gelu, Kernel, MatMulInteger, Norm, Passthrough,
                      ReduceSum, Requant, Shiftmax, Sigmoid)
from .dilated import DilatedConvInteger
from .pool import average_pool_kernels
from .program import Program, Step

ACT_MAX = 32767  # activations: 16 bit
ACT_HEADROOM = 4.0
LIN_MAX = 127  # linear-op inputs: 8 bit
OUT_MAX = (1 << 31) - 1  # logits: int32

DATA_OPS = {"Reshape", "Transpose", "Gather", "Slice", "Split", "Squeeze", "Unsqueeze", "Flatten", "Identity",
            "Pad", "Expand", "Concat"}


class IntegerOnlyError(EdgevisError):
    """The model cannot be made integer-only (an op without an integer rule, an unsupported attribute)."""


@dataclass(frozen=True)
class QT:
    name: str
    scale: np.ndarray  # float64, scalar or broadcastable per channel
    bound: int  # every |value| <= bound
    acc: bool = False  # not yet rescaled to a calibrated per-tensor scale
    unsigned: bool = False  # values in [0, bound]

    @property
    def scalar(self) -> bool:
        return self.scale.size == 1


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class Converter:
    def __init__(self, model: onnx.ModelProto, absmax: dict[str, float], model_name: str = "model",
                 wide: set[str] | None = None, softmax_bits: int = 8) -> None:
        """``wide``: names of linear nodes whose activation input stays 16-bit (two int8 products);
        ``softmax_bits``: 8 (output in [0, 255]) or 16 (in [0, 32767])."""
        self.wide = wide or set()
        self.softmax_q = 255 if softmax_bits == 8 else ACT_MAX
        self.model = model
        self.absmax = absmax
        self.model_name = model_name
        inferred = onnx.shape_inference.infer_shapes(model)
        self.shapes: dict[str, list[int | None]] = {}
        self.elem: dict[str, int] = {}
        for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
            self.shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
            self.elem[vi.name] = vi.type.tensor_type.elem_type
        self.ints: dict[str, str] = {}  # integer tensors of the float graph (shape arithmetic) -> program name
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.qt: dict[str, QT] = {}
        self.steps: list[Step] = []
        self._ids = 0
        self._cache8: dict[str, QT] = {}

    # ---------------------------------------------------------------- helpers
    def fail(self, node: onnx.NodeProto, why: str) -> IntegerOnlyError:
        return IntegerOnlyError(f"{self.model_name}: no integer-only rule for {node.op_type} node "
                                f"'{node.name or node.output[0]}' ({why})")

    def fresh(self, hint: str) -> str:
        self._ids += 1
        return f"{hint}_{self._ids}"

    def emit(self, kernel: Kernel, inputs: list[str], source: str, n_out: int = 1) -> list[str]:
        outs = [self.fresh(kernel.kind) for _ in range(n_out)]
        self.steps.append(Step(kernel, inputs, outs, source))
        return outs

    def amax(self, name: str) -> float:
        v = float(self.absmax.get(name, 0.0))
        return v if v > 0 and math.isfinite(v) else 1e-6

    def act_scale(self, fp: str) -> float:
        """16-bit activation scale: the calibrated range times ACT_HEADROOM, so images beyond the
        calibration set's range are not clipped (two of the 16 bits buy that)."""
        return self.amax(fp) * ACT_HEADROOM / ACT_MAX

    def rescale(self, q: QT, scale: float, lo: int | None, hi: int | None, source: str) -> QT:
        """``q`` at a new per-tensor ``scale`` (dyadic requantization), clipped to ``[lo, hi]``."""
        ratio = q.scale / scale
        m, k = dyadic(ratio, q.bound)
        (out,) = self.emit(Requant(m, k, lo, hi), [q.name], source)
        bound = int(math.ceil(q.bound * float(np.max(ratio)))) + 1
        if hi is not None:
            bound = min(bound, max(abs(hi), abs(lo if lo is not None else 0)))
        return QT(out, np.asarray(scale, np.float64), bound, unsigned=q.unsigned)

    def act(self, fp: str, source: str) -> QT:
        """Tensor ``fp`` as a 16-bit activation with a per-tensor scale."""
        q = self.qt[fp]
        if not q.acc and q.scalar and q.bound <= ACT_MAX + 1:
            return q
        r = self.rescale(q, self.act_scale(fp), -ACT_MAX, ACT_MAX, source)
        self.qt[fp] = r
        return r

    def lin_input(self, fp: str, source: str, wide: bool = False) -> QT:
        """Tensor ``fp`` as a linear-op operand: int8, uint8 when non-negative, or 16-bit when ``wide``."""
        q = self.qt[fp]
        if q.scalar and not q.acc and (q.bound <= LIN_MAX + 1 or (q.unsigned and q.bound <= 255)):
            return q
        if wide:
            return self.act(fp, source)
        if fp not in self._cache8:
            if q.unsigned:
                self._cache8[fp] = replace(self.rescale(q, self.amax(fp) / 255, 0, 255, source), unsigned=True)
            else:
                self._cache8[fp] = self.rescale(q, self.amax(fp) / LIN_MAX, -LIN_MAX, LIN_MAX, source)
        return self._cache8[fp]

    @staticmethod
    def _is_wide(q: QT) -> bool:
        return q.bound > (255 if q.unsigned else LIN_MAX + 1)

    @staticmethod
    def weight_int8(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """Symmetric per-channel int8 weights along ``axis`` and their scales."""
        red = tuple(i for i in range(w.ndim) if i != axis)
        amax = np.max(np.abs(w.astype(np.float64)), axis=red, keepdims=True)
        scale = np.where(amax > 0, amax / LIN_MAX, 1.0)
        return np.clip(np.round(w / scale), -LIN_MAX, LIN_MAX).astype(np.int8), scale

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name) if name else None

    # ---------------------------------------------------------------- graph walk
    def convert(self) -> Program:
        g = self.model.graph
        if len(g.input) != 1 or len(g.output) != 1:
            raise IntegerOnlyError(f"{self.model_name}: integer-only conversion takes one input and one output")
        inp, outp = g.input[0].name, g.output[0].name
        in_scale = self.amax(inp) / LIN_MAX
        self.qt[inp] = QT("x_int8", np.asarray(in_scale), 128)
        gelu = self._gelu_chains()
        skip = {id(n) for chain in gelu.values() for n in chain[1:]}
        for node in g.node:
            if id(node) in skip:
                continue
            if node.op_type == "Constant" or (node.input and all((not i) or i in self.consts for i in node.input)):
                self._fold(node)
                continue
            if id(node) in gelu:
                self._gelu(node, gelu[id(node)])
                continue
            if self._shape_node(node):
                continue
            handler: Callable[[onnx.NodeProto], None] | None = getattr(self, f"_op_{node.op_type}", None)
            if handler is None:
                if node.op_type in DATA_OPS:
                    self._data(node)
                    continue
                raise self.fail(node, "this op type has no integer kernel")
            try:
                handler(node)
            except RangeError as e:
                raise self.fail(node, str(e)) from None
        q = self.qt[outp]
        # the int32 output scale follows from the proven bound: the logits can never saturate
        top = float(np.max(q.scale)) * q.bound
        out = self.rescale(q, top / (OUT_MAX - 1), -OUT_MAX, OUT_MAX, "output")
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                 for d in g.input[0].type.tensor_type.shape.dim]
        oshape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                  for d in g.output[0].type.tensor_type.shape.dim]
        return Program(inp, shape, in_scale, outp, top / (OUT_MAX - 1),  # type: ignore[misc]
                       self.steps, output_shape=oshape, output_int=out.name)

    def _fold(self, node: onnx.NodeProto) -> None:
        from onnx.reference import ReferenceEvaluator

        if node.op_type == "Constant":
            self.consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"]) if "value" in _attrs(node) else \
                np.asarray(list(_attrs(node).values())[0])
            return
        ins = [i for i in node.input if i]
        g = onnx.helper.make_graph([node], "f", [], [onnx.helper.make_tensor_value_info(o, 0, None) for o in node.output],
                                   [numpy_helper.from_array(self.consts[i], i) for i in ins])
        m = onnx.helper.make_model(g, opset_imports=self.model.opset_import)
        res = ReferenceEvaluator(m).run(None, {})
        for o, v in zip(node.output, res):
            self.consts[o] = np.asarray(v)

    # ---------------------------------------------------------------- linear ops
    def _op_Conv(self, node: onnx.NodeProto) -> None:
        a = _attrs(node)
        w = self.const(node.input[1])
        if w is None or w.ndim != 4:
            raise self.fail(node, "the weight must be a constant 4-D tensor")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise self.fail(node, "auto_pad is not supported")
        dilations = tuple(int(d) for d in a.get("dilations", [1, 1]))
        x = self.lin_input(node.input[0], node.name, node.name in self.wide)
        wq, ws = self.weight_int8(w, 0)
        scale = (x.scale * ws.reshape(-1)).reshape(-1, 1, 1)
        b = self.const(node.input[2]) if len(node.input) > 2 else None
        bq = np.round(b.astype(np.float64) / scale.reshape(-1)).astype(np.int64) if b is not None else None
        bound = x.bound * int(np.abs(wq.astype(np.int64)).reshape(wq.shape[0], -1).sum(1).max())
        bound += int(np.abs(bq).max()) if bq is not None else 0
        check_bound(bound, "conv accumulator")
        pads = a.get("pads", [0, 0, 0, 0])
        conv = ConvInteger if dilations == (1, 1) else partial(DilatedConvInteger, dilations=dilations)
        k = conv(wq, bq, tuple(a.get("strides", [1, 1])), (pads[0], pads[1], pads[2], pads[3]), int(a.get("group", 1)),
                 split=self._is_wide(x), x_unsigned=x.unsigned and not self._is_wide(x))
        (out,) = self.emit(k, [x.name], node.name)
        self.qt[node.output[0]] = QT(out, scale, bound, acc=True)

    def _linear(self, node: onnx.NodeProto, x_fp: str, w: np.ndarray, b: np.ndarray | None) -> None:
        if w.ndim != 2:
            raise self.fail(node, "a constant weight must be 2-D")
        x = self.lin_input(x_fp, node.name, node.name in self.wide)
        wq, ws = self.weight_int8(w, 1)  # (K, N): one scale per output column
        scale = x.scale * ws.reshape(-1)
        bq = np.round(np.broadcast_to(b, scale.shape).astype(np.float64) / scale).astype(np.int64) if b is not None else None
        bound = x.bound * int(np.abs(wq.astype(np.int64)).sum(0).max()) + (int(np.abs(bq).max()) if bq is not None else 0)
        check_bound(bound, "matmul accumulator")
        k = MatMulInteger(wq, bq, a_unsigned=x.unsigned and not self._is_wide(x), split=self._is_wide(x))
        (out,) = self.emit(k, [x.name], node.name)
        self.qt[node.output[0]] = QT(out, scale, bound, acc=True)

    def _op_MatMul(self, node: onnx.NodeProto) -> None:
        w = self.const(node.input[1])
        if w is not None and w.ndim == 2:
            return self._linear(node, node.input[0], w, None)
        if w is not None:
            return self._matmul_nd_const(node, w)
        if self.const(node.input[0]) is not None:
            raise self.fail(node, "a constant first operand is not supported")
        a = self.lin_input(node.input[0], node.name, node.name in self.wide)
        b = self.lin_input(node.input[1], node.name)
        kdim = (self.shapes.get(node.input[0]) or [None])[-1]
        if not kdim:
            raise self.fail(node, "the reduction dimension must be static")
        bound = a.bound * b.bound * kdim
        check_bound(bound, "matmul accumulator")
        k = MatMulInteger(None, None, a_unsigned=a.unsigned and not self._is_wide(a), b_unsigned=b.unsigned,
                          split=self._is_wide(a))
        (out,) = self.emit(k, [a.name, b.name], node.name)
        self.qt[node.output[0]] = QT(out, np.asarray(float(a.scale) * float(b.scale)), bound, acc=True)

    def _matmul_nd_const(self, node: onnx.NodeProto, w: np.ndarray) -> None:
        """``x @ C`` with a constant of rank > 2 (a folded input-independent branch): not a per-column
        weight, so C is int8 at one scale of its own."""
        x = self.lin_input(node.input[0], node.name, node.name in self.wide)
        amax = float(np.max(np.abs(w.astype(np.float64)))) if w.size else 0.0
        ws = amax / LIN_MAX if amax > 0 else 1.0
        wq = np.clip(np.round(w / ws), -LIN_MAX, LIN_MAX).astype(np.int8)
        bound = x.bound * int(np.abs(wq.astype(np.int64)).sum(-2).max())
        check_bound(bound, "matmul accumulator")
        k = MatMulInteger(wq, None, a_unsigned=x.unsigned and not self._is_wide(x), split=self._is_wide(x))
        (out,) = self.emit(k, [x.name], node.name)
        self.qt[node.output[0]] = QT(out, np.asarray(float(x.scale) * ws), bound, acc=True)

    def _op_Gemm(self, node: onnx.NodeProto) -> None:
        a = _attrs(node)
        w = self.const(node.input[1])
        if w is None or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0:
            raise self.fail(node, "only Gemm with a constant weight, transA=0, alpha=beta=1 is supported")
        w = w.T if a.get("transB", 0) else w
        b = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        self._linear(node, node.input[0], w, b)

    # ---------------------------------------------------------------- elementwise
    def _add_const(self, q: QT, c: np.ndarray, out_fp: str, source: str, sign: int = 1) -> QT:
        c = sign * c.astype(np.float64)
        if q.acc:  # fold into the accumulator at its own (exact) scale: a bias
            cq = np.round(c / q.scale).astype(np.int64)
            bound = q.bound + int(np.abs(cq).max())
            if bound < (1 << 40):
                (out,) = self.emit(Elementwise("add", cq), [q.name], source)
                return QT(out, q.scale, bound, acc=True)
        s = self.act_scale(out_fp)
        r = self.rescale(q, s, None, None, source)
        cq = np.clip(np.round(c / s), -(1 << 40), 1 << 40).astype(np.int64)
        (t,) = self.emit(Elementwise("add", cq), [r.name], source)
        (out,) = self.emit(Clip(-ACT_MAX, ACT_MAX), [t], source)
        return QT(out, np.asarray(s), ACT_MAX)

    def _addsub(self, node: onnx.NodeProto, sign: int) -> None:
        a_fp, b_fp = node.input[0], node.input[1]
        ca, cb = self.const(a_fp), self.const(b_fp)
        if cb is not None or ca is not None:
            if ca is not None and sign < 0:
                raise self.fail(node, "constant minus activation is not supported")
            q, c = (self.qt[a_fp], cb) if cb is not None else (self.qt[b_fp], ca)
            self.qt[node.output[0]] = self._add_const(q, c, node.output[0], node.name, sign)  # type: ignore[arg-type]
            return
        a, b = self.qt[a_fp], self.qt[b_fp]
        op = "add" if sign > 0 else "sub"
        if a.acc and b.acc and a.scale.shape == b.scale.shape and np.array_equal(a.scale, b.scale):
            (out,) = self.emit(Elementwise(op), [a.name, b.name], node.name)  # same scale: exact
            self.qt[node.output[0]] = QT(out, a.scale, a.bound + b.bound, acc=True)
            return
        s = self.act_scale(node.output[0])
        ra, rb = self.rescale(a, s, None, None, node.name), self.rescale(b, s, None, None, node.name)
        (t,) = self.emit(Elementwise(op), [ra.name, rb.name], node.name)
        (out,) = self.emit(Clip(-ACT_MAX, ACT_MAX), [t], node.name)
        self.qt[node.output[0]] = QT(out, np.asarray(s), ACT_MAX)

    def _op_Add(self, node: onnx.NodeProto) -> None:
        self._addsub(node, 1)

    def _op_Sub(self, node: onnx.NodeProto) -> None:
        self._addsub(node, -1)

    def _mul_const(self, q: QT, c: np.ndarray, fp: str, source: str) -> QT:
        c = c.astype(np.float64)
        if c.size == 1:
            v = float(c.reshape(-1)[0])
            if v > 0:
                return replace(q, scale=q.scale * v)
            if v < 0:
                (out,) = self.emit(Elementwise("mul", np.asarray(-1, np.int64)), [q.name], source)
                return QT(out, q.scale * -v, q.bound, acc=q.acc)
        x = self.act(fp, source) if fp else q
        amax = float(np.max(np.abs(c)))
        sc = amax / ACT_MAX if amax > 0 else 1.0
        cq = np.round(c / sc).astype(np.int64)
        (out,) = self.emit(Elementwise("mul", cq), [x.name], source)
        return QT(out, np.asarray(float(x.scale) * sc), x.bound * int(np.abs(cq).max()), acc=True)

    def _op_Mul(self, node: onnx.NodeProto) -> None:
        a_fp, b_fp = node.input[0], node.input[1]
        ca, cb = self.const(a_fp), self.const(b_fp)
        if ca is not None or cb is not None:
            fp, c = (a_fp, cb) if cb is not None else (b_fp, ca)
            self.qt[node.output[0]] = self._mul_const(self.qt[fp], c, fp, node.name)  # type: ignore[arg-type]
            return
        a, b = self.act(a_fp, node.name), self.act(b_fp, node.name)
        bound = a.bound * b.bound
        check_bound(bound, "product")
        (out,) = self.emit(Elementwise("mul"), [a.name, b.name], node.name)
        self.qt[node.output[0]] = QT(out, np.asarray(float(a.scale) * float(b.scale)), bound, acc=True,
                                     unsigned=a.unsigned and b.unsigned)

    def _op_Div(self, node: onnx.NodeProto) -> None:
        c = self.const(node.input[1])
        if c is None or c.size != 1 or float(c.reshape(-1)[0]) == 0:
            raise self.fail(node, "only division by a non-zero constant scalar is supported")
        self.qt[node.output[0]] = self._mul_const(self.qt[node.input[0]], 1.0 / c.astype(np.float64), "", node.name)

    def _op_Relu(self, node: onnx.NodeProto) -> None:
        q = self.qt[node.input[0]]  # a positive scale commutes with max(x, 0): works on accumulators too
        (out,) = self.emit(Clip(0, None), [q.name], node.name)
        self.qt[node.output[0]] = replace(q, name=out, unsigned=True)

    def _op_Clip(self, node: onnx.NodeProto) -> None:
        q = self.qt[node.input[0]]
        lo = self.const(node.input[1]) if len(node.input) > 1 else None
        hi = self.const(node.input[2]) if len(node.input) > 2 else None
        if (len(node.input) > 1 and node.input[1] and lo is None) or (len(node.input) > 2 and node.input[2] and hi is None):
            raise self.fail(node, "Clip bounds must be constants")
        loq = np.round(float(lo) / q.scale).astype(np.int64) if lo is not None else None
        hiq = np.round(float(hi) / q.scale).astype(np.int64) if hi is not None else None
        sq = lambda v: (int(v.reshape(-1)[0]) if v is not None and v.size == 1 else v)  # noqa: E731
        (out,) = self.emit(Clip(sq(loq), sq(hiq)), [q.name], node.name)
        bound = q.bound if hiq is None else min(q.bound, int(np.abs(hiq).max()))
        self.qt[node.output[0]] = replace(q, name=out, bound=max(bound, 0),
                                          unsigned=q.unsigned or (lo is not None and float(lo) >= 0))

    # ---------------------------------------------------------------- non-linear kernels
    def _op_Sigmoid(self, node: onnx.NodeProto) -> None:
        x = self.act(node.input[0], node.name)
        (out,) = self.emit(Sigmoid.for_scale(float(x.scale), x.bound), [x.name], node.name)
        self.qt[node.output[0]] = QT(out, np.asarray(2.0 ** -SIGMOID_P), 1 << SIGMOID_P, unsigned=True)

    def _op_Softmax(self, node: onnx.NodeProto) -> None:
        axis = int(_attrs(node).get("axis", -1))
        shape = self.shapes.get(node.input[0]) or []
        row = shape[axis] if shape else None
        if not row:
            raise self.fail(node, "the softmax axis must have a static length")
        x = self.act(node.input[0], node.name)
        q = self.softmax_q
        (out,) = self.emit(Shiftmax.for_scale(float(x.scale), x.bound, row, axis, q), [x.name], node.name)
        self.qt[node.output[0]] = QT(out, np.asarray(1.0 / q), q, unsigned=True)

    def _gelu_chains(self) -> dict[int, list[onnx.NodeProto]]:
        """``x * 0.5 * (1 + erf(x / sqrt 2))`` as exported from ``nn.GELU``: {id(Div): [Div, Erf, Add, Mul, Mul]}."""
        g = self.model.graph
        cons: dict[str, list[onnx.NodeProto]] = {}
        prod: dict[str, onnx.NodeProto] = {}
        for n in g.node:
            for i in n.input:
                cons.setdefault(i, []).append(n)
            for o in n.output:
                prod[o] = n
        init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        for n in g.node:
            if n.op_type == "Constant":
                a = _attrs(n)
                if "value" in a:
                    init[n.output[0]] = numpy_helper.to_array(a["value"])

        def cval(name: str) -> float | None:
            v = init.get(name)
            return float(v.reshape(-1)[0]) if v is not None and v.size == 1 else None

        chains: dict[int, list[onnx.NodeProto]] = {}
        for erf in (n for n in g.node if n.op_type == "Erf"):
            div = prod.get(erf.input[0])
            if div is None or div.op_type not in ("Div", "Mul"):
                continue
            c = cval(div.input[1])
            if c is None or not math.isclose(c if div.op_type == "Div" else 1 / c, math.sqrt(2), rel_tol=1e-4):
                continue
            x = div.input[0]
            nxt = cons.get(erf.output[0], [])
            if len(nxt) != 1 or nxt[0].op_type != "Add":
                continue
            add = nxt[0]
            if cval(add.input[1] if add.input[0] == erf.output[0] else add.input[0]) != 1.0:
                continue
            chain, cur, seen_x, seen_half = [div, erf, add], add, False, False
            for _ in range(2):
                nxt = cons.get(cur.output[0], [])
                if len(nxt) != 1 or nxt[0].op_type != "Mul":
                    break
                mul = nxt[0]
                other = mul.input[1] if mul.input[0] == cur.output[0] else mul.input[0]
                if other == x:
                    seen_x = True
                elif cval(other) is not None and math.isclose(cval(other), 0.5):  # type: ignore[arg-type]
                    seen_half = True
                else:
                    break
                chain.append(mul)
                cur = mul
            if seen_x and seen_half and len(chain) == 5:
                chains[id(div)] = chain
        # the 0.5 factor may also sit before the Add chain (x * 0.5 first): not produced by torch's exporter
        return chains

    def _gelu(self, div: onnx.NodeProto, chain: list[onnx.NodeProto]) -> None:
        x = self.act(div.input[0], div.name)
        k = Gelu.for_scale(float(x.scale), x.bound)
        (out,) = self.emit(k, [x.name], f"GELU({div.input[0]})")
        self.qt[chain[-1].output[0]] = QT(out, np.asarray(float(x.scale) * 2.0 ** -SIGMOID_P), x.bound << SIGMOID_P, acc=True)

    def _norm(self, node: onnx.NodeProto, axes: tuple[int, ...], eps: float, gamma: np.ndarray | None,
              beta: np.ndarray | None, shape: list[int]) -> None:
        x = self.act(node.input[0], node.name)
        n = int(np.prod([shape[a] for a in axes]))
        sg = 1.0
        gq = bq = None
        if gamma is not None:
            amax = float(np.max(np.abs(gamma)))
            sg = amax / ACT_MAX if amax > 0 else 1.0
            gq = np.round(gamma.astype(np.float64) / sg).astype(np.int64)
        out_scale = sg * 2.0 ** -NORM_G
        if beta is not None:
            bq = np.round(beta.astype(np.float64) / out_scale).astype(np.int64)
        k = Norm.for_input(axes, n, x.bound, float(x.scale), eps, gq, bq)
        # |x_i - mean| * 2**p < sqrt(n) * (std_p + 2): |z| <= 3 sqrt(n) 2**G + 1 (see tests)
        zb = 3 * math.isqrt(n - 1 if n > 1 else 1) * (1 << NORM_G) + 3 * (1 << NORM_G) + 1
        bound = zb * (int(np.abs(gq).max()) if gq is not None else 1) + (int(np.abs(bq).max()) if bq is not None else 0)
        check_bound(bound, "norm output")
        (out,) = self.emit(k, [x.name], node.name)
        self.qt[node.output[0]] = QT(out, np.asarray(out_scale), bound, acc=True)

    def _op_LayerNormalization(self, node: onnx.NodeProto) -> None:
        a = _attrs(node)
        shape = self.shapes.get(node.input[0])
        if not shape or any(d is None for d in shape[1:]):
            raise self.fail(node, "the normalized dimensions must be static")
        rank = len(shape)
        axis = int(a.get("axis", -1)) % rank
        gamma = self.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        beta = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        self._norm(node, tuple(range(axis, rank)), float(a.get("epsilon", 1e-5)), gamma, beta, shape)  # type: ignore[arg-type]

    def _op_InstanceNormalization(self, node: onnx.NodeProto) -> None:
        shape = self.shapes.get(node.input[0])
        if not shape or any(d is None for d in shape[1:]):
            raise self.fail(node, "the normalized dimensions must be static")
        rank = len(shape)
        bshape = (-1,) + (1,) * (rank - 2)
        gamma = self.const(node.input[1]).reshape(bshape)  # type: ignore[union-attr]
        beta = self.const(node.input[2]).reshape(bshape)  # type: ignore[union-attr]
        if np.all(gamma == 1.0) and np.all(beta == 0.0):
            gamma = beta = None  # GroupNorm's export: the affine follows as Mul/Add
        self._norm(node, tuple(range(2, rank)), float(_attrs(node).get("epsilon", 1e-5)), gamma, beta, shape)  # type: ignore[arg-type]

    def _op_BatchNormalization(self, node: onnx.NodeProto) -> None:
        a = _attrs(node)
        sc, b, mean, var = (self.const(i) for i in node.input[1:5])
        if any(v is None for v in (sc, b, mean, var)):
            raise self.fail(node, "BatchNormalization parameters must be constants")
        shape = self.shapes.get(node.input[0]) or [0, 0, 0, 0]
        bshape = (-1,) + (1,) * (len(shape) - 2)
        mul = (sc / np.sqrt(var.astype(np.float64) + float(a.get("epsilon", 1e-5)))).reshape(bshape)  # type: ignore[union-attr]
        add = (b - mean * mul.reshape(-1)).reshape(bshape)  # type: ignore[operator]
        q = self._mul_const(self.qt[node.input[0]], mul, node.input[0], node.name)
        self.qt[node.output[0]] = self._add_const(q, add, node.output[0], node.name)

    def _reduce_mean(self, node: onnx.NodeProto, axes: tuple[int, ...], keepdims: bool) -> None:
        shape = self.shapes.get(node.input[0])
        if not shape or any(shape[a] is None for a in axes):
            raise self.fail(node, "the reduced dimensions must be static")
        n = int(np.prod([shape[a] for a in axes]))
        x = self.act(node.input[0], node.name)
        (out,) = self.emit(ReduceSum(axes, keepdims), [x.name], node.name)
        self.qt[node.output[0]] = QT(out, np.asarray(float(x.scale) / n), x.bound * n, acc=True, unsigned=x.unsigned)

    def _op_ReduceMean(self, node: onnx.NodeProto) -> None:
        a = _attrs(node)
        shape = self.shapes.get(node.input[0]) or []
        axes_c = self.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        axes = list(axes_c.reshape(-1)) if axes_c is not None else list(a.get("axes", range(len(shape))))
        self._reduce_mean(node, tuple(int(x) % len(shape) for x in axes), bool(a.get("keepdims", 1)))

    def _op_AveragePool(self, node: onnx.NodeProto) -> None:
        """Window sum (ConvInteger, all-ones depthwise) + a per-position dyadic division (:mod:`.pool`)."""
        a = _attrs(node)
        shape = self.shapes.get(node.input[0])
        if not shape or len(shape) != 4 or any(d is None for d in shape[1:]):
            raise self.fail(node, "the input must be 4-D with static channels, height and width")
        if int(a.get("ceil_mode", 0)) or any(d != 1 for d in a.get("dilations", [1, 1])) \
                or a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise self.fail(node, "ceil_mode, dilations and auto_pad are not supported")
        kernel = tuple(int(v) for v in a["kernel_shape"])
        strides = tuple(int(v) for v in a.get("strides", [1, 1]))
        pads = tuple(int(v) for v in a.get("pads", [0, 0, 0, 0]))
        x = self.lin_input(node.input[0], node.name, node.name in self.wide)
        wide = self._is_wide(x)
        window_sum, divide = average_pool_kernels(int(shape[1]), int(shape[2]), int(shape[3]), kernel, strides,  # type: ignore[arg-type]
                                                  pads, bool(a.get("count_include_pad", 0)), x.bound, wide,
                                                  x.unsigned and not wide)
        (s,) = self.emit(window_sum, [x.name], node.name)
        (out,) = self.emit(divide, [s], node.name)
        self.qt[node.output[0]] = QT(out, np.asarray(float(x.scale)), x.bound, unsigned=x.unsigned)

    def _op_GlobalAveragePool(self, node: onnx.NodeProto) -> None:
        shape = self.shapes.get(node.input[0]) or []
        self._reduce_mean(node, tuple(range(2, len(shape))), True)

    # ---------------------------------------------------------------- shape arithmetic
    def _shape_node(self, node: onnx.NodeProto) -> bool:
        """Nodes that compute integers already in the float graph (dynamic-batch shape arithmetic:
        Shape, Gather on a shape, Concat of dims, ...) are copied unchanged: their values do not
        depend on any scale. Returns False for every other node."""
        int_types = {onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.BOOL}
        if not all(self.elem.get(o) in int_types for o in node.output if o):
            return False
        is_shape = node.op_type in ("Shape", "Size") and node.input[0] in self.qt
        if not is_shape and not all((not i) or i in self.consts or i in self.ints for i in node.input):
            return False
        consts: dict[int, np.ndarray] = {}
        dyn: list[str] = []
        for i, name in enumerate(node.input):
            if not name:
                continue
            if name in self.consts:
                consts[i] = self.consts[name]
            else:
                dyn.append(self.qt[name].name if is_shape else self.ints[name])
        n_in = max((i for i, n in enumerate(node.input) if n), default=-1) + 1
        outs = self.emit(Passthrough(node.op_type, _attrs(node), n_in, consts, n_out=len(node.output)), dyn, node.name,
                         n_out=len(node.output))
        for o, name in zip(node.output, outs):
            self.ints[o] = name
        return True

    # ---------------------------------------------------------------- data movement
    def _data(self, node: onnx.NodeProto) -> None:
        a = _attrs(node)
        consts: dict[int, np.ndarray] = {}
        dyn: list[QT] = []
        if node.op_type == "Concat":
            s = self.act_scale(node.output[0])
            for i, name in enumerate(node.input):
                c = self.const(name)
                if c is not None:
                    consts[i] = np.clip(np.round(c.astype(np.float64) / s), -ACT_MAX, ACT_MAX).astype(np.int64)
                else:
                    q = self.qt[name]
                    if q.acc or not q.scalar or not math.isclose(float(q.scale), s, rel_tol=1e-12):
                        q = self.rescale(q, s, -ACT_MAX, ACT_MAX, node.name)
                    dyn.append(q)
            bound = max([q.bound for q in dyn] + [ACT_MAX if consts else 0])
            (out,) = self.emit(Passthrough("Concat", a, len(node.input), consts), [q.name for q in dyn], node.name)
            self.qt[node.output[0]] = QT(out, np.asarray(s), bound, unsigned=all(q.unsigned for q in dyn) and not consts)
            return
        extra: list[str] = []
        for i, name in enumerate(node.input):
            if not name:
                continue
            c = self.const(name)
            if i == 0:
                if c is not None:  # constant data moved by a dynamic shape (a class token expanded to the batch)
                    s = self.act_scale(node.output[0])
                    consts[0] = np.clip(np.round(c.astype(np.float64) / s), -ACT_MAX, ACT_MAX).astype(np.int64)
                    dyn.append(QT("", np.asarray(s), int(np.abs(consts[0]).max()) if consts[0].size else 0))
                    continue
                q = self.qt[name]
                if q.acc and not q.scalar:
                    q = self.act(name, node.name)
                dyn.append(q)
            elif c is None:
                if name not in self.ints:
                    raise self.fail(node, f"input {i} ({name}) must be a constant or an integer shape")
                extra.append(self.ints[name])
            elif node.op_type == "Pad" and i == 2:
                if float(c.reshape(-1)[0]) != 0.0:
                    raise self.fail(node, "only zero padding is supported")
                consts[i] = np.zeros((), np.int64)
            else:
                consts[i] = c
        if node.op_type == "Pad" and a.get("mode", b"constant") not in (b"constant", "constant"):
            raise self.fail(node, "only constant padding is supported")
        n_in = max(i for i, n in enumerate(node.input) if n) + 1
        q = dyn[0]
        outs = self.emit(Passthrough(node.op_type, a, n_in, consts, n_out=len(node.output)),
                         ([q.name] if q.name else []) + extra, node.name, n_out=len(node.output))
        for o, name in zip(node.output, outs):
            self.qt[o] = replace(q, name=name)
