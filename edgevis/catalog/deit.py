"""DeiT: data-efficient image transformers (plain ViT classifier).

Touvron et al. 2021, "Training data-efficient image transformers & distillation
through attention" (arXiv:2012.12877). Official code and weights:
https://github.com/facebookresearch/deit

Parameter names and shapes equal the official checkpoints
(``deit_*_patch16_224-*.pth``, state dict under ``model``), which are also the
names timm's ``VisionTransformer`` uses, so both load without remapping::

    cls_token (1, 1, D)            pos_embed (1, 1 + N, D)
    patch_embed.proj.{weight,bias} blocks.{i}.norm1 / attn.qkv / attn.proj /
    norm2 / mlp.fc1 / mlp.fc2      norm            head

Attention is written as explicit MatMul + Softmax (no fused SDPA) so that the
exported ONNX graph shows the ops later quantization passes look for.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers.mlp import Mlp
from .layers.patch_embed import PatchEmbed
from .registry import IMAGENET_MEAN, IMAGENET_STD, ModelInfo, register_model

_PAPER = "Touvron et al. 2021, Training data-efficient image transformers & distillation through attention (arXiv:2012.12877)"


def _pair(v: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    return (int(v[0]), int(v[1]))


class Attention(nn.Module):
    """Multi-head self-attention with explicit ``softmax(q k^T * scale) v``."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, n, c = x.shape
        qkv = self.qkv(x).reshape(-1, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # B, heads, N, head_dim
        attn = torch.matmul(q * self.scale, k.transpose(-2, -1))
        attn = attn.softmax(dim=-1)
        x = torch.matmul(attn, v).transpose(1, 2).reshape(-1, n, c)
        return self.proj(x)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, eps: float = 1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DeiT(nn.Module):
    """ViT with a class token, learned absolute position embedding and a linear head.

    ``pos_embed`` is built for the grid of ``img_size``; the published weights
    therefore load only at the size they were trained at (224).
    """

    def __init__(
        self,
        img_size: tuple[int, int] = (224, 224),
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 3,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.embed_dim = self.num_features = embed_dim
        self.patch_embed = PatchEmbed(_pair(img_size), patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, embed_dim))
        self.blocks = nn.ModuleList(
            [Block(embed_dim, num_heads, mlp_ratio, qkv_bias, norm_eps) for _ in range(depth)]
        )
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _create_deit(variant: str, **kwargs) -> DeiT:
    del variant  # one architecture; the name is kept for timm-style symmetry
    return DeiT(**kwargs)


def deit_tiny_patch16_224(**kwargs) -> DeiT:
    return _create_deit("deit_tiny_patch16_224", **{**dict(patch_size=16, embed_dim=192, depth=12, num_heads=3), **kwargs})


def deit_small_patch16_224(**kwargs) -> DeiT:
    return _create_deit("deit_small_patch16_224", **{**dict(patch_size=16, embed_dim=384, depth=12, num_heads=6), **kwargs})


_COMMON = dict(
    family="deit",
    paper=_PAPER,
    input_size=(224, 224),
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    interpolation="bicubic",
    crop_pct=0.875,
    num_classes=1000,
    classifier="head",
)

# params: 5,717,416 (tiny) and 22,050,664 (small); the paper's Table 1 lists 5M / 22M.
register_model(
    ModelInfo(
        name="deit_tiny_patch16_224",
        params_m=5.7,
        gflops=1.3,
        weights_source="https://dl.fbaipublicfiles.com/deit/deit_tiny_patch16_224-a1311bcf.pth",
        **_COMMON,  # type: ignore[arg-type]
    ),
    deit_tiny_patch16_224,
)
register_model(
    ModelInfo(
        name="deit_small_patch16_224",
        params_m=22.1,
        gflops=4.6,
        weights_source="https://dl.fbaipublicfiles.com/deit/deit_small_patch16_224-cd65a155.pth",
        **_COMMON,  # type: ignore[arg-type]
    ),
    deit_small_patch16_224,
)


def _test_deit(**kwargs) -> DeiT:
    return _create_deit("test_deit", **{**dict(patch_size=16, embed_dim=64, depth=2, num_heads=2), **kwargs})


# A two-block DeiT for tests (timm's ``test_*`` habit), trained in seconds on the bundled
# digits (``edgevis.catalog.training``). 64x64 input, patch 16 -> a 4x4 token grid: with
# patch 8 the 64 tokens (about one digit pixel each) need several times more epochs.
register_model(
    ModelInfo(
        name="test_deit",
        params_m=0.151,
        gflops=0.0025,
        weights_source="none published; train with python -m edgevis.catalog.training --model test_deit",
        fixture=True,
        **{**_COMMON, "paper": _PAPER + "; reduced test configuration", "input_size": (64, 64),
           "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "crop_pct": 1.0, "num_classes": 10},  # type: ignore[arg-type]
    ),
    _test_deit,
)
