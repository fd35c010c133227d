"""Conv + BatchNorm building blocks with deploy-time folding.

``Conv2d_BN`` and ``BN_Linear`` keep the submodule names of the LeViT / RepViT /
LSNet family (``c``/``bn`` and ``bn``/``l``) so official checkpoints load as-is.
``fuse_conv_bn`` and ``fuse_bn_linear`` are the plain folding math, shared by
every family.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A single Conv2d equal to ``bn(conv(x))`` in eval mode."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    weight = conv.weight * scale[:, None, None, None]
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    fused = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
        dilation=conv.dilation, groups=conv.groups, bias=True, padding_mode=conv.padding_mode,
        device=conv.weight.device, dtype=conv.weight.dtype,
    )
    fused.weight.copy_(weight)
    fused.bias.copy_(bias)
    return fused


@torch.no_grad()
def fuse_bn_linear(bn: nn.BatchNorm1d, linear: nn.Linear) -> nn.Linear:
    """A single Linear equal to ``linear(bn(x))`` in eval mode."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    fused = nn.Linear(linear.in_features, linear.out_features, bias=True,
                      device=linear.weight.device, dtype=linear.weight.dtype)
    fused.weight.copy_(linear.weight * scale[None, :])
    bias = linear.weight @ shift
    if linear.bias is not None:
        bias = bias + linear.bias
    fused.bias.copy_(bias)
    return fused


class Conv2d_BN(nn.Sequential):  # noqa: N801 - official name, kept for checkpoint compatibility
    """Conv2d (no bias) followed by BatchNorm2d, named ``c`` and ``bn``."""

    def __init__(self, in_ch: int, out_ch: int, ks: int = 1, stride: int = 1, pad: int = 0,
                 dilation: int = 1, groups: int = 1, bn_weight_init: float = 1.0) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(in_ch, out_ch, ks, stride, pad, dilation, groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(out_ch))
        nn.init.constant_(self.bn.weight, bn_weight_init)
        nn.init.constant_(self.bn.bias, 0)

    def fuse(self) -> nn.Conv2d:
        return fuse_conv_bn(self.c, self.bn)


class BN_Linear(nn.Sequential):  # noqa: N801 - official name
    """BatchNorm1d followed by Linear, named ``bn`` and ``l``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, std: float = 0.02) -> None:
        super().__init__()
        self.add_module("bn", nn.BatchNorm1d(in_features))
        self.add_module("l", nn.Linear(in_features, out_features, bias=bias))
        nn.init.trunc_normal_(self.l.weight, std=std)
        if bias:
            nn.init.constant_(self.l.bias, 0)

    def fuse(self) -> nn.Linear:
        return fuse_bn_linear(self.bn, self.l)
