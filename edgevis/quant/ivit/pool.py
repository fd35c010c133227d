"""Integer average pooling (ONNX ``AveragePool``), ``count_include_pad`` either way.

Written from two existing kernels, so every face that runs a :class:`~.program.Program`
(the integer reference, the ONNX lowering, generated C) already computes it:

1. the window sum: a depthwise :class:`~.kernels.ConvInteger` with all-ones int8
   weights (int32 accumulation, exact);
2. the division by the number of pixels counted in each window: a
   :class:`~.kernels.Requant` whose dyadic multiplier varies by output position
   (``m[i, j] / 2**k[i, j] ~= 1 / count[i, j]``, shape ``(1, 1, Ho, Wo)``).

With ``count_include_pad=False`` the count is smaller at the borders (PoolFormer's
3x3 pooling averages 4 pixels in a corner, 6 on an edge, 9 inside). The result
keeps the input's scale: ``|y - sum / count| <= 1/2 + bound * 2**-29`` in units
of that scale (round half up, plus the dyadic approximation of ``1 / count``).
"""

from __future__ import annotations

import numpy as np

from .arith import dyadic
from .kernels import ConvInteger, Requant


def pool_counts(h: int, w: int, kernel: tuple[int, int], strides: tuple[int, int],
                pads: tuple[int, int, int, int], count_include_pad: bool) -> np.ndarray:
    """(Ho, Wo) int64: how many input pixels each output averages (padding counted or not)."""
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, strides, pads
    ho, wo = (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"a {kh}x{kw} window does not fit a {h}x{w} map")

    def axis(n: int, k: int, s: int, p0: int, p1: int, outs: int) -> np.ndarray:
        start = np.arange(outs) * s - p0
        if count_include_pad:  # ONNX counts the explicit pads, never beyond them
            return np.minimum(start + k, n + p1) - start
        return np.minimum(start + k, n) - np.maximum(start, 0)

    return (axis(h, kh, sh, pt, pb, ho)[:, None] * axis(w, kw, sw, pl, pr, wo)[None, :]).astype(np.int64)


def average_pool_kernels(channels: int, h: int, w: int, kernel: tuple[int, int], strides: tuple[int, int],
                         pads: tuple[int, int, int, int], count_include_pad: bool, in_bound: int,
                         split: bool = False, x_unsigned: bool = False) -> tuple[ConvInteger, Requant]:
    """The window sum and the per-position division; apply them in this order.

    ``in_bound`` bounds ``|x|``; the output is bounded by it too (an average of values within it).
    ``split`` / ``x_unsigned`` are the :class:`ConvInteger` options for 16-bit / uint8 inputs.
    """
    ones = np.ones((channels, 1, kernel[0], kernel[1]), np.int8)
    window_sum = ConvInteger(ones, None, strides, pads, channels, split=split, x_unsigned=x_unsigned)
    counts = pool_counts(h, w, kernel, strides, pads, count_include_pad)
    m, k = dyadic(1.0 / counts.astype(np.float64), in_bound * kernel[0] * kernel[1])
    shape = (1, 1) + counts.shape
    return window_sum, Requant(np.asarray(m, np.int64).reshape(shape), np.asarray(k, np.int64).reshape(shape))
