"""The weight initialisation the official ViT/ConvNet codebases share (timm's ``_init_weights``)."""

from __future__ import annotations

from torch import nn


def trunc_normal_init(model: nn.Module, types: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)) -> None:
    """Every submodule of ``types``: weights from a truncated normal (std 0.02), biases zero."""
    for m in model.modules():
        if isinstance(m, types):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
