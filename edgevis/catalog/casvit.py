"""CAS-ViT: "Convolutional Additive Self-attention Vision Transformers for Efficient
Mobile Applications" (Zhang et al., arXiv:2408.03703, 2024).

Written from the paper and the official implementation (github Tianfang-Zhang/CAS-ViT,
``classification/model/rcvit.py``, where the model is called RCViT): the same stem,
stages and additive token mixer, and the same parameter and buffer names, so the published
checkpoints (``rcvit_xs`` ... ``rcvit_t``, state dict under ``model``) load with
``strict=True``::

    patch_embed.{0,1,3,4}                 stem: conv/BN/ReLU, conv/BN/ReLU (stride 4)
    network.{0,2,4,6}.{j}                 AdditiveBlocks of stage 0..3
        local_perception.network.{0,1,2,4}  1x1 conv, BN, 3x3 depthwise, GELU, 1x1 conv
        norm1, attn.qkv, attn.oper_{q,k}.0.block.{0,1,3}, attn.oper_{q,k}.1.block.1,
        attn.dwc, attn.proj, norm2, mlp.fc1, mlp.fc2
    network.{1,3,5}.proj / .norm          3x3 stride-2 conv + BN between stages
    norm, head, dist_head

The official constructor builds a distillation head (``distillation=True``) and the
published parameter counts include it; the training script builds the model without.
Both checkpoint kinds load: one without ``dist_head`` gets ``head`` copied into it, which
computes exactly the same logits (inference averages the two heads).

Deploy form: every BatchNorm folds — after a convolution (stem, downsampling, local
integration, spatial operation), before a 1x1 convolution (``norm1`` into ``qkv``,
``norm2`` into ``fc1``), and the final ``norm`` through the global average into the
head, whose two halves are merged into one Linear.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from .layers.bn_fold import bn_affine, fold_bn_into_next, fold_sequential
from .layers.conv_bn import fuse_conv_bn
from .registry import ModelInfo, register_model
from .layers.init import trunc_normal_init

__all__ = ["CASViT", "remap_state_dict"]

# --------------------------------------------------------------------------- blocks


class Stem(nn.Sequential):
    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__(
            nn.Conv2d(in_chs, out_chs // 2, 3, 2, 1), nn.BatchNorm2d(out_chs // 2), nn.ReLU(),
            nn.Conv2d(out_chs // 2, out_chs, 3, 2, 1), nn.BatchNorm2d(out_chs), nn.ReLU(),
        )

    def fuse(self) -> nn.Sequential:
        return fold_sequential(self)


class Embedding(nn.Module):
    """Downsampling between stages: 3x3 stride-2 conv + BatchNorm."""

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, 3, 2, 1)
        self.norm = nn.BatchNorm2d(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x))

    def fuse(self) -> nn.Conv2d:
        return fuse_conv_bn(self.proj, self.norm)


class ConvMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SpatialOperation(nn.Module):
    """Per-pixel gate: depthwise 3x3, BN, ReLU, 1x1 to one channel, sigmoid."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1, groups=dim), nn.BatchNorm2d(dim), nn.ReLU(),
            nn.Conv2d(dim, 1, 1, 1, 0, bias=False), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.block(x)


class ChannelOperation(nn.Module):
    """Per-channel gate: global average, 1x1 conv, sigmoid."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Conv2d(dim, dim, 1, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.block(x)


class LocalIntegration(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.network = nn.Sequential(
            nn.Conv2d(dim, dim, 1), nn.BatchNorm2d(dim),
            nn.Conv2d(dim, dim, 3, 1, 1, groups=dim), nn.GELU(), nn.Conv2d(dim, dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


class AdditiveTokenMixer(nn.Module):
    """q and k gated spatially and per channel, summed, depthwise-convolved, times v."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.qkv = nn.Conv2d(dim, 3 * dim, 1, bias=False)
        self.oper_q = nn.Sequential(SpatialOperation(dim), ChannelOperation(dim))
        self.oper_k = nn.Sequential(SpatialOperation(dim), ChannelOperation(dim))
        self.dwc = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)
        self.proj = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).split([self.dim, self.dim, self.dim], dim=1)
        return self.proj(self.dwc(self.oper_q(q) + self.oper_k(k)) * v)


class AdditiveBlock(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.local_perception = LocalIntegration(dim)
        self.norm1: nn.Module = nn.BatchNorm2d(dim)
        self.attn = AdditiveTokenMixer(dim)
        self.norm2: nn.Module = nn.BatchNorm2d(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.local_perception(x)
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))

    @torch.no_grad()
    def fuse(self) -> "AdditiveBlock":
        """Every BatchNorm of the block folded into its neighbouring convolution (in place)."""
        if isinstance(self.norm1, nn.BatchNorm2d):
            self.local_perception.network = fold_sequential(self.local_perception.network)
            self.attn.qkv = fold_bn_into_next(self.norm1, self.attn.qkv)  # type: ignore[assignment]
            self.mlp.fc1 = fold_bn_into_next(self.norm2, self.mlp.fc1)  # type: ignore[assignment]
            self.norm1, self.norm2 = nn.Identity(), nn.Identity()
            for oper in (self.attn.oper_q, self.attn.oper_k):
                oper[0].block = fold_sequential(oper[0].block)
        return self


# --------------------------------------------------------------------------- model


class CASViT(nn.Module):
    def __init__(self, layers: Sequence[int], embed_dims: Sequence[int], mlp_ratio: float = 4.0,
                 num_classes: int = 1000, distillation: bool = True, img_size: Any = None) -> None:
        super().__init__()
        del img_size  # fully convolutional: any size the four stride-2 steps divide
        self.num_classes = num_classes
        self.patch_embed = Stem(3, embed_dims[0])
        network: list[nn.Module] = []
        for i, depth in enumerate(layers):
            network.append(nn.Sequential(*[AdditiveBlock(embed_dims[i], mlp_ratio) for _ in range(depth)]))
            if i < len(layers) - 1:
                network.append(Embedding(embed_dims[i], embed_dims[i + 1]))
        self.network = nn.ModuleList(network)
        self.norm: nn.Module = nn.BatchNorm2d(embed_dims[-1])
        self.head: nn.Module = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.dist = distillation
        if distillation:
            self.dist_head: nn.Module = nn.Linear(embed_dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        trunc_normal_init(self, (nn.Linear,))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for m in self.network:
            x = m(x)
        return self.norm(x).flatten(2).mean(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.forward_features(x)
        if self.dist:
            a, b = self.head(x), self.dist_head(x)
            # training returns both heads; inference averages them (official behaviour)
            return (a, b) if self.training else (a + b) / 2
        return self.head(x)

    @torch.no_grad()
    def merge_heads(self) -> None:
        """Deploy step after the blocks are folded (called by ``reparameterize``): the final
        BatchNorm folds through the global average into the head, and the averaged
        distillation heads become one Linear."""
        if not isinstance(self.head, nn.Linear):
            return
        if self.dist:
            merged = nn.Linear(self.head.in_features, self.head.out_features)
            merged.weight.copy_((self.head.weight + self.dist_head.weight) / 2)
            merged.bias.copy_((self.head.bias + self.dist_head.bias) / 2)
            self.head = merged
            del self.dist_head
            self.dist = False
        if isinstance(self.norm, nn.BatchNorm2d):
            scale, shift = bn_affine(self.norm)
            head = nn.Linear(self.head.in_features, self.head.out_features)
            head.weight.copy_(self.head.weight * scale[None, :])
            head.bias.copy_(self.head.bias + self.head.weight @ shift)
            self.head, self.norm = head, nn.Identity()


def remap_state_dict(state_dict: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of the training script's model (no ``dist_head``) for the official
    constructor's (with one): the copied head leaves the averaged logits unchanged."""
    sd = dict(state_dict)
    for p in ("weight", "bias"):
        if f"head.{p}" in sd and f"dist_head.{p}" not in sd:
            sd[f"dist_head.{p}"] = sd[f"head.{p}"]
    return sd


# --------------------------------------------------------------------------- registry

_PAPER = ("Zhang et al. 2024, CAS-ViT: Convolutional Additive Self-attention Vision Transformers "
          "for Efficient Mobile Applications (arXiv:2408.03703)")
_CONFIGS = {
    # name: (layers, embed_dims, params_m as deployed, gflops) - GFLOPs from the paper's Table 1.
    # The MODEL_ZOO counts (3.20 / 5.76 / 12.42 / 21.76 M) include the distillation head; the deployed
    # model (heads merged, BatchNorms folded) has one head fewer: 2.97 / 5.49 / 12.02 / 21.22 M.
    "casvit_xs": ((2, 2, 4, 2), (48, 56, 112, 220), 2.97, 0.56),
    "casvit_s": ((3, 3, 6, 3), (48, 64, 128, 256), 5.49, 0.93),
    "casvit_m": ((3, 3, 6, 3), (64, 96, 192, 384), 12.02, 1.89),
    "casvit_t": ((3, 3, 6, 3), (96, 128, 256, 512), 21.22, 3.60),
}


def _create_casvit(**kwargs: Any) -> CASViT:
    return CASViT(**kwargs)


for _name, (_layers, _dims, _params, _gflops) in _CONFIGS.items():
    register_model(
        ModelInfo(
            name=_name, family="casvit", paper=_PAPER, params_m=_params, gflops=_gflops,
            interpolation="bicubic", crop_pct=0.875, classifier="head",
            weights_source=f"official checkpoint rcvit_{_name.split('_')[1]} (github Tianfang-Zhang/CAS-ViT, MODEL_ZOO.md)",
            kwargs={"layers": _layers, "embed_dims": _dims},
        ),
        _create_casvit,
        remap_state_dict=remap_state_dict,
    )
