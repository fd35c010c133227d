"""BatchNorm folding beyond ``conv -> bn``: a BatchNorm *before* a pointwise layer,
and every ``Conv2d, BatchNorm2d`` pair inside an ``nn.Sequential``.

Pre-norm blocks (``conv1x1(bn(x))``) fold exactly only when the layer after the norm
sees no padding (a 1x1 convolution or a Linear): with zero padding, the border pixels of
a KxK convolution would see the shift where the unfolded model sees a zero.
"""

from __future__ import annotations

import torch
from torch import nn

from .conv_bn import fuse_conv_bn


def bn_affine(bn: nn.BatchNorm2d | nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """``bn`` in eval mode as ``x * scale + shift`` per channel."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


@torch.no_grad()
def fold_bn_into_next(bn: nn.BatchNorm2d | nn.BatchNorm1d, layer: nn.Conv2d | nn.Linear) -> nn.Conv2d | nn.Linear:
    """A copy of ``layer`` (a 1x1 unpadded Conv2d or a Linear) equal to ``layer(bn(x))`` in eval mode."""
    if isinstance(layer, nn.Conv2d) and (layer.kernel_size != (1, 1) or layer.padding != (0, 0) or layer.groups != 1):
        raise ValueError("a BatchNorm before a convolution folds only into an unpadded 1x1, ungrouped convolution")
    scale, shift = bn_affine(bn)
    w = layer.weight.reshape(layer.weight.shape[0], -1)  # (out, in)
    bias = w @ shift
    if layer.bias is not None:
        bias = bias + layer.bias
    if isinstance(layer, nn.Conv2d):
        out: nn.Conv2d | nn.Linear = nn.Conv2d(layer.in_channels, layer.out_channels, 1, bias=True,
                                               device=w.device, dtype=w.dtype)
        out.weight.copy_(layer.weight * scale[None, :, None, None])
    else:
        out = nn.Linear(layer.in_features, layer.out_features, bias=True, device=w.device, dtype=w.dtype)
        out.weight.copy_(layer.weight * scale[None, :])
    assert out.bias is not None
    out.bias.copy_(bias)
    return out


@torch.no_grad()
def fold_sequential(seq: nn.Sequential) -> nn.Sequential:
    """``seq`` with every ``Conv2d`` directly followed by a ``BatchNorm2d`` replaced by the
    folded convolution and the BatchNorm by an ``Identity`` (indices, hence checkpoint
    names of the other members, stay where they were)."""
    mods = list(seq)
    for i in range(len(mods) - 1):
        if isinstance(mods[i], nn.Conv2d) and isinstance(mods[i + 1], nn.BatchNorm2d):
            mods[i], mods[i + 1] = fuse_conv_bn(mods[i], mods[i + 1]), nn.Identity()
    return nn.Sequential(*mods)
