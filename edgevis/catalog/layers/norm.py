"""Channels-first LayerNorm (``(B, C, H, W)``, normalized over C), as ConvNeXt,
InceptionNeXt and the MetaFormer baselines use it.

The official code computes it by hand (mean, variance, sqrt); here it is a
transpose, ``F.layer_norm`` and a transpose back, the same function to float
tolerance, so that the exported graph holds one ``LayerNormalization`` node that
ONNX Runtime, the TensorRT lint and the integer-only converter all know.
Parameters keep the official names (``weight``, ``bias``); ``bias=False`` gives
the MetaFormer baselines' ``LayerNormWithoutBias`` (no ``bias`` parameter).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6, bias: bool = True) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, (self.dim,), self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class LayerNormLast(nn.Module):
    """Channels-last LayerNorm with an optional bias (``nn.LayerNorm`` always has one)."""

    def __init__(self, dim: int, eps: float = 1e-6, bias: bool = True) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (self.dim,), self.weight, self.bias, self.eps)
