"""FocalNet: "Focal Modulation Networks" (Yang et al., NeurIPS 2022).

Written from the paper and the official implementation (github microsoft/FocalNet,
``classification/focalnet.py``): patch embedding, four stages of focal modulation
blocks (hierarchical depthwise context with GELU, gated aggregation plus a global
context, modulator ``h``), downsampling at the END of each stage, with the official
parameter names, so the published checkpoints (``focalnet_tiny_srf.pth`` ..., state dict
under ``model``) load with ``strict=True``::

    patch_embed.proj / patch_embed.norm
    layers.{i}.blocks.{j}.norm1 / modulation.f / modulation.h /
        modulation.focal_layers.{l}.0 / modulation.proj / norm2 / mlp.fc1 / mlp.fc2
    layers.{i}.downsample.proj / .norm      (i < 3: the stride-2 embedding after stage i)
    norm, head

timm's re-organised layout (``stem``, downsampling at the START of stage i+1, 1x1
convolutions where the official code has Linears, ``head.fc``) is converted by
:func:`remap_timm_state_dict`.

SRF ("small receptive field") variants have 2 focal levels (3x3, 5x5 kernels), LRF 3
(3x3, 5x5, 7x7). Features stay channels-last (B, H, W, C) between blocks, as the official
tokens; the depthwise context runs channels-first. Nothing folds: every norm is a
LayerNorm, and these variants have no layer scale.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import torch
from torch import nn

from .layers.mlp import Mlp
from .registry import ModelInfo, register_model
from .layers.init import trunc_normal_init

__all__ = ["FocalNet", "remap_timm_state_dict"]

# --------------------------------------------------------------------------- blocks


class FocalModulation(nn.Module):
    def __init__(self, dim: int, focal_window: int, focal_level: int, focal_factor: int = 2) -> None:
        super().__init__()
        self.dim = dim
        self.focal_level = focal_level
        self.f = nn.Linear(dim, 2 * dim + focal_level + 1)
        self.h = nn.Conv2d(dim, dim, 1)
        self.act = nn.GELU()
        self.proj = nn.Linear(dim, dim)
        self.focal_layers = nn.ModuleList()
        for k in range(focal_level):
            ks = focal_factor * k + focal_window
            self.focal_layers.append(
                nn.Sequential(nn.Conv2d(dim, dim, ks, groups=dim, padding=ks // 2, bias=False), nn.GELU()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, H, W, C)."""
        q, ctx, gates = self.f(x).permute(0, 3, 1, 2).split([self.dim, self.dim, self.focal_level + 1], dim=1)
        ctx_all = None
        for level, layer in enumerate(self.focal_layers):
            ctx = layer(ctx)
            term = ctx * gates[:, level:level + 1]
            ctx_all = term if ctx_all is None else ctx_all + term
        ctx_global = self.act(ctx.mean((2, 3), keepdim=True))
        ctx_all = ctx_global * gates[:, self.focal_level:] + (ctx_all if ctx_all is not None else 0)
        return self.proj((q * self.h(ctx_all)).permute(0, 2, 3, 1))


class FocalNetBlock(nn.Module):
    def __init__(self, dim: int, focal_level: int, focal_window: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.modulation = FocalModulation(dim, focal_window, focal_level)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.modulation(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch`` x ``patch`` conv, then LayerNorm; (B, C, H, W) -> (B, H', W', C')."""

    def __init__(self, patch: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch, patch)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class BasicLayer(nn.Module):
    def __init__(self, dim: int, out_dim: int | None, depth: int, focal_level: int, focal_window: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([FocalNetBlock(dim, focal_level, focal_window) for _ in range(depth)])
        self.downsample = PatchEmbed(2, dim, out_dim) if out_dim is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        if self.downsample is not None:
            x = self.downsample(x.permute(0, 3, 1, 2))
        return x


# --------------------------------------------------------------------------- model


class FocalNet(nn.Module):
    def __init__(self, depths: Sequence[int] = (2, 2, 6, 2), embed_dim: int = 96, focal_levels: Sequence[int] = (2, 2, 2, 2),
                 focal_windows: Sequence[int] = (3, 3, 3, 3), patch_size: int = 4, num_classes: int = 1000,
                 in_chans: int = 3, img_size: Any = None) -> None:
        super().__init__()
        n = len(depths)
        if img_size is not None:
            h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
            step = patch_size * 2 ** (n - 1)
            if h % step or w % step:
                # the official patch embeddings drop the remainder rows; a size they divide keeps every pixel
                raise ValueError(f"FocalNet needs an input size divisible by {step}")
        dims = [embed_dim * 2**i for i in range(n)]
        self.num_classes = num_classes
        self.patch_embed = PatchEmbed(patch_size, in_chans, dims[0])
        self.layers = nn.ModuleList([
            BasicLayer(dims[i], dims[i + 1] if i < n - 1 else None, depths[i], focal_levels[i], focal_windows[i])
            for i in range(n)
        ])
        self.norm = nn.LayerNorm(dims[-1])
        self.head: nn.Module = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        trunc_normal_init(self, (nn.Linear,))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x).mean((1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


_TIMM_LINEARS = re.compile(r"\.(modulation\.(f|proj)|mlp\.fc[12])\.weight$")


def remap_timm_state_dict(state_dict: dict[str, Any]) -> dict[str, Any]:
    """timm's FocalNet layout -> the official one (identity on an official checkpoint)."""
    if "stem.proj.weight" not in state_dict:
        return state_dict
    out: dict[str, Any] = {}
    for k, v in state_dict.items():
        k = re.sub(r"^stem\.", "patch_embed.", k)
        k = re.sub(r"^layers\.(\d+)\.downsample\.", lambda m: f"layers.{int(m.group(1)) - 1}.downsample.", k)
        k = re.sub(r"\.ls([12])\.gamma$", r".gamma_\1", k)
        k = re.sub(r"^head\.fc\.", "head.", k)
        if _TIMM_LINEARS.search(k) and v.ndim == 4:
            v = v.reshape(v.shape[0], v.shape[1])  # 1x1 conv -> Linear
        out[k] = v
    return out


# --------------------------------------------------------------------------- registry

_PAPER = "Yang et al. 2022, Focal Modulation Networks (NeurIPS 2022, arXiv:2203.11926)"
_CONFIGS = {
    # name: (depths, embed_dim, focal_level, params_m, gflops) - the official README's table
    "focalnet_tiny_srf": ((2, 2, 6, 2), 96, 2, 28.4, 4.4),
    "focalnet_tiny_lrf": ((2, 2, 6, 2), 96, 3, 28.6, 4.5),
    "focalnet_small_srf": ((2, 2, 18, 2), 96, 2, 49.9, 8.6),
    "focalnet_small_lrf": ((2, 2, 18, 2), 96, 3, 50.3, 8.7),
    "focalnet_base_srf": ((2, 2, 18, 2), 128, 2, 88.1, 15.3),
    "focalnet_base_lrf": ((2, 2, 18, 2), 128, 3, 88.7, 15.4),
}


def _create_focalnet(**kwargs: Any) -> FocalNet:
    return FocalNet(**kwargs)


for _name, (_depths, _dim, _level, _params, _gflops) in _CONFIGS.items():
    register_model(
        ModelInfo(
            name=_name, family="focalnet", paper=_PAPER, params_m=_params, gflops=_gflops,
            interpolation="bicubic", crop_pct=0.875, classifier="head",
            weights_source=f"official checkpoint {_name}.pth (github microsoft/FocalNet releases v1.0.0)",
            kwargs={"depths": _depths, "embed_dim": _dim, "focal_levels": (_level,) * 4, "focal_windows": (3, 3, 3, 3)},
        ),
        _create_focalnet,
        remap_state_dict=remap_timm_state_dict,
    )
