"""LSNet: "LSNet: See Large, Focus Small" (Wang et al., CVPR 2025).

Written from the paper and the official implementation (github jameslahm/lsnet):
same stage widths and depths, same block alternation (even blocks: RepVGG
depthwise + squeeze-excite; odd blocks: LS convolution, or attention in the last
stage), and the same parameter and buffer names, so the published checkpoints
(``lsnet_t.pth`` ...) load with ``strict=True``. The Triton SKA kernel is
replaced by an exportable torch version with identical semantics
(:mod:`edgevis.catalog.layers.ska`).
"""

from __future__ import annotations

import itertools
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers.conv_bn import BN_Linear, Conv2d_BN, fuse_conv_bn
from .layers.ska import SKA
from .layers.squeeze_excite import SqueezeExcite
from .registry import ModelInfo, register_model

# --------------------------------------------------------------------------- blocks


class Residual(nn.Module):
    def __init__(self, m: nn.Module, drop: float = 0.0) -> None:
        super().__init__()
        self.m = m
        self.drop = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.drop > 0:
            keep = torch.rand(x.size(0), 1, 1, 1, device=x.device).ge_(self.drop).div(1 - self.drop)
            return x + self.m(x) * keep.detach()
        return x + self.m(x)


class FFN(nn.Module):
    def __init__(self, ed: int, h: int) -> None:
        super().__init__()
        self.pw1 = Conv2d_BN(ed, h)
        self.act = nn.ReLU()
        self.pw2 = Conv2d_BN(h, ed, bn_weight_init=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw2(self.act(self.pw1(x)))


class RepVGGDW(nn.Module):
    """3x3 depthwise conv + 1x1 depthwise conv + identity; one 3x3 conv in deploy form."""

    def __init__(self, ed: int) -> None:
        super().__init__()
        self.conv = Conv2d_BN(ed, ed, 3, 1, 1, groups=ed)
        self.conv1 = Conv2d_BN(ed, ed, 1, 1, 0, groups=ed)
        self.dim = ed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.conv1(x) + x

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        conv = fuse_conv_bn(self.conv.c, self.conv.bn)
        conv1 = fuse_conv_bn(self.conv1.c, self.conv1.bn)
        identity = torch.zeros_like(conv.weight)
        identity[:, :, 1, 1] = 1.0
        conv.weight.add_(F.pad(conv1.weight, [1, 1, 1, 1]) + identity)
        conv.bias.add_(conv1.bias)
        return conv


class Attention(nn.Module):
    """Multi-head self-attention over a (resolution x resolution) map with a learned
    relative position bias per head (LeViT style). The bias is gathered in
    ``forward`` from ``attention_biases`` (no cached copy that could go stale
    when weights are loaded after ``eval()``)."""

    def __init__(self, dim: int, key_dim: int, num_heads: int = 8, attn_ratio: float = 4,
                 resolution: int | tuple[int, int] = 14) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = key_dim ** -0.5
        self.key_dim = key_dim
        self.nh_kd = nh_kd = key_dim * num_heads
        self.d = int(attn_ratio * key_dim)
        self.dh = int(attn_ratio * key_dim) * num_heads
        self.attn_ratio = attn_ratio
        self.qkv = Conv2d_BN(dim, self.dh + nh_kd * 2, ks=1)
        self.proj = nn.Sequential(nn.ReLU(), Conv2d_BN(self.dh, dim, bn_weight_init=0))
        self.dw = Conv2d_BN(nh_kd, nh_kd, 3, 1, 1, groups=nh_kd)
        rh, rw = (resolution, resolution) if isinstance(resolution, int) else resolution
        points = list(itertools.product(range(rh), range(rw)))
        offsets: dict[tuple[int, int], int] = {}
        idxs = []
        for p1 in points:
            for p2 in points:
                off = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
                idxs.append(offsets.setdefault(off, len(offsets)))
        n = len(points)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, len(offsets)))
        self.register_buffer("attention_bias_idxs", torch.LongTensor(idxs).view(n, n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        n = h * w
        q, k, v = self.qkv(x).split([self.nh_kd, self.nh_kd, self.dh], dim=1)
        q = self.dw(q)
        q = q.reshape(b, self.num_heads, -1, n)
        k = k.reshape(b, self.num_heads, -1, n)
        v = v.reshape(b, self.num_heads, -1, n)
        bias = self.attention_biases[:, self.attention_bias_idxs]
        attn = (q.transpose(-2, -1) @ k) * self.scale + bias
        attn = attn.softmax(dim=-1)
        x = (v @ attn.transpose(-2, -1)).reshape(b, -1, h, w)
        return self.proj(x)


class LKP(nn.Module):
    """Large-kernel perception: predicts a per-pixel K x K kernel for each group."""

    def __init__(self, dim: int, lks: int, sks: int, groups: int) -> None:
        super().__init__()
        self.cv1 = Conv2d_BN(dim, dim // 2)
        self.act = nn.ReLU()
        self.cv2 = Conv2d_BN(dim // 2, dim // 2, ks=lks, pad=(lks - 1) // 2, groups=dim // 2)
        self.cv3 = Conv2d_BN(dim // 2, dim // 2)
        self.cv4 = nn.Conv2d(dim // 2, sks ** 2 * dim // groups, kernel_size=1)
        self.norm = nn.GroupNorm(num_groups=dim // groups, num_channels=sks ** 2 * dim // groups)
        self.sks = sks
        self.groups = groups
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.cv3(self.cv2(self.act(self.cv1(x)))))
        w = self.norm(self.cv4(x))
        b, _, h, width = w.shape
        return w.reshape(b, self.dim // self.groups, self.sks ** 2, h, width)


class LSConv(nn.Module):
    """Large-kernel perception + small-kernel aggregation, then BatchNorm and residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lkp = LKP(dim, lks=7, sks=3, groups=8)
        self.ska = SKA()
        self.bn = nn.BatchNorm2d(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.ska(x, self.lkp(x))) + x


class Block(nn.Module):
    def __init__(self, ed: int, kd: int, nh: int = 8, ar: float = 4, resolution: int | tuple[int, int] = 14,
                 stage: int = -1, depth: int = -1) -> None:
        super().__init__()
        if depth % 2 == 0:
            self.mixer: nn.Module = RepVGGDW(ed)
            self.se: nn.Module = SqueezeExcite(ed, 0.25)
        else:
            self.se = nn.Identity()
            self.mixer = Residual(Attention(ed, kd, nh, ar, resolution=resolution)) if stage == 3 else LSConv(ed)
        self.ffn = Residual(FFN(ed, int(ed * 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ffn(self.se(self.mixer(x)))


# --------------------------------------------------------------------------- model


class LSNet(nn.Module):
    def __init__(self, img_size: int | Sequence[int] = 224, patch_size: int = 16, in_chans: int = 3,
                 num_classes: int = 1000, embed_dim: Sequence[int] = (64, 128, 192, 256),
                 key_dim: Sequence[int] = (16, 16, 16, 16), depth: Sequence[int] = (1, 2, 3, 4),
                 num_heads: Sequence[int] = (4, 4, 4, 4), distillation: bool = False) -> None:
        super().__init__()
        ih, iw = (img_size, img_size) if isinstance(img_size, int) else (int(img_size[0]), int(img_size[1]))
        e0 = embed_dim[0]
        self.patch_embed = nn.Sequential(
            Conv2d_BN(in_chans, e0 // 4, 3, 2, 1), nn.ReLU(),
            Conv2d_BN(e0 // 4, e0 // 2, 3, 2, 1), nn.ReLU(),
            Conv2d_BN(e0 // 2, e0, 3, 2, 1),
        )
        res = (ih // patch_size, iw // patch_size)
        attn_ratio = [embed_dim[i] / (key_dim[i] * num_heads[i]) for i in range(len(embed_dim))]
        self.blocks1 = nn.Sequential()
        self.blocks2 = nn.Sequential()
        self.blocks3 = nn.Sequential()
        self.blocks4 = nn.Sequential()
        stages = [self.blocks1, self.blocks2, self.blocks3, self.blocks4]
        for i, (ed, kd, dpth, nh, ar) in enumerate(zip(embed_dim, key_dim, depth, num_heads, attn_ratio)):
            for d in range(dpth):
                stages[i].append(Block(ed, kd, nh, ar, res, stage=i, depth=d))
            if i != len(depth) - 1:
                # the downsampling of stage i+1 lives at the head of that stage
                stages[i + 1].append(Conv2d_BN(ed, ed, ks=3, stride=2, pad=1, groups=ed))
                stages[i + 1].append(Conv2d_BN(ed, embed_dim[i + 1], ks=1, stride=1, pad=0))
                res = ((res[0] - 1) // 2 + 1, (res[1] - 1) // 2 + 1)
        self.head = BN_Linear(embed_dim[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.distillation = distillation
        if distillation:
            self.head_dist = BN_Linear(embed_dim[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.num_classes = num_classes
        self.num_features = embed_dim[-1]

    @torch.no_grad()
    def merge_heads(self) -> None:
        """Deploy form of a distilled model: inference averages the two heads, so one
        Linear with the averaged weights computes the same logits at half the cost.
        Called by :func:`edgevis.catalog.reparameterize` after BN folding."""
        if not (self.distillation and isinstance(self.head, nn.Linear) and isinstance(self.head_dist, nn.Linear)):
            return
        merged = nn.Linear(self.head.in_features, self.head.out_features)
        merged.weight.copy_((self.head.weight + self.head_dist.weight) / 2)
        merged.bias.copy_((self.head.bias + self.head_dist.bias) / 2)
        self.head = merged
        del self.head_dist
        self.distillation = False

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        x = self.blocks1(x)
        x = self.blocks2(x)
        x = self.blocks3(x)
        x = self.blocks4(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        x = self.forward_features(x)
        if self.distillation:
            a, b = self.head(x), self.head_dist(x)
            # training returns both heads; inference averages them (official behaviour)
            return (a, b) if self.training else (a + b) / 2
        return self.head(x)


# --------------------------------------------------------------------------- registry

_PAPER = "LSNet: See Large, Focus Small (Wang et al., CVPR 2025)"
_CONFIGS = {
    # name: (embed_dim, depth, num_heads, params_m, gflops) - published figures from the official README
    "lsnet_t": ((64, 128, 256, 384), (0, 2, 8, 10), (3, 3, 3, 4), 11.4, 0.3),
    "lsnet_s": ((96, 192, 320, 448), (1, 2, 8, 10), (3, 3, 3, 4), 16.1, 0.5),
    "lsnet_b": ((128, 256, 384, 512), (4, 6, 8, 10), (3, 3, 3, 4), 23.2, 1.3),
}


def _create_lsnet(**kwargs) -> LSNet:
    return LSNet(patch_size=8, **kwargs)


for _base, (_ed, _depth, _nh, _params, _gflops) in _CONFIGS.items():
    for _distill in (False, True):
        _name = _base + ("_distill" if _distill else "")
        register_model(
            ModelInfo(
                name=_name, family="lsnet", paper=_PAPER, params_m=_params, gflops=_gflops,
                interpolation="bicubic", crop_pct=0.9, classifier="head.l",
                weights_source=f"official checkpoint {_name}.pth (github jameslahm/lsnet, Hugging Face jameslahm/lsnet)",
                kwargs={"embed_dim": _ed, "depth": _depth, "num_heads": _nh, "distillation": _distill},
            ),
            _create_lsnet,
        )


# A narrow, shallow LSNet for tests (timm's ``test_*`` habit): two blocks per stage, so
# every block kind of the full model appears (RepVGG-DW + squeeze-excite, then LS
# convolution, or attention in the last stage), at a size that trains on the bundled
# digits in seconds (``edgevis.catalog.training``). 10 classes, 64x64, crop_pct 1.0:
# the digits fill the frame and must not be cropped.
# The stem strides 8 and each stage halves, so at 64x64 the attention stage sees a 1x1
# map (softmax over one key); pass a larger input size (e.g. 128) where that matters.
register_model(
    ModelInfo(
        name="test_lsnet", family="lsnet", paper=_PAPER + "; reduced test configuration",
        params_m=0.098, gflops=0.0008, input_size=(64, 64), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        interpolation="bicubic", crop_pct=1.0, num_classes=10, classifier="head.l",
        weights_source="none published; train with python -m edgevis.catalog.training --model test_lsnet",
        fixture=True,
        kwargs={"embed_dim": (16, 32, 48, 64), "depth": (2, 2, 2, 2), "num_heads": (2, 2, 2, 2), "distillation": False},
    ),
    _create_lsnet,
)
