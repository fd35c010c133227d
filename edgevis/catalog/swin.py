"""Swin Transformer (v1): hierarchical vision transformer with shifted windows.

Liu et al. 2021, "Swin Transformer: Hierarchical Vision Transformer using
Shifted Windows" (arXiv:2103.14030). Official code and weights:
https://github.com/microsoft/Swin-Transformer

Names follow the OFFICIAL checkpoints (``swin_tiny_patch4_window7_224.pth``,
state dict under ``model``), parameters and persistent buffers alike::

    patch_embed.proj / patch_embed.norm
    layers.{i}.blocks.{j}.norm1 / attn.relative_position_bias_table /
        attn.relative_position_index (buffer) / attn.qkv / attn.proj / norm2 /
        mlp.fc1 / mlp.fc2
    layers.{i}.blocks.{j}.attn_mask (buffer, shifted blocks only)
    layers.{i}.downsample.norm / .reduction   (PatchMerging at the END of stage i)
    norm, head

timm's re-organised layout (PatchMerging at the START of stage i+1, ``head.fc``,
no buffers) is converted by :func:`remap_timm_state_dict`.

Export notes: the cyclic shift is two slices + a concat per axis (no
``torch.roll``), every reshape has static sizes except the batch (``-1``), and
attention is explicit MatMul + Softmax. The shift mask depends on the input
size, so a model is built for one input size (``img_size``).
"""

from __future__ import annotations

import re

import torch
import torch.nn as nn

from .layers.mlp import Mlp
from .layers.patch_embed import PatchEmbed
from .registry import IMAGENET_MEAN, IMAGENET_STD, ModelInfo, register_model

_PAPER = "Liu et al. 2021, Swin Transformer: Hierarchical Vision Transformer using Shifted Windows (arXiv:2103.14030)"
_MASK_VALUE = -100.0  # the official code's value for "other region" in shifted windows


def _roll_axis(x: torch.Tensor, shift: int, dim: int, size: int) -> torch.Tensor:
    s = shift % size
    if s == 0:
        return x
    return torch.cat([x.narrow(dim, size - s, s), x.narrow(dim, 0, size - s)], dim=dim)


def cyclic_shift(x: torch.Tensor, shift_h: int, shift_w: int, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``torch.roll(x, (shift_h, shift_w), dims=(1, 2))`` for ``x`` of shape (B, H, W, C),
    as static slices + concat (exports to plain Slice/Concat in ONNX). Pass ``size``
    (H, W) as Python ints when tracing so that no Shape ops enter the graph."""
    h, w = size if size is not None else (int(x.shape[1]), int(x.shape[2]))
    return _roll_axis(_roll_axis(x, shift_h, 1, h), shift_w, 2, w)


def window_partition(x: torch.Tensor, ws: int, h: int, w: int, c: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * nW, ws * ws, C), windows in row-major order."""
    x = x.reshape(-1, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, ws * ws, c)


def window_reverse(windows: torch.Tensor, ws: int, h: int, w: int, c: int) -> torch.Tensor:
    """(B * nW, ws * ws, C) -> (B, H, W, C); inverse of :func:`window_partition`."""
    x = windows.reshape(-1, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def relative_position_index(ws: int) -> torch.Tensor:
    """(ws*ws, ws*ws) int64 index into the ((2ws-1)^2, heads) bias table."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :] + (ws - 1)  # 2, N, N, each in [0, 2ws-2]
    return rel[0] * (2 * ws - 1) + rel[1]


def shifted_window_mask(h: int, w: int, ws: int, shift: int) -> torch.Tensor:
    """(nW, ws*ws, ws*ws) additive mask: 0 within a region, -100 across regions.

    After the cyclic shift, the last window row/column mixes tokens from up to
    three regions per axis ([0, h-ws), [h-ws, h-shift), [h-shift, h)).
    """

    def region(n: int) -> torch.Tensor:
        r = torch.zeros(n)
        r[n - ws : n - shift] = 1
        r[n - shift :] = 2
        return r

    labels = (region(h)[:, None] * 3 + region(w)[None, :]).reshape(1, h, w, 1)
    labels = window_partition(labels, ws, h, w, 1).squeeze(-1)  # nW, N
    diff = labels[:, None, :] - labels[:, :, None]
    return torch.where(diff != 0, torch.tensor(_MASK_VALUE), torch.tensor(0.0))


class WindowAttention(nn.Module):
    """Window multi-head self-attention with a learned relative position bias."""

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size))  # persistent
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_position_bias(self) -> torch.Tensor:
        n = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]
        return bias.reshape(n, n, self.num_heads).permute(2, 0, 1)  # heads, N, N

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, num_windows: int = 0) -> torch.Tensor:
        """``x``: (B*nW, N, C); ``mask``: (nW, N, N) additive, with ``num_windows`` = nW."""
        n, c, nh = self.window_size**2, self.dim, self.num_heads
        qkv = self.qkv(x).reshape(-1, n, 3, nh, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # B*nW, heads, N, head_dim
        attn = torch.matmul(q * self.scale, k.transpose(-2, -1))
        attn = attn + self.relative_position_bias()
        if mask is not None:
            attn = attn.reshape(-1, num_windows, nh, n, n) + mask.unsqueeze(1)
            attn = attn.reshape(-1, nh, n, n)
        attn = attn.softmax(dim=-1)
        x = torch.matmul(attn, v).transpose(1, 2).reshape(-1, n, c)
        return self.proj(x)


class SwinTransformerBlock(nn.Module):
    """(Shifted-)window attention + MLP, pre-norm, on tokens (B, H*W, C) of a fixed grid."""

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        num_heads: int,
        window_size: int = 7,
        shift_size: int = 0,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
    ):
        super().__init__()
        h, w = input_resolution
        if min(h, w) <= window_size:  # official rule: one window covers the map, no shift
            window_size, shift_size = min(h, w), 0
        if h % window_size or w % window_size:
            raise ValueError(f"feature map {h}x{w} is not a multiple of the window size {window_size}")
        self.dim = dim
        self.input_resolution = (h, w)
        self.window_size = window_size
        self.shift_size = shift_size
        self.num_windows = (h // window_size) * (w // window_size)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        mask = shifted_window_mask(h, w, window_size, shift_size) if shift_size > 0 else None
        self.register_buffer("attn_mask", mask)  # persistent when set, as in the official code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (h, w), c, ws, s = self.input_resolution, self.dim, self.window_size, self.shift_size
        shortcut = x
        x = self.norm1(x).reshape(-1, h, w, c)
        if s:
            x = cyclic_shift(x, -s, -s, (h, w))
        x = self.attn(window_partition(x, ws, h, w, c), self.attn_mask, self.num_windows)
        x = window_reverse(x, ws, h, w, c)
        if s:
            x = cyclic_shift(x, s, s, (h, w))
        x = shortcut + x.reshape(-1, h * w, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 neighbourhood -> one token: (B, H*W, C) -> (B, H/2*W/2, 2C).

    Channel order of the 4C concat is (0,0), (1,0), (0,1), (1,1) in (row, col)
    offsets, as in the official code.
    """

    def __init__(self, input_resolution: tuple[int, int], dim: int):
        super().__init__()
        h, w = input_resolution
        if h % 2 or w % 2:
            raise ValueError(f"feature map {h}x{w} must have even sides to merge patches")
        self.input_resolution = (h, w)
        self.dim = dim
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (h, w), c = self.input_resolution, self.dim
        # B, H/2, row, W/2, col, C -> B, H/2, W/2, col, row, C: flattens to x00, x10, x01, x11
        x = x.reshape(-1, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 4, 2, 5)
        x = x.reshape(-1, (h // 2) * (w // 2), 4 * c)
        return self.reduction(self.norm(x))


class BasicLayer(nn.Module):
    """One stage: ``depth`` blocks alternating W-MSA / SW-MSA, then optional PatchMerging."""

    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio=4.0, qkv_bias=True, downsample=False):
        super().__init__()
        self.blocks = nn.ModuleList(
            [
                SwinTransformerBlock(
                    dim, input_resolution, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2, mlp_ratio, qkv_bias
                )
                for i in range(depth)
            ]
        )
        self.downsample = PatchMerging(input_resolution, dim) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


class SwinTransformer(nn.Module):
    """Swin v1 classifier (no absolute position embedding, patch norm on: the official defaults)."""

    def __init__(
        self,
        img_size: tuple[int, int] = (224, 224),
        patch_size: int = 4,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 96,
        depths: tuple[int, ...] = (2, 2, 6, 2),
        num_heads: tuple[int, ...] = (3, 6, 12, 24),
        window_size: int = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
    ):
        super().__init__()
        img_size = (img_size, img_size) if isinstance(img_size, int) else (int(img_size[0]), int(img_size[1]))
        self.num_classes = num_classes
        self.num_features = embed_dim * 2 ** (len(depths) - 1)
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim, norm=True)
        ph, pw = self.patch_embed.grid_size
        self.layers = nn.ModuleList(
            [
                BasicLayer(
                    embed_dim * 2**i,
                    (ph // 2**i, pw // 2**i),
                    depths[i],
                    num_heads[i],
                    window_size,
                    mlp_ratio,
                    qkv_bias,
                    downsample=i < len(depths) - 1,
                )
                for i in range(len(depths))
            ]
        )
        self.norm = nn.LayerNorm(self.num_features)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)  # B, L, C

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.mean(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def remap_timm_state_dict(sd: dict[str, torch.Tensor], img_size: tuple[int, int] = (224, 224)) -> dict[str, torch.Tensor]:
    """timm Swin checkpoint -> official names; official checkpoints pass through unchanged.

    timm (>= 0.9) puts PatchMerging at the start of stage i+1 (``layers.{i+1}.downsample``)
    and the classifier at ``head.fc``, and does not save ``relative_position_index`` /
    ``attn_mask``. The missing buffers are rebuilt for ``img_size`` (the registered
    224 input; they are deterministic), from the window size implied by each
    ``relative_position_bias_table`` and the patch size of ``patch_embed.proj``.
    """
    out = dict(sd)
    if "layers.0.downsample.reduction.weight" not in sd and any(".downsample." in k for k in sd):
        out = {}
        for k, v in sd.items():
            k = re.sub(r"^layers\.(\d+)\.downsample\.", lambda m: f"layers.{int(m.group(1)) - 1}.downsample.", k)
            out[k] = v
    out = {("head." + k[len("head.fc."):] if k.startswith("head.fc.") else k): v for k, v in out.items()}
    patch = sd["patch_embed.proj.weight"].shape[-1] if "patch_embed.proj.weight" in sd else 4
    for k, table in sd.items():
        m = re.match(r"^layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_bias_table$", k)
        if not m:
            continue
        stage, blk = int(m.group(1)), int(m.group(2))
        ws = (int(round(table.shape[0] ** 0.5)) + 1) // 2
        prefix = f"layers.{stage}.blocks.{blk}."
        out.setdefault(prefix + "attn.relative_position_index", relative_position_index(ws))
        h, w = img_size[0] // patch // 2**stage, img_size[1] // patch // 2**stage
        if blk % 2 == 1 and min(h, w) > ws:
            out.setdefault(prefix + "attn_mask", shifted_window_mask(h, w, ws, ws // 2))
    return out


def _create_swin(variant: str, **kwargs) -> SwinTransformer:
    del variant  # one architecture; the name is kept for timm-style symmetry
    return SwinTransformer(**kwargs)


def swin_tiny_patch4_window7_224(**kwargs) -> SwinTransformer:
    args = dict(patch_size=4, window_size=7, embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24))
    return _create_swin("swin_tiny_patch4_window7_224", **{**args, **kwargs})


# params: 28,288,354 (paper Table 1: 29M, official README/timm: 28.3M); 4.5 GFLOPs.
register_model(
    ModelInfo(
        name="swin_tiny_patch4_window7_224",
        family="swin",
        paper=_PAPER,
        params_m=28.3,
        gflops=4.5,
        input_size=(224, 224),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        interpolation="bicubic",
        crop_pct=0.9,
        num_classes=1000,
        classifier="head",
        weights_source="https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth",
    ),
    swin_tiny_patch4_window7_224,
    remap_state_dict=remap_timm_state_dict,
)


def _test_swin(**kwargs) -> SwinTransformer:
    args = dict(patch_size=8, window_size=4, embed_dim=32, depths=(2, 2), num_heads=(2, 4))
    return _create_swin("test_swin", **{**args, **kwargs})


# A two-stage Swin for tests (timm's ``test_*`` habit), trained in seconds on the bundled
# digits (``edgevis.catalog.training``). At 64x64 the first stage is 8x8 tokens in 4x4
# windows (a shifted block with its mask); the second is 4x4, where one window covers
# the map and the official rule drops the shift. Patch 8 rather than 4 keeps training
# on 2 CPU cores under half a minute.
register_model(
    ModelInfo(
        name="test_swin",
        family="swin",
        paper=_PAPER + "; reduced test configuration",
        params_m=0.141,
        gflops=0.0039,
        input_size=(64, 64),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        interpolation="bicubic",
        crop_pct=1.0,
        num_classes=10,
        classifier="head",
        weights_source="none published; train with python -m edgevis.catalog.training --model test_swin",
        fixture=True,
    ),
    _test_swin,
)
