"""MogaNet: "MogaNet: Multi-order Gated Aggregation Network" (Li et al., ICLR 2024).

Written from the paper and the official implementation (github Westlake-AI/MogaNet,
``models/moganet.py``): the same stem, stages, multi-order gated aggregation (three
dilated depthwise convolutions over channel splits 1:3:4, SiLU gating) and channel
aggregation FFN, with the official parameter names, so the published checkpoints
(``moganet_xtiny_sz224_8xbs128_ep300.pth.tar`` ..., state dict under ``state_dict``)
load with ``strict=True``::

    patch_embed1.projection.{0,1,3,4}      two 3x3 stride-2 conv + BN (GELU between)
    patch_embed{2,3,4}.projection / .norm  3x3 stride-2 conv + BN
    blocks{i}.{j}.norm1 / attn.proj_1 / attn.gate / attn.value.DW_conv{0,1,2} /
        attn.value.PW_conv / attn.proj_2 / attn.sigma.scale / norm2 / mlp.fc1 /
        mlp.dwconv / mlp.fc2 / mlp.decompose / mlp.sigma.scale / layer_scale_{1,2}
    norm{i} (BatchNorm after stage i), head

Note the spatial branch's shortcut: ``attn(x)`` adds its own *input* (the normalized x),
so the block computes ``x + ls1 * (proj_2(...) + norm1(x))``.

Deploy form: BatchNorms after convolutions fold into them; ``norm1`` folds into
``proj_1`` and ``norm2`` into ``fc1`` (1x1); ``layer_scale_1`` folds into ``proj_2`` and
``layer_scale_2`` into ``fc2``; the FFN's feature decomposition into ``fc2`` and a 1 -> C
conv (:meth:`ChannelAggregationFFN.fold_decompose`); the shortcut ``x + ls1 * norm1(x)`` becomes one per-channel
affine (a 1x1 depthwise conv); the last ``norm4`` folds through the average into the
head. ``norm1..3`` stay (a 3x3 padded conv follows them, which a norm cannot fold into).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers.bn_fold import bn_affine, fold_bn_into_next, fold_sequential
from .layers.conv_bn import fuse_conv_bn
from .registry import ModelInfo, register_model

__all__ = ["MogaNet"]

# --------------------------------------------------------------------------- blocks


class ElementScale(nn.Module):
    def __init__(self, dim: int, init_value: float = 0.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(init_value * torch.ones((1, dim, 1, 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class ChannelAggregationFFN(nn.Module):
    def __init__(self, dim: int, hidden: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.dwconv = nn.Conv2d(hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)
        self.decompose = nn.Conv2d(hidden, 1, 1)
        self.sigma: ElementScale | None = ElementScale(hidden, 1e-5)
        self.decompose_act = nn.GELU()
        self.decompose_out: nn.Conv2d | None = None  # deploy form (see fold_decompose)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.dwconv(self.fc1(x)))
        g = self.decompose_act(self.decompose(x))  # (B, 1, H, W)
        if self.decompose_out is not None:  # deploy form
            return self.fc2(x) + self.decompose_out(g)
        assert self.sigma is not None
        return self.fc2(x + self.sigma(x - g))

    @torch.no_grad()
    def fold_decompose(self) -> None:
        """Deploy form of the feature decomposition: ``fc2(x + s * (x - g))`` is
        ``fc2'(x) + u * g`` with ``fc2' = fc2 . diag(1 + s)`` and ``u = -W s`` (W: fc2's
        weight), so the Sub, Mul and Add on the widest tensor of the block (4-8x the
        block's width) become one 1 -> C 1x1 conv of ``g`` and an Add at the block's width."""
        if self.sigma is None:
            return
        s = self.sigma.scale.reshape(-1)
        w = self.fc2.weight[:, :, 0, 0]
        self.decompose_out = nn.Conv2d(1, w.shape[0], 1, bias=False)
        self.decompose_out.weight.copy_(-(w @ s).reshape(-1, 1, 1, 1))
        self.fc2.weight.mul_((1 + s).reshape(1, -1, 1, 1))
        self.sigma = None


class MultiOrderDWConv(nn.Module):
    """5x5 depthwise over all channels, then dilated 5x5 (d=2) and 7x7 (d=3) depthwise
    over the middle and last channel splits, concatenated and mixed by a 1x1 conv."""

    def __init__(self, dim: int, dilation: Sequence[int] = (1, 2, 3), split: Sequence[int] = (1, 3, 4)) -> None:
        super().__init__()
        if dim % sum(split):
            raise ValueError(f"MogaNet width {dim} is not a multiple of {sum(split)}")
        self.c1 = int(split[1] / sum(split) * dim)
        self.c2 = int(split[2] / sum(split) * dim)
        self.c0 = dim - self.c1 - self.c2
        self.dim = dim
        self.DW_conv0 = nn.Conv2d(dim, dim, 5, padding=(1 + 4 * dilation[0]) // 2, groups=dim, dilation=dilation[0])
        self.DW_conv1 = nn.Conv2d(self.c1, self.c1, 5, padding=(1 + 4 * dilation[1]) // 2, groups=self.c1,
                                  dilation=dilation[1])
        self.DW_conv2 = nn.Conv2d(self.c2, self.c2, 7, padding=(1 + 6 * dilation[2]) // 2, groups=self.c2,
                                  dilation=dilation[2])
        self.PW_conv = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0, x1, x2 = self.DW_conv0(x).split([self.c0, self.c1, self.c2], dim=1)
        return self.PW_conv(torch.cat([x0, self.DW_conv1(x1), self.DW_conv2(x2)], dim=1))


class MultiOrderGatedAggregation(nn.Module):
    def __init__(self, dim: int, dilation: Sequence[int] = (1, 2, 3), split: Sequence[int] = (1, 3, 4)) -> None:
        super().__init__()
        self.proj_1 = nn.Conv2d(dim, dim, 1)
        self.gate = nn.Conv2d(dim, dim, 1)
        self.value = MultiOrderDWConv(dim, dilation, split)
        self.proj_2 = nn.Conv2d(dim, dim, 1)
        self.act_value = nn.SiLU()
        self.act_gate = nn.SiLU()
        self.sigma = ElementScale(dim, 1e-5)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """Everything but the shortcut."""
        x = self.proj_1(x)
        x = self.act_value(x + self.sigma(x - F.adaptive_avg_pool2d(x, 1)))
        return self.proj_2(self.act_gate(self.gate(x)) * self.act_gate(self.value(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch(x) + x


class MogaBlock(nn.Module):
    def __init__(self, dim: int, ffn_ratio: float, init_value: float = 1e-5,
                 dilation: Sequence[int] = (1, 2, 3), split: Sequence[int] = (1, 3, 4)) -> None:
        super().__init__()
        self.norm1: nn.Module = nn.BatchNorm2d(dim)
        self.attn = MultiOrderGatedAggregation(dim, dilation, split)
        self.norm2: nn.Module = nn.BatchNorm2d(dim)
        self.mlp = ChannelAggregationFFN(dim, int(dim * ffn_ratio))
        self.layer_scale_1: nn.Parameter | None = nn.Parameter(init_value * torch.ones((1, dim, 1, 1)))
        self.layer_scale_2: nn.Parameter | None = nn.Parameter(init_value * torch.ones((1, dim, 1, 1)))
        self.shortcut: nn.Conv2d | None = None  # deploy form: x + ls1 * norm1(x) as one per-channel affine

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut is not None:  # deploy form
            x = self.shortcut(x) + self.attn.branch(x)
            return x + self.mlp(x)
        assert self.layer_scale_1 is not None and self.layer_scale_2 is not None
        x = x + self.layer_scale_1 * self.attn(self.norm1(x))
        return x + self.layer_scale_2 * self.mlp(self.norm2(x))

    @torch.no_grad()
    def fuse(self) -> "MogaBlock":
        if self.shortcut is not None or self.layer_scale_1 is None or self.layer_scale_2 is None:
            return self
        dim = self.attn.proj_1.in_channels
        ls1, ls2 = self.layer_scale_1.reshape(-1), self.layer_scale_2.reshape(-1)
        scale, shift = bn_affine(self.norm1)
        self.shortcut = nn.Conv2d(dim, dim, 1, groups=dim)
        self.shortcut.weight.copy_((1 + ls1 * scale).reshape(-1, 1, 1, 1))
        self.shortcut.bias.copy_(ls1 * shift)
        self.attn.proj_1 = fold_bn_into_next(self.norm1, self.attn.proj_1)  # type: ignore[assignment]
        self.mlp.fc1 = fold_bn_into_next(self.norm2, self.mlp.fc1)  # type: ignore[assignment]
        for layer, ls in ((self.attn.proj_2, ls1), (self.mlp.fc2, ls2)):
            layer.weight.mul_(ls.reshape(-1, 1, 1, 1))
            layer.bias.mul_(ls)
        self.mlp.fold_decompose()  # after the layer scale went into fc2: the new conv carries it too
        self.norm1, self.norm2 = nn.Identity(), nn.Identity()
        self.layer_scale_1 = self.layer_scale_2 = None
        return self


class ConvPatchEmbed(nn.Module):
    def __init__(self, in_chs: int, dim: int, kernel_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.projection = nn.Conv2d(in_chs, dim, kernel_size, stride, kernel_size // 2)
        self.norm = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.projection(x))

    def fuse(self) -> nn.Conv2d:
        return fuse_conv_bn(self.projection, self.norm)


class StackConvPatchEmbed(nn.Module):
    def __init__(self, in_chs: int, dim: int, kernel_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        p = kernel_size // 2
        self.projection = nn.Sequential(
            nn.Conv2d(in_chs, dim // 2, kernel_size, stride, p), nn.BatchNorm2d(dim // 2), nn.GELU(),
            nn.Conv2d(dim // 2, dim, kernel_size, stride, p), nn.BatchNorm2d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(x)

    def fuse(self) -> nn.Sequential:
        return fold_sequential(self.projection)


# --------------------------------------------------------------------------- model


class MogaNet(nn.Module):
    def __init__(self, embed_dims: Sequence[int], depths: Sequence[int], ffn_ratios: Sequence[float],
                 num_classes: int = 1000, in_chans: int = 3, init_value: float = 1e-5, img_size: Any = None) -> None:
        super().__init__()
        del img_size  # fully convolutional
        self.num_classes = num_classes
        self.num_stages = len(depths)
        for i, depth in enumerate(depths):
            embed: nn.Module = (StackConvPatchEmbed(in_chans, embed_dims[0]) if i == 0
                                else ConvPatchEmbed(embed_dims[i - 1], embed_dims[i]))
            self.add_module(f"patch_embed{i + 1}", embed)
            self.add_module(f"blocks{i + 1}", nn.ModuleList(
                [MogaBlock(embed_dims[i], ffn_ratios[i], init_value) for _ in range(depth)]))
            self.add_module(f"norm{i + 1}", nn.BatchNorm2d(embed_dims[i]))
        self.head: nn.Module = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        if isinstance(self.head, nn.Linear):
            nn.init.trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"patch_embed{i}")(x)
            for blk in getattr(self, f"blocks{i}"):
                x = blk(x)
            x = getattr(self, f"norm{i}")(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x).mean((2, 3)))

    @torch.no_grad()
    def merge_heads(self) -> None:
        """Deploy step (called by ``reparameterize``): the last BatchNorm folds through the
        global average into the head."""
        last = f"norm{self.num_stages}"
        norm = getattr(self, last)
        if isinstance(norm, nn.BatchNorm2d) and isinstance(self.head, nn.Linear):
            scale, shift = bn_affine(norm)
            head = nn.Linear(self.head.in_features, self.head.out_features)
            head.weight.copy_(self.head.weight * scale[None, :])
            head.bias.copy_(self.head.bias + self.head.weight @ shift)
            self.head = head
            setattr(self, last, nn.Identity())


# --------------------------------------------------------------------------- registry

_PAPER = "Li et al. 2024, MogaNet: Multi-order Gated Aggregation Network (ICLR 2024, arXiv:2211.03295)"
_CONFIGS = {
    # name: (embed_dims, depths, ffn_ratios, params_m as deployed, gflops). Published (README / paper
    # Table): XT 2.97M 0.80G, T 5.20M 1.10G, S 25.3M 4.97G; deploy folding removes the BatchNorm
    # parameters of the blocks and patch embeddings, hence our counts.
    "moganet_xtiny": ((32, 64, 96, 192), (3, 3, 10, 2), (8, 8, 4, 4), 2.97, 0.80),
    "moganet_tiny": ((32, 64, 128, 256), (3, 3, 12, 2), (8, 8, 4, 4), 5.20, 1.10),
    "moganet_small": ((64, 128, 320, 512), (2, 3, 12, 2), (8, 8, 4, 4), 25.3, 4.97),
}


def _create_moganet(**kwargs: Any) -> MogaNet:
    return MogaNet(**kwargs)


for _name, (_dims, _depths, _ratios, _params, _gflops) in _CONFIGS.items():
    register_model(
        ModelInfo(
            name=_name, family="moganet", paper=_PAPER, params_m=_params, gflops=_gflops,
            interpolation="bicubic", crop_pct=0.9, classifier="head",
            weights_source=f"official checkpoint {_name}_sz224_8xbs128_ep300.pth.tar (github Westlake-AI/MogaNet releases)",
            kwargs={"embed_dims": _dims, "depths": _depths, "ffn_ratios": _ratios},
        ),
        _create_moganet,
    )
