"""Small-kernel aggregation (SKA) of LSNet in plain torch ops.

The official SKA is a CUDA-only Triton kernel, which neither runs on a CPU nor
exports to ONNX. This is the same computation written with slices, multiplies
and adds, so it traces to plain ONNX (Pad, Slice, Mul, Add) and runs anywhere.

Semantics of the official kernel, which this reproduces exactly:
``x`` is (B, C, H, W); ``w`` is (B, Cw, K*K, H, W) with ``C % Cw == 0``. Every
output pixel is a K x K depthwise convolution of ``x`` (zero padding) with a
kernel that differs per pixel; channel ``c`` uses the kernel of weight channel
``c % Cw`` — channels that share a kernel are interleaved (c, c + Cw, c + 2Cw,
...), not contiguous blocks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def ska(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    b, c, h, wd = x.shape
    cw, kk = int(w.shape[1]), int(w.shape[2])
    k = math.isqrt(kk)  # static: the kernel size is fixed by the weight layout
    if k * k != kk or c % cw:
        raise ValueError(f"SKA expects w of shape (B, C/g, K*K, H, W); got x {tuple(x.shape)}, w {tuple(w.shape)}")
    pad = (k - 1) // 2
    xp = F.pad(x, (pad, pad, pad, pad))
    # c = g * cw + j  ->  j = c % cw, so a (B, C/cw, cw, H, W) view lines every
    # channel up with its kernel, and the kernel broadcasts over the g axis.
    groups = c // cw
    out = None
    for kh in range(k):
        for kw in range(k):
            tap = xp[:, :, kh:kh + h, kw:kw + wd].reshape(b, groups, cw, h, wd)
            term = tap * w[:, None, :, kh * k + kw]
            out = term if out is None else out + term
    assert out is not None
    return out.reshape(b, c, h, wd)


def ska_reference(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Naive per-element loop in the official kernel's index arithmetic (for tests)."""
    n, ic, h, wd = x.shape
    wc = w.shape[1]
    ks = int(round(w.shape[2] ** 0.5))
    pad = (ks - 1) // 2
    out = torch.zeros_like(x)
    for ni in range(n):
        for ci in range(ic):
            for hi in range(h):
                for wi in range(wd):
                    acc = 0.0
                    for kh in range(ks):
                        hin = hi - pad + kh
                        for kw in range(ks):
                            win = wi - pad + kw
                            if 0 <= hin < h and 0 <= win < wd:
                                acc += float(x[ni, ci, hin, win]) * float(w[ni, ci % wc, kh * ks + kw, hi, wi])
                    out[ni, ci, hi, wi] = acc
    return out


class SKA(nn.Module):
    """Module wrapper with the official name (no parameters)."""

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return ska(x, w)
