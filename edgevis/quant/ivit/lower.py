"""ONNX lowering of the integer primitives, with ONNX's own integer semantics.

Written against what ONNX (and ONNX Runtime's CPU kernels) define, not against
numpy: integer ``Div`` truncates toward zero, ``Mod`` with ``fmod=0`` takes the
sign of the divisor, ``BitShift`` exists only for unsigned types. Floor division
is therefore ``(a - Mod(a, d)) / d`` (exact for every sign), and a shift by a
per-element amount runs on ``uint64`` after proving the value non-negative.
Every tensor between the input ``QuantizeLinear`` and the output
``DequantizeLinear`` is an integer; :mod:`.check` proves it on the finished file.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INT64 = TensorProto.INT64


class Builder:
    """Collects nodes and integer initializers with unique names."""

    def __init__(self, prefix: str = "iv") -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._ids = itertools.count()
        self._consts: dict[tuple[str, tuple[int, ...], bytes], str] = {}
        self.prefix = prefix

    def name(self, hint: str = "t") -> str:
        return f"{self.prefix}_{hint}_{next(self._ids)}"

    def const(self, value: np.ndarray | int, dtype: type = np.int64, hint: str = "c") -> str:
        arr = np.asarray(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            name = self.name(hint)
            self.inits.append(numpy_helper.from_array(arr, name))
            self._consts[key] = name
        return self._consts[key]

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, n_out: int = 1, **attrs) -> str:
        outs = [self.name(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name("n_" + op_type), **attrs))
        return outs[0] if n_out == 1 else outs  # type: ignore[return-value]

    def ops(self, op_type: str, inputs: list[str], n_out: int, **attrs) -> list[str]:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name("n_" + op_type), **attrs))
        return outs

    # ---- arithmetic on int64 tensors -------------------------------------------------
    def add(self, a: str, b: str) -> str:
        return self.op("Add", [a, b])

    def sub(self, a: str, b: str) -> str:
        return self.op("Sub", [a, b])

    def mul(self, a: str, b: str) -> str:
        return self.op("Mul", [a, b])

    def floor_div(self, a: str, d: str) -> str:
        """``floor(a / d)`` for ``d > 0`` and any sign of ``a`` (``Div`` alone truncates)."""
        return self.op("Div", [self.sub(a, self.op("Mod", [a, d], fmod=0)), d])

    def clip(self, x: str, lo: int | np.ndarray | None, hi: int | np.ndarray | None) -> str:
        if lo is None and hi is None:
            return x
        scalar = (lo is None or np.ndim(lo) == 0) and (hi is None or np.ndim(hi) == 0)
        if scalar:
            return self.op("Clip", [x, self.const(lo) if lo is not None else "", self.const(hi) if hi is not None else ""])
        y = x  # per-channel bounds: Clip takes scalars only
        if lo is not None:
            y = self.op("Max", [y, self.const(lo)])
        if hi is not None:
            y = self.op("Min", [y, self.const(hi)])
        return y

    def requant(self, x: str, m: np.ndarray, k: np.ndarray, lo: int | None = None, hi: int | None = None) -> str:
        m, k = np.asarray(m, np.int64), np.asarray(k, np.int64)
        y = self.add(self.mul(x, self.const(m)), self.const(np.int64(1) << (k - 1)))
        return self.clip(self.floor_div(y, self.const(np.int64(1) << k)), lo, hi)

    def shift_right(self, x: str, s: str) -> str:
        """``x >> s`` per element, for ``x >= 0`` and ``0 <= s < 64`` (BitShift is unsigned-only)."""
        u = self.op("BitShift", [self.op("Cast", [x], to=TensorProto.UINT64),
                                 self.op("Cast", [s], to=TensorProto.UINT64)], direction="RIGHT")
        return self.op("Cast", [u], to=INT64)

    def isqrt(self, n: str, steps: int) -> str:
        """Digit-by-digit ``floor(sqrt(n))``, unrolled: the same steps as :func:`.arith.isqrt`."""
        x, r = n, None
        zero, two = self.const(0), self.const(2)
        for i in range(steps):
            b = np.int64(1) << (2 * (steps - 1 - i))
            bc = self.const(b)
            t = bc if r is None else self.add(r, bc)
            ge = self.op("GreaterOrEqual", [x, t])
            x = self.op("Where", [ge, self.sub(x, t), x])
            half = zero if r is None else self.op("Div", [r, two])  # r >= 0: truncation is floor
            r = self.op("Where", [ge, self.add(half, bc), half])
        assert r is not None
        return r

    def split16(self, x: str) -> tuple[str, str]:
        """``x = 256 * hi + lo`` for ``|x| < 2**15``: hi in int8, lo in uint8 (two exact int8 products)."""
        c256 = self.const(256)
        hi = self.floor_div(x, c256)
        lo = self.sub(x, self.mul(hi, c256))
        return self.cast(hi, TensorProto.INT8), self.cast(lo, TensorProto.UINT8)

    def int8_product(self, x: str, product, split: bool, unsigned: bool) -> str:  # type: ignore[no-untyped-def]
        """``product(x)`` of an int8 (uint8 if ``unsigned``) operand, as int64; a 16-bit ``x`` (``split``)
        runs as ``256 * product(hi) + product(lo)``, exact because the product is linear in ``x``."""
        if split:
            hi, lo = self.split16(x)
            return self.add(self.mul(self.cast(product(hi), INT64), self.const(256)), self.cast(product(lo), INT64))
        return self.cast(product(self.cast(x, TensorProto.UINT8 if unsigned else TensorProto.INT8)), INT64)

    def int8_product_signed(self, x: str, product, split: bool, unsigned: bool) -> str:  # type: ignore[no-untyped-def]
        """:meth:`int8_product` for ``MatMulInteger`` against an int8 operand: every operand runs as int8.

        ONNX Runtime's uint8 x int8 ``MatMulInteger`` (MLAS on AVX2 without VNNI) adds products in
        pairs into int16 with saturation, so ``255 * 127 + 255 * 127`` comes out as 32767: not exact.
        int8 x int8 is. A uint8 operand ``v`` (the low byte of a 16-bit ``x``, or a non-negative input)
        therefore runs as the int8 ``v - 128`` with zero point -128, which ``MatMulInteger`` subtracts
        exactly. ``product(operand, zero_point)`` gets ``None`` for a plain int8 operand.
        """
        def shifted(v: str) -> str:
            zp = self.const(np.int8(-128), np.int8, "zp")
            return self.cast(product(self.cast(self.sub(v, self.const(128)), TensorProto.INT8), zp), INT64)

        if split:
            c256 = self.const(256)
            hi = self.floor_div(x, c256)
            lo = self.sub(x, self.mul(hi, c256))
            return self.add(self.mul(self.cast(product(self.cast(hi, TensorProto.INT8), None), INT64), c256), shifted(lo))
        if unsigned:
            return shifted(x)
        return self.cast(product(self.cast(x, TensorProto.INT8), None), INT64)

    def cast(self, x: str, to: int) -> str:
        return self.op("Cast", [x], to=to)
