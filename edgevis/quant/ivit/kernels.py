"""Integer-only kernels, each with its exact integer reference and its ONNX lowering.

Every kernel is a small frozen object built once at conversion time (its integer
constants come from calibrated scales) with two methods that must agree bit for
bit: ``ref`` (numpy int64, floor semantics, no float) and ``lower`` (ONNX nodes on
int64 tensors). The float functions at the bottom are the third face: what each
kernel approximates, for error bounds.

The schemes follow I-ViT (Li & Gu, ICCV 2023) with these differences, each chosen
for post-training use where no fine-tune can absorb approximation error:

* ``exp``: I-ViT multiplies by log2(e) as ``x + x>>1 - x>>4`` (1.4375, -0.4 %) and
  uses ``2**-f ~= 1 - f/2`` on the fraction (up to 6 % off). Here the input
  scale and log2(e) fold into one dyadic multiplier chosen per layer from the
  calibrated scale, and ``2**f`` on ``[0, 1)`` is a cubic in fixed point through
  (0, 1) and (1, 2) (max relative error 1.4e-4, Horner form so every product
  stays below 2**34).
* Shiftmax: one integer division per row (the reciprocal of the sum), then a
  multiply and a rounding shift per element.
* LayerNorm / GroupNorm: the input lifted by p fraction bits (p chosen from the
  input bound so nothing overflows), the rounded mean, the variance and an exact
  digit-by-digit integer square root; I-ViT's Newton iteration starting at 2**16
  for 10 steps is wrong for small variances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from .arith import I64, RangeError, bits, check_bound, dyadic, isqrt, requant
from .lower import INT64, Builder

LOG2E = 1.0 / math.log(2.0)
F = 16  # fraction bits of the fixed-point exp; exp(0) == 2**F exactly
# 2**u on [0, 1) ~= 1 + C1 u + C2 u^2 + C3 u^3 in Q16, through (0, 1) and (1, 2)
C1 = round(0.69592847 * (1 << F))
C2 = round(0.22494631 * (1 << F))
C3 = (1 << F) - C1 - C2
ZMAX = F + 1  # 2**-ZMAX * 2**(F+1) < 1: below this the integer exp is exactly 0
SOFTMAX_K = 30  # fraction bits of the per-row reciprocal
SIGMOID_P = 15  # sigmoid output in Q15 (scale 2**-15)
GELU_ALPHA = 1.702  # I-ViT's GELU(x) ~= x * sigmoid(1.702 x)  (float face only, for comparison)
GELU_TANH = 2.0 * math.sqrt(2.0 / math.pi)  # GELU(x) ~= x * sigmoid(GELU_TANH * (x + GELU_CUBIC x**3))
GELU_CUBIC = 0.044715
NORM_G = 12  # fraction bits of the normalized value in LayerNorm / GroupNorm


def _i(v: Any) -> Any:
    return np.asarray(v, dtype=I64)


# ----------------------------------------------------------------------------- exp


@dataclass(frozen=True)
class Exp2:
    """``e = round(2**F * exp(t * s))`` for integer ``t <= 0`` with real scale ``s``; ``e(0) == 2**F``."""

    m: int
    k: int
    bound: int  # |t| <= bound

    @classmethod
    def for_scale(cls, scale: float, bound: int) -> "Exp2":
        m, k = dyadic(scale * LOG2E * (1 << F), bound)
        return cls(int(m), int(k), int(bound))

    def ref(self, t: np.ndarray) -> np.ndarray:
        z = np.maximum(requant(t, _i(self.m), _i(self.k)), -(ZMAX << F))
        q = z >> F  # integer part, <= 0
        r = z - (q << F)  # fraction in [0, 2**F)
        p = (C3 * r) >> F
        p = ((p + C2) * r) >> F
        p = ((p + C1) * r) >> F
        p = p + (1 << F)  # 2**(r / 2**F) in Q16, in [2**F, 2**(F+1))
        return p >> (-q)

    def lower(self, b: Builder, t: str) -> str:
        z = b.requant(t, _i(self.m), _i(self.k), lo=-(ZMAX << F))
        one = b.const(1 << F)
        q = b.floor_div(z, one)
        r = b.sub(z, b.mul(q, one))
        # r >= 0 and every coefficient > 0 from here on: Div truncation equals floor
        p = b.op("Div", [b.mul(r, b.const(C3)), one])
        p = b.op("Div", [b.mul(b.add(p, b.const(C2)), r), one])
        p = b.op("Div", [b.mul(b.add(p, b.const(C1)), r), one])
        p = b.add(p, one)
        return b.shift_right(p, b.op("Neg", [q]))


# ----------------------------------------------------------------------------- kernels


class Kernel:
    kind = "kernel"

    def ref(self, *xs: np.ndarray) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def lower(self, b: Builder, *names: str) -> Any:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class Requant(Kernel):
    """Dyadic rescale ``round(x * m / 2**k)``, per tensor or per channel (``m``, ``k`` broadcast)."""

    m: np.ndarray
    k: np.ndarray
    lo: int | None = None
    hi: int | None = None
    kind = "requant"

    def ref(self, x: np.ndarray) -> np.ndarray:
        return requant(x, self.m, self.k, self.lo, self.hi)

    def lower(self, b: Builder, x: str) -> str:
        return b.requant(x, self.m, self.k, self.lo, self.hi)


@dataclass(frozen=True, eq=False)
class Elementwise(Kernel):
    """``a (op) b`` for op in add/sub/mul/max/min; ``const`` replaces the second operand."""

    op: str
    const: np.ndarray | None = None
    kind = "elementwise"

    def ref(self, a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        y = self.const if self.const is not None else b
        f = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum, "min": np.minimum}[self.op]
        return f(a, y).astype(I64)

    def lower(self, bld: Builder, a: str, b: str | None = None) -> str:
        y = bld.const(self.const) if self.const is not None else b
        return bld.op(self.op.capitalize(), [a, y])  # type: ignore[list-item]


@dataclass(frozen=True, eq=False)
class Clip(Kernel):
    lo: Any = None
    hi: Any = None
    kind = "clip"

    def ref(self, x: np.ndarray) -> np.ndarray:
        y = x
        if self.lo is not None:
            y = np.maximum(y, self.lo)
        if self.hi is not None:
            y = np.minimum(y, self.hi)
        return y.astype(I64)

    def lower(self, b: Builder, x: str) -> str:
        return b.clip(x, self.lo, self.hi)


@dataclass(frozen=True, eq=False)
class ReduceSum(Kernel):
    axes: tuple[int, ...]
    keepdims: bool = True
    kind = "reduce_sum"

    def ref(self, x: np.ndarray) -> np.ndarray:
        return x.sum(axis=self.axes, keepdims=self.keepdims).astype(I64)

    def lower(self, b: Builder, x: str) -> str:
        return b.op("ReduceSum", [x, b.const(list(self.axes))], keepdims=int(self.keepdims))


@dataclass(frozen=True, eq=False)
class ConvInteger(Kernel):
    """int8 x int8 convolution with int32 accumulation (ONNX ``ConvInteger``), then the int bias."""

    w: np.ndarray  # int8 (O, C/group, kh, kw)
    bias: np.ndarray | None  # int64 (O,)
    strides: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    group: int
    split: bool = False  # 16-bit input: two int8 convolutions, hi and lo bytes
    x_unsigned: bool = False  # input in [0, 255] (after ReLU): uint8
    kind = "conv"

    def ref(self, x: np.ndarray) -> np.ndarray:
        n, c, h, wd = x.shape
        o, cg, kh, kw = self.w.shape
        pt, pl, pb, pr = self.pads
        sh, sw = self.strides
        xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
        ho, wo = (h + pt + pb - kh) // sh + 1, (wd + pl + pr - kw) // sw + 1
        g = self.group
        og = o // g
        w = self.w.astype(I64).reshape(g, og, cg, kh, kw)
        out = np.zeros((n, g, og, ho * wo), dtype=I64)
        for i in range(kh):
            for j in range(kw):
                tap = xp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw].reshape(n, g, cg, ho * wo)
                if cg == 1 and og == 1:  # depthwise: a multiply, not a matmul
                    out += w[None, :, :, 0, i, j, None] * tap
                else:
                    out += np.matmul(w[None, :, :, :, i, j], tap)
        out = out.reshape(n, o, ho, wo)
        if self.bias is not None:
            out = out + self.bias.reshape(1, o, 1, 1)
        return out

    def lower(self, b: Builder, x: str) -> str:
        w = b.const(self.w, np.int8, "w")
        y = b.int8_product(x, lambda xq: b.op("ConvInteger", [xq, w], kernel_shape=list(self.w.shape[2:]),
                                              strides=list(self.strides), pads=list(self.pads), group=self.group),
                           self.split, self.x_unsigned)
        if self.bias is not None:
            y = b.add(y, b.const(self.bias.reshape(-1, 1, 1), hint="bias"))
        return y


@dataclass(frozen=True, eq=False)
class MatMulInteger(Kernel):
    """``a @ b`` of int8/uint8 operands with int32 accumulation (ONNX ``MatMulInteger``).

    ``w`` (int8, K x N) is the constant second operand of a Linear; ``None`` multiplies
    two activations (attention). ``a_unsigned``/``b_unsigned``: operand is in [0, 255]
    (a softmax output) and is cast to uint8.
    """

    w: np.ndarray | None = None
    bias: np.ndarray | None = None
    a_unsigned: bool = False
    b_unsigned: bool = False
    split: bool = False  # 16-bit first operand: two int8 products, hi and lo bytes
    kind = "matmul"

    def ref(self, a: np.ndarray, bm: np.ndarray | None = None) -> np.ndarray:
        rhs = self.w.astype(I64) if self.w is not None else bm
        y = np.matmul(a, rhs)
        return y + self.bias if self.bias is not None else y

    def lower(self, b: Builder, a: str, bm: str | None = None) -> str:
        if self.w is not None:
            rhs = b.const(self.w, np.int8, "w")
        else:
            rhs = b.cast(bm, TensorProto.UINT8 if self.b_unsigned else TensorProto.INT8)  # type: ignore[arg-type]
        if self.b_unsigned:  # uint8 x uint8 and int8 x uint8 are exact on ONNX Runtime
            y = b.int8_product(a, lambda aq: b.op("MatMulInteger", [aq, rhs]), self.split, self.a_unsigned)
        else:  # uint8 x int8 is not (int16 pair saturation): see Builder.int8_product_signed
            y = b.int8_product_signed(a, lambda aq, zp: b.op("MatMulInteger", [aq, rhs] + ([zp] if zp else [])),
                                      self.split, self.a_unsigned)
        if self.bias is not None:
            y = b.add(y, b.const(self.bias, hint="bias"))
        return y


@dataclass(frozen=True, eq=False)
class Shiftmax(Kernel):
    """Integer softmax along ``axis``: output ``round(Q * softmax)`` in ``[0, Q]`` (scale ``1/Q``)."""

    exp: Exp2
    axis: int = -1
    q: int = 255
    kind = "shiftmax"

    @classmethod
    def for_scale(cls, scale: float, in_bound: int, row: int, axis: int = -1, q: int = 255) -> "Shiftmax":
        # the exp sum is at most row * 2**F (every element <= exp(0) == 2**F) and at least
        # 2**F (the row maximum); check both products it enters stay in range
        check_bound(float(row) * (1 << F), "softmax exp sum")
        check_bound(float(q) * (1 << SOFTMAX_K) * 2, "softmax normalizer product")
        return cls(Exp2.for_scale(scale, 2 * in_bound), axis, q)

    def ref(self, x: np.ndarray) -> np.ndarray:
        t = x - x.max(axis=self.axis, keepdims=True)
        e = self.exp.ref(t)
        s = e.sum(axis=self.axis, keepdims=True)
        r = (np.int64(self.q) << SOFTMAX_K) // s  # the one division per row
        return (e * r + (np.int64(1) << (SOFTMAX_K - 1))) >> SOFTMAX_K

    def lower(self, b: Builder, x: str) -> str:
        ax = b.const([self.axis])
        t = b.sub(x, b.op("ReduceMax", [x, ax], keepdims=1))
        e = self.exp.lower(b, t)
        s = b.op("ReduceSum", [e, ax], keepdims=1)
        r = b.op("Div", [b.const(np.int64(self.q) << SOFTMAX_K), s])  # both > 0: truncation is floor
        y = b.add(b.mul(e, r), b.const(np.int64(1) << (SOFTMAX_K - 1)))
        return b.op("Div", [y, b.const(np.int64(1) << SOFTMAX_K)])


@dataclass(frozen=True, eq=False)
class Sigmoid(Kernel):
    """Integer sigmoid in Q15 from the shift-exp: ``exp(-|x|)`` once, one division per element."""

    exp: Exp2
    kind = "sigmoid"

    @classmethod
    def for_scale(cls, scale: float, in_bound: int) -> "Sigmoid":
        return cls(Exp2.for_scale(scale, in_bound))

    def ref(self, x: np.ndarray) -> np.ndarray:
        e = self.exp.ref(-np.abs(x))
        num = np.where(x >= 0, np.int64(1) << F, e)
        den = (np.int64(1) << F) + e
        return ((num << SIGMOID_P) + (den >> 1)) // den

    def lower(self, b: Builder, x: str) -> str:
        e = self.exp.lower(b, b.op("Neg", [b.op("Abs", [x])]))
        one = b.const(1 << F)
        num = b.op("Where", [b.op("GreaterOrEqual", [x, b.const(0)]), one, e])
        den = b.add(one, e)
        y = b.add(b.mul(num, b.const(1 << SIGMOID_P)), b.op("Div", [den, b.const(2)]))
        return b.op("Div", [y, den])  # all non-negative: truncation is floor


@dataclass(frozen=True, eq=False)
class Gelu(Kernel):
    """ShiftGELU: ``x * sigmoid(z)`` with the shift-exp sigmoid; output scale ``s_x * 2**-15``.

    I-ViT takes ``z = 1.702 x``, whose error against the exact (erf) GELU reaches 0.02.
    Here ``z = 2 sqrt(2/pi) (x + 0.044715 x**3)`` (the tanh form: ``0.5 (1 + tanh(u)) ==
    sigmoid(2u)``), max error 5e-4, at the price of two integer multiplies:
    ``z = x * (2**16 + r)`` with ``r = round(0.044715 x**2 2**16)`` by one dyadic multiplier.
    """

    cm: int  # r = (x*x * cm) >> ck  ==  0.044715 * (s x)**2 * 2**16
    ck: int
    sig: Sigmoid
    kind = "gelu"

    @classmethod
    def for_scale(cls, scale: float, in_bound: int) -> "Gelu":
        sq_bound = in_bound * in_bound
        cm, ck = dyadic(GELU_CUBIC * scale * scale * (1 << 16), sq_bound)
        r_bound = int(math.ceil(GELU_CUBIC * (scale * in_bound) ** 2 * (1 << 16))) + 1
        z_bound = in_bound * ((1 << 16) + r_bound)
        check_bound(float(z_bound), "GELU argument")
        return cls(int(cm), int(ck), Sigmoid.for_scale(scale * 2.0 ** -16 * GELU_TANH, z_bound))

    def ref(self, x: np.ndarray) -> np.ndarray:
        r = requant(x * x, _i(self.cm), _i(self.ck))
        z = x * ((1 << 16) + r)
        return x * self.sig.ref(z)

    def lower(self, b: Builder, x: str) -> str:
        r = b.requant(b.mul(x, x), _i(self.cm), _i(self.ck))
        z = b.mul(x, b.add(r, b.const(1 << 16)))
        return b.mul(x, self.sig.lower(b, z))


@dataclass(frozen=True, eq=False)
class Norm(Kernel):
    """Integer LayerNorm / GroupNorm core over ``axes``: ``round(2**G (x - mean) / std)``, then ``* gamma + beta``.

    ``x`` is lifted by ``p`` fraction bits first (``p`` as large as the input bound allows
    without overflow), so the rounded mean, the variance ``floor(sum(y**2) / n)`` and its
    exact integer square root ``floor(2**p std)`` all keep ``p`` extra bits: a row whose
    values span only a few units normalizes as precisely as a wide one.
    """

    axes: tuple[int, ...]
    n: int
    p: int
    eps_q: int
    steps: int
    gamma: np.ndarray | None = None  # int64, broadcast to the output
    beta: np.ndarray | None = None
    kind = "norm"

    @classmethod
    def for_input(cls, axes: tuple[int, ...], n: int, in_bound: int, scale: float, eps: float,
                  gamma: np.ndarray | None = None, beta: np.ndarray | None = None) -> "Norm":
        y_bound = 2 * in_bound  # |x - mean| before lifting
        p = max(0, min((61 - bits(n * y_bound * y_bound)) // 2, 61 - bits(y_bound) - NORM_G - 2))
        eps_q = int(round(eps * 4.0 ** p / (scale * scale)))
        ss_bound = n * (y_bound << p) ** 2
        var_bound = ss_bound // n + eps_q
        check_bound(float(ss_bound), "norm sum of squares")
        check_bound(float(var_bound), "norm variance + eps")
        steps = (bits(var_bound) + 1) // 2
        return cls(tuple(axes), int(n), int(p), eps_q, steps, gamma, beta)

    def ref(self, x: np.ndarray) -> np.ndarray:
        n = np.int64(self.n)
        s = x.sum(axis=self.axes, keepdims=True) << self.p
        y = (x << self.p) - (2 * s + n) // (2 * n)  # x - round(mean), both with p fraction bits
        ss = (y * y).sum(axis=self.axes, keepdims=True)
        var = ss // n + self.eps_q
        std = np.maximum(isqrt(var, self.steps), 1)  # floor(2**p std), at least one unit
        z = ((y << (NORM_G + 1)) + std) // (2 * std)
        if self.gamma is not None:
            z = z * self.gamma
        if self.beta is not None:
            z = z + self.beta
        return z

    def lower(self, b: Builder, x: str) -> str:
        ax = b.const(list(self.axes))
        n = self.n
        lift = b.const(np.int64(1) << self.p)
        s = b.mul(b.op("ReduceSum", [x, ax], keepdims=1), lift)
        mean = b.floor_div(b.add(b.mul(s, b.const(2)), b.const(n)), b.const(2 * n))
        y = b.sub(b.mul(x, lift), mean)
        ss = b.op("ReduceSum", [b.mul(y, y), ax], keepdims=1)
        var = b.add(b.op("Div", [ss, b.const(n)]), b.const(self.eps_q))  # ss >= 0: truncation is floor
        std = b.op("Max", [b.isqrt(var, self.steps), b.const(1)])
        z = b.floor_div(b.add(b.mul(y, b.const(np.int64(1) << (NORM_G + 1))), std), b.mul(std, b.const(2)))
        if self.gamma is not None:
            z = b.mul(z, b.const(self.gamma, hint="gamma"))
        if self.beta is not None:
            z = b.add(z, b.const(self.beta, hint="beta"))
        return z


@dataclass(frozen=True, eq=False)
class Passthrough(Kernel):
    """A data-movement node (Reshape, Transpose, Gather, Slice, ...) copied as is: no arithmetic.

    ``consts`` holds its constant integer inputs (shapes, indices, pads) by input position.
    The reference runs the node with ONNX's own reference implementation.
    """

    op_type: str
    attrs: dict[str, Any]
    n_inputs: int
    consts: dict[int, np.ndarray]
    n_out: int = 1
    _session: list = field(default_factory=list)
    kind = "data"

    def ref(self, *xs: np.ndarray) -> Any:
        from onnx.reference import ReferenceEvaluator

        if not self._session:
            ins = [f"i{i}" for i in range(self.n_inputs)]
            outs = [f"o{i}" for i in range(self.n_out)]
            node = helper.make_node(self.op_type, ins, outs, **self.attrs)
            inits = [onnx.numpy_helper.from_array(v, f"i{i}") for i, v in self.consts.items()]
            vis = [helper.make_tensor_value_info(f"i{i}", INT64, None) for i in range(self.n_inputs) if i not in self.consts]
            g = helper.make_graph([node], "p", vis, [helper.make_tensor_value_info(o, INT64, None) for o in outs], inits)
            self._session.append(ReferenceEvaluator(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])))
        dyn = [i for i in range(self.n_inputs) if i not in self.consts]
        res = self._session[0].run(None, {f"i{i}": x for i, x in zip(dyn, xs)})
        res = [np.asarray(r, dtype=I64) for r in res]
        return res[0] if self.n_out == 1 else tuple(res)

    def lower(self, b: Builder, *names: str) -> Any:
        it = iter(names)
        ins = [b.const(self.consts[i], self.consts[i].dtype.type) if i in self.consts else next(it) for i in range(self.n_inputs)]
        if self.n_out == 1:
            return b.op(self.op_type, ins, hint=self.op_type.lower(), **self.attrs)
        return b.ops(self.op_type, ins, self.n_out, **self.attrs)


# ----------------------------------------------------------------------------- float faces


def float_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def float_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def float_gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, what the float model computes."""
    from math import erf, sqrt

    return x * 0.5 * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))


def float_gelu_ivit(x: np.ndarray) -> np.ndarray:
    """I-ViT's ShiftGELU target ``x * sigmoid(1.702 x)`` (its error against :func:`float_gelu` is the form's own)."""
    return x * float_sigmoid(GELU_ALPHA * x)


def float_norm(x: np.ndarray, axes: tuple[int, ...], eps: float) -> np.ndarray:
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    return (x - mu) / np.sqrt(var + eps)


__all__ = ["Exp2", "Requant", "Elementwise", "Clip", "ReduceSum", "ConvInteger", "MatMulInteger", "Shiftmax",
           "Sigmoid", "Gelu", "Norm", "Passthrough", "RangeError", "F", "SIGMOID_P", "NORM_G", "GELU_ALPHA",
           "float_softmax", "float_sigmoid", "float_gelu", "float_gelu_ivit", "float_norm"]
