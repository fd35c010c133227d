"""HorNet: "HorNet: Efficient High-Order Spatial Interactions with Recursive Gated
Convolutions" (Rao et al., NeurIPS 2022).

Written from the paper and the official implementation (github raoyongming/HorNet,
``hornet.py``): a ConvNeXt-shaped network whose token mixer is the recursive gated
convolution g^nConv (order 2, 3, 4, 5 in stages 1..4, 7x7 depthwise kernel, scale 1/3),
with the official parameter names, so the published checkpoints (``hornet_tiny_7x7``,
``hornet_small_7x7``; ConvNeXt-style, state dict under ``model``) load with
``strict=True``::

    downsample_layers.0.{0,1}           4x4 stride-4 conv, channels-first LayerNorm
    downsample_layers.{1,2,3}.{0,1}     channels-first LayerNorm, 2x2 stride-2 conv
    stages.{i}.{j}.norm1 / gnconv.proj_in / gnconv.dwconv / gnconv.pws.{k} /
        gnconv.proj_out / norm2 / pwconv1 / pwconv2 / gamma1 / gamma2
    norm, head

g^nConv: ``proj_in`` (C -> 2C) splits into p0 (C / 2^(n-1) channels) and q (the rest);
q goes through one depthwise conv and splits into q0..q(n-1) of widths C/2^(n-1) .. C;
then p = p0 * q0 and, recursively, p = pws[k](p) * q(k+1); ``proj_out`` closes it.

The global-filter variants (``hornet_*_gf``) multiply a feature map's 2-D real FFT by a
learned complex filter in stages 3 and 4. An FFT has no plain ONNX op that TensorRT takes
(ONNX's ``DFT`` is not in its parser) nor an integer-only rule, so :class:`GlobalLocalFilter`
computes the same thing as a circular depthwise convolution (see there): the exported
graph holds Slice/Concat/Conv only. Its kernel depends on the map size, so these variants
are built for one input size (a multiple of 32).

Deploy form: the g^nConv scale folds into the depthwise conv (into the global filter's
output norm), the layer scales ``gamma1`` / ``gamma2`` into ``proj_out`` / ``pwconv2`` (one
Mul fewer per branch), and a global filter's kernel is computed once.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers.norm import LayerNorm2d
from .registry import ModelInfo, register_model
from .layers.init import trunc_normal_init

__all__ = ["HorNet"]

# --------------------------------------------------------------------------- blocks


def _interp_matrix(out: int, size: int) -> torch.Tensor:
    """(out x size) matrix of 1-D linear interpolation with ``align_corners=True``: bilinear
    resizing of a (size_h, size_w) map is ``A_h @ map @ A_w.T``."""
    m = torch.zeros(out, size, dtype=torch.float64)
    for r in range(out):
        src = r * (size - 1) / (out - 1) if out > 1 else 0.0
        i0 = min(int(math.floor(src)), size - 1)
        frac = src - i0
        m[r, i0] += 1 - frac
        if frac > 0:
            m[r, i0 + 1] += frac
    return m


class GlobalLocalFilter(nn.Module):
    """HorNet's global filter (the ``_gf`` variants), without an FFT.

    Official: half of the channels through a 3x3 depthwise conv, the other half through
    ``irfft2(rfft2(x, ortho) * W, ortho)`` with a learned complex ``W`` (bilinearly resized
    to the map's spectrum when the sizes differ), channels interleaved, LayerNorms before
    and after. Multiplying spectra is a circular convolution, so the second half is
    computed as one: each channel's (a x b) kernel is the filter's impulse response, built
    from ``W`` with constant cosine/sine matrices (matmuls on parameters: the exporter's
    graph folds them to a constant), and applied as a depthwise conv over the map padded
    circularly with slices. Plain ONNX (Slice, Concat, Conv), same numbers to float
    rounding. The map size is fixed when the model is built (``map_size``).
    """

    def __init__(self, dim: int, h: int = 14, w: int = 8, map_size: tuple[int, int] = (14, 14)) -> None:
        super().__init__()
        c = dim // 2
        self.dw = nn.Conv2d(c, c, 3, padding=1, bias=False, groups=c)
        self.complex_weight = nn.Parameter(torch.randn(c, h, w, 2) * 0.02)
        nn.init.trunc_normal_(self.complex_weight, std=0.02)
        self.pre_norm = LayerNorm2d(dim, eps=1e-6)
        self.post_norm = LayerNorm2d(dim, eps=1e-6)
        a, b = map_size
        m = b // 2 + 1
        self.map_size = (a, b)
        f64 = torch.float64
        # spectrum resize (identity when the sizes match, as the official code skips it)
        self.register_buffer("resize_h", _interp_matrix(a, h).float(), persistent=False)
        self.register_buffer("resize_w_t", _interp_matrix(m, w).T.contiguous().float(), persistent=False)
        # inverse DFT along the height, rows in flipped order (a Conv correlates, the filter convolves)
        r = (a - 1 - torch.arange(a, dtype=f64))[:, None]
        ang = 2 * math.pi * r * torch.arange(a, dtype=f64)[None, :] / a
        self.register_buffer("cos_h", (torch.cos(ang) / math.sqrt(a)).float(), persistent=False)
        self.register_buffer("sin_h", (torch.sin(ang) / math.sqrt(a)).float(), persistent=False)
        # real inverse DFT along the width: bins 1..m-1 count twice except the Nyquist bin;
        # the imaginary parts of the DC and Nyquist bins drop out (sin = 0 there), as in C2R
        k = torch.arange(m, dtype=f64)[:, None]
        s = (b - 1 - torch.arange(b, dtype=f64))[None, :]
        twice = torch.full((m, 1), 2.0, dtype=f64)
        twice[0] = 1.0
        if b % 2 == 0:
            twice[-1] = 1.0
        ang = 2 * math.pi * k * s / b
        # the impulse's spectrum under norm='ortho' is 1/sqrt(a*b) at every bin
        norm = math.sqrt(b) * math.sqrt(a * b)
        self.register_buffer("cos_w", (twice * torch.cos(ang) / norm).float(), persistent=False)
        self.register_buffer("sin_w", (twice * torch.sin(ang) / norm).float(), persistent=False)
        self.kernel: torch.Tensor | None = None  # deploy form: the (c, 1, a, b) kernel, computed once

    def filter_kernel(self) -> torch.Tensor:
        """Depthwise (c, 1, a, b) kernel equal to the spectral filter (circular convolution)."""
        wr = self.resize_h @ self.complex_weight[..., 0] @ self.resize_w_t  # (c, a, m)
        wi = self.resize_h @ self.complex_weight[..., 1] @ self.resize_w_t
        ur = self.cos_h @ wr - self.sin_h @ wi
        ui = self.sin_h @ wr + self.cos_h @ wi
        k = ur @ self.cos_w - ui @ self.sin_w  # (c, a, b)
        return k.unsqueeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre_norm(x)
        x1, x2 = x.chunk(2, dim=1)
        x1 = self.dw(x1)
        a, b = self.map_size
        if tuple(x2.shape[-2:]) != (a, b):
            raise ValueError(f"this HorNet global filter was built for {a}x{b} maps, got {tuple(x2.shape[-2:])}")
        if a > 1:
            x2 = torch.cat([x2[:, :, 1:], x2], dim=2)  # circular padding: row i holds row (i - (a-1)) mod a
        if b > 1:
            x2 = torch.cat([x2[:, :, :, 1:], x2], dim=3)
        kernel = self.kernel if self.kernel is not None else self.filter_kernel()
        x2 = F.conv2d(x2, kernel, groups=kernel.shape[0])
        c = x1.shape[1]
        x = torch.stack([x1, x2], dim=2).reshape(-1, 2 * c, a, b)  # channels interleaved, as the official cat
        return self.post_norm(x)

    @torch.no_grad()
    def freeze(self, scale: float = 1.0) -> None:
        """Deploy form: the kernel computed once; ``scale`` folded into the output norm."""
        self.kernel = self.filter_kernel().detach().clone()
        self.post_norm.weight.mul_(scale)
        if self.post_norm.bias is not None:
            self.post_norm.bias.mul_(scale)


class GnConv(nn.Module):
    """Recursive gated convolution of order ``order`` (official name ``gnconv``); with
    ``gf=(h, w)`` the depthwise conv is HorNet's global-local filter."""

    def __init__(self, dim: int, order: int = 5, scale: float = 1.0 / 3.0, kernel: int = 7,
                 gf: tuple[int, int] | None = None, map_size: tuple[int, int] = (14, 14)) -> None:
        super().__init__()
        self.order = order
        self.dims = [dim // 2**i for i in range(order)][::-1]
        self.proj_in = nn.Conv2d(dim, 2 * dim, 1)
        self.dwconv: nn.Module = (
            nn.Conv2d(sum(self.dims), sum(self.dims), kernel, padding=(kernel - 1) // 2, groups=sum(self.dims))
            if gf is None else GlobalLocalFilter(sum(self.dims), gf[0], gf[1], map_size))
        self.proj_out = nn.Conv2d(dim, dim, 1)
        self.pws = nn.ModuleList([nn.Conv2d(self.dims[i], self.dims[i + 1], 1) for i in range(order - 1)])
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pwa, abc = self.proj_in(x).split([self.dims[0], sum(self.dims)], dim=1)
        dw = self.dwconv(abc)
        if self.scale != 1.0:
            dw = dw * self.scale
        q = dw.split(self.dims, dim=1)
        x = pwa * q[0]
        for i in range(self.order - 1):
            x = self.pws[i](x) * q[i + 1]
        return self.proj_out(x)


def _scale_out(layer: nn.Conv2d | nn.Linear, gamma: torch.Tensor) -> None:
    """``layer`` rescaled in place so that it computes ``gamma * layer(x)`` (per output channel)."""
    shape = (-1,) + (1,) * (layer.weight.ndim - 1)
    layer.weight.mul_(gamma.reshape(shape))
    if layer.bias is not None:
        layer.bias.mul_(gamma)


class Block(nn.Module):
    def __init__(self, dim: int, order: int, layer_scale_init_value: float = 1e-6,
                 gf: tuple[int, int] | None = None, map_size: tuple[int, int] = (14, 14)) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim, eps=1e-6)
        self.gnconv = GnConv(dim, order, gf=gf, map_size=map_size)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma1: nn.Parameter | None = nn.Parameter(layer_scale_init_value * torch.ones(dim)) if layer_scale_init_value > 0 else None
        self.gamma2: nn.Parameter | None = nn.Parameter(layer_scale_init_value * torch.ones(dim)) if layer_scale_init_value > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gnconv(self.norm1(x))
        if self.gamma1 is not None:
            y = y * self.gamma1.reshape(-1, 1, 1)
        x = x + y
        y = self.pwconv2(self.act(self.pwconv1(self.norm2(x.permute(0, 2, 3, 1)))))
        if self.gamma2 is not None:
            y = y * self.gamma2
        return x + y.permute(0, 3, 1, 2)

    @torch.no_grad()
    def fuse(self) -> "Block":
        """Deploy form (in place): the g^nConv scale into its depthwise conv, the layer scales
        into the last layer of each branch."""
        g = self.gnconv
        if isinstance(g.dwconv, GlobalLocalFilter):
            if g.dwconv.kernel is None:
                g.dwconv.freeze(g.scale)
                g.scale = 1.0
        elif g.scale != 1.0:
            _scale_out(g.dwconv, torch.full((g.dwconv.out_channels,), g.scale))
            g.scale = 1.0
        if self.gamma1 is not None:
            _scale_out(g.proj_out, self.gamma1)
            self.gamma1 = None
        if self.gamma2 is not None:
            _scale_out(self.pwconv2, self.gamma2)
            self.gamma2 = None
        return self


# --------------------------------------------------------------------------- model


class HorNet(nn.Module):
    def __init__(self, depths: Sequence[int] = (2, 3, 18, 2), base_dim: int = 64, orders: Sequence[int] = (2, 3, 4, 5),
                 num_classes: int = 1000, in_chans: int = 3, layer_scale_init_value: float = 1e-6,
                 global_filters: Sequence[tuple[int, int] | None] = (None, None, None, None),
                 img_size: Any = 224) -> None:
        super().__init__()
        # the 7x7 variants are fully convolutional; a global filter is built for one map size
        ih, iw = (img_size, img_size) if isinstance(img_size, int) else (int(img_size[0]), int(img_size[1]))
        if any(global_filters) and (ih % 32 or iw % 32):
            raise ValueError("HorNet's global-filter variants need an input size divisible by 32")
        maps = [(ih // 4 // 2**i, iw // 4 // 2**i) for i in range(4)]
        dims = [base_dim * 2**i for i in range(4)]
        self.num_classes = num_classes
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(in_chans, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))]
            + [nn.Sequential(LayerNorm2d(dims[i], eps=1e-6), nn.Conv2d(dims[i], dims[i + 1], 2, 2)) for i in range(3)]
        )
        self.stages = nn.ModuleList(
            [nn.Sequential(*[Block(dims[i], orders[i], layer_scale_init_value, global_filters[i], maps[i])
                             for _ in range(depths[i])]) for i in range(4)]
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head: nn.Module = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        trunc_normal_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.norm(x.mean((-2, -1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


# --------------------------------------------------------------------------- registry

_PAPER = ("Rao et al. 2022, HorNet: Efficient High-Order Spatial Interactions with Recursive Gated "
          "Convolutions (NeurIPS 2022, arXiv:2207.14284)")
_CONFIGS = {
    # name: (base_dim, params_m, gflops) - the official README's table: HorNet-T (7x7) 22M 4.0G,
    # HorNet-S (7x7) 50M 8.8G; params_m is our count of the deployed model (22.40M, 49.51M),
    # which the README rounds to the whole million.
    "hornet_tiny_7x7": (64, 22.40, 4.0),
    "hornet_small_7x7": (96, 49.51, 8.8),
}


def _create_hornet(**kwargs: Any) -> HorNet:
    return HorNet(**kwargs)


# global-filter variants: the filter of stage 3 is learned at 14x8 (the rfft of a 14x14 map), stage 4's at 7x4
_GF = (None, None, (14, 8), (7, 4))
_GF_CONFIGS = {
    # HorNet-T (GF) 23M 3.9G, HorNet-S (GF) 50M 8.7G; params_m: our count (22.98M, 50.38M)
    "hornet_tiny_gf": (64, 22.98, 3.9),
    "hornet_small_gf": (96, 50.38, 8.7),
}

for _name, (_dim, _params, _gflops) in {**_CONFIGS, **_GF_CONFIGS}.items():
    _kwargs: dict[str, Any] = {"depths": (2, 3, 18, 2), "base_dim": _dim}
    if _name in _GF_CONFIGS:
        _kwargs["global_filters"] = _GF
    register_model(
        ModelInfo(
            name=_name, family="hornet", paper=_PAPER, params_m=_params, gflops=_gflops,
            interpolation="bicubic", crop_pct=0.875, classifier="head",
            weights_source=f"official checkpoint {_name}.pth (github raoyongming/HorNet, Tsinghua Cloud)",
            kwargs=_kwargs,
        ),
        _create_hornet,
    )
