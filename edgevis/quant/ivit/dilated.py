"""Integer-only dilated convolution (MogaNet's multi-order depthwise convolutions, d = 2, 3).

A convolution with dilation ``d`` is the same sum as one whose kernel has ``d - 1`` zeros
inserted between its taps, so the exact integer reference is :class:`ConvInteger`'s on the
zero-inserted kernel (int64, no float), while the ONNX lowering keeps the small kernel and
passes ``dilations`` to ``ConvInteger`` (ONNX Runtime computes only the real taps). Both
faces are proven to agree bit for bit in ``tests/quant/test_ivit_dilated.py``. The
quantization (per-channel int8 weights, accumulator bound) is the undilated conv's: zero
taps add nothing to ``sum |w|``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .arith import I64
from .kernels import ConvInteger
from .lower import Builder


def dilate_kernel(w: np.ndarray, dilations: tuple[int, int]) -> np.ndarray:
    """``w`` (O, C, kh, kw) with ``d - 1`` zeros between taps along each spatial axis."""
    dh, dw = dilations
    o, c, kh, kw = w.shape
    out = np.zeros((o, c, (kh - 1) * dh + 1, (kw - 1) * dw + 1), dtype=w.dtype)
    out[:, :, ::dh, ::dw] = w
    return out


@dataclass(frozen=True, eq=False)
class DilatedConvInteger(ConvInteger):
    dilations: tuple[int, int] = (1, 1)

    def ref(self, x: np.ndarray) -> np.ndarray:
        dense = ConvInteger(dilate_kernel(self.w, self.dilations), self.bias, self.strides, self.pads, self.group,
                            self.split, self.x_unsigned)
        return dense.ref(np.asarray(x, dtype=I64))

    def lower(self, b: Builder, x: str) -> str:
        w = b.const(self.w, np.int8, "w")
        y = b.int8_product(x, lambda xq: b.op("ConvInteger", [xq, w], kernel_shape=list(self.w.shape[2:]),
                                              strides=list(self.strides), pads=list(self.pads), group=self.group,
                                              dilations=list(self.dilations)),
                           self.split, self.x_unsigned)
        if self.bias is not None:
            y = b.add(y, b.const(self.bias.reshape(-1, 1, 1), hint="bias"))
        return y
