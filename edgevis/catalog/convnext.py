"""ConvNeXt: "A ConvNet for the 2020s" (Liu et al., CVPR 2022).

Written from the paper and the official implementation (github
facebookresearch/ConvNeXt): a 4x4 patchify stem, four stages of blocks
(7x7 depthwise conv, LayerNorm, Linear 4x, GELU, Linear, layer scale ``gamma``,
residual), LayerNorm + 2x2 stride-2 conv between stages, global average pool,
LayerNorm and the classifier.

Names follow the OFFICIAL checkpoints (``convnext_tiny_1k_224_ema.pth``, state dict
under ``model``)::

    downsample_layers.0.{0: conv, 1: norm}        the stem
    downsample_layers.{1,2,3}.{0: norm, 1: conv}  between stages
    stages.{i}.{j}.dwconv / norm / pwconv1 / pwconv2 / gamma
    norm, head

timm's layout (``stem.*``, ``stages.{i}.downsample.*``, ``stages.{i}.blocks.{j}.conv_dw``,
``mlp.fc1`` as 1x1 convs in the atto...nano models, ``head.norm`` / ``head.fc``) is
converted by :func:`remap_timm_state_dict`; the atto, femto, pico and nano sizes
exist only as timm checkpoints.

Export notes: the channels-first LayerNorms are transpose + ``LayerNormalization``
(:class:`~edgevis.catalog.layers.norm.LayerNorm2d`), GELU is the exact erf form.
No BatchNorm; the deploy form folds each block's layer scale ``gamma`` into ``pwconv2``.
"""

from __future__ import annotations

import re
from typing import Sequence

import torch
from torch import nn

from .layers.norm import LayerNorm2d
from .registry import ModelInfo, register_model
from .layers.init import trunc_normal_init

# --------------------------------------------------------------------------- blocks


class Block(nn.Module):
    """dwconv 7x7 -> (channels last) LayerNorm -> Linear 4C -> GELU -> Linear C -> gamma, + x."""

    def __init__(self, dim: int, layer_scale_init_value: float = 1e-6, kernel_size: int = 7, mlp_ratio: int = 4):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, mlp_ratio * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(mlp_ratio * dim, dim)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim)) if layer_scale_init_value > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)  # B, H, W, C
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        if self.gamma is not None:
            y = self.gamma * y
        return x + y.permute(0, 3, 1, 2)

    @torch.no_grad()
    def fuse(self) -> "Block":
        """Deploy form: the layer scale folded into ``pwconv2`` (``gamma * (W y + b)`` is
        ``(gamma W) y + gamma b``), one elementwise ``Mul`` per block less in the graph."""
        if self.gamma is not None:
            self.pwconv2.weight.mul_(self.gamma[:, None])
            self.pwconv2.bias.mul_(self.gamma)
            self.gamma = None
        return self


# --------------------------------------------------------------------------- model


class ConvNeXt(nn.Module):
    def __init__(
        self,
        in_chans: int = 3,
        num_classes: int = 1000,
        depths: Sequence[int] = (3, 3, 9, 3),
        dims: Sequence[int] = (96, 192, 384, 768),
        layer_scale_init_value: float = 1e-6,
        img_size: tuple[int, int] = (224, 224),
    ):
        super().__init__()
        h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
        if h < 32 or w < 32:  # a 4x stem and three 2x downsamplings need at least one pixel left
            raise ValueError("ConvNeXt needs an input of at least 32x32")
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(in_chans, dims[0], 4, stride=4), LayerNorm2d(dims[0]))]
        )
        for i in range(len(dims) - 1):
            self.downsample_layers.append(nn.Sequential(LayerNorm2d(dims[i]), nn.Conv2d(dims[i], dims[i + 1], 2, stride=2)))
        self.stages = nn.ModuleList(
            [nn.Sequential(*[Block(dims[i], layer_scale_init_value) for _ in range(depths[i])]) for i in range(len(dims))]
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.num_classes = num_classes
        self.num_features = dims[-1]
        trunc_normal_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.norm(x.mean((-2, -1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def remap_timm_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm ConvNeXt checkpoint -> official names; official checkpoints pass through unchanged."""
    if not any(k.startswith("stem.") for k in sd) and "head.fc.weight" not in sd:
        return sd
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        k = re.sub(r"^stem\.", "downsample_layers.0.", k)
        k = re.sub(r"^stages\.(\d+)\.downsample\.", r"downsample_layers.\1.", k)
        k = re.sub(r"^stages\.(\d+)\.blocks\.(\d+)\.", r"stages.\1.\2.", k)
        k = k.replace(".conv_dw.", ".dwconv.").replace(".mlp.fc1.", ".pwconv1.").replace(".mlp.fc2.", ".pwconv2.")
        k = {"head.norm.weight": "norm.weight", "head.norm.bias": "norm.bias"}.get(k, k)
        k = k.replace("head.fc.", "head.")
        if re.search(r"\.pwconv[12]\.weight$", k) and v.ndim == 4:  # conv_mlp=True: 1x1 convs
            v = v.reshape(v.shape[0], v.shape[1])
        out[k] = v
    return out


# --------------------------------------------------------------------------- registry

_PAPER = "Liu et al. 2022, A ConvNet for the 2020s (CVPR 2022, arXiv:2201.03545)"
_TIMM = "; atto/femto/pico/nano sizes: timm (Wightman), same architecture"
_CONFIGS = {
    # name: (depths, dims, params_m, gflops, crop_pct, weights)
    # atto..nano: timm's model cards (no paper table); tiny..base: paper Table 1 / official README
    "convnext_atto": ((2, 2, 6, 2), (40, 80, 160, 320), 3.7, 0.55, 0.875,
                      "timm convnext_atto.d2_in1k (rwightman/pytorch-image-models releases convnext_atto_d2-01bb0f51.pth)"),
    "convnext_femto": ((2, 2, 6, 2), (48, 96, 192, 384), 5.22, 0.79, 0.875,
                       "timm convnext_femto.d1_in1k (convnext_femto_d1-d71d5b4c.pth)"),
    "convnext_pico": ((2, 2, 6, 2), (64, 128, 256, 512), 9.05, 1.37, 0.875,
                      "timm convnext_pico.d1_in1k (convnext_pico_d1-10ad7f0d.pth)"),
    "convnext_nano": ((2, 2, 8, 2), (80, 160, 320, 640), 15.59, 2.46, 0.95,
                      "timm convnext_nano.d1h_in1k (convnext_nano_d1h-7eb4bdea.pth)"),
    "convnext_tiny": ((3, 3, 9, 3), (96, 192, 384, 768), 28.6, 4.5, 0.875,
                      "https://dl.fbaipublicfiles.com/convnext/convnext_tiny_1k_224_ema.pth"),
    "convnext_small": ((3, 3, 27, 3), (96, 192, 384, 768), 50.2, 8.7, 0.875,
                       "https://dl.fbaipublicfiles.com/convnext/convnext_small_1k_224_ema.pth"),
    "convnext_base": ((3, 3, 27, 3), (128, 256, 512, 1024), 88.6, 15.4, 0.875,
                      "https://dl.fbaipublicfiles.com/convnext/convnext_base_1k_224_ema.pth"),
}


def _create_convnext(**kwargs) -> ConvNeXt:
    return ConvNeXt(**kwargs)


for _name, (_depths, _dims, _params, _gflops, _crop, _src) in _CONFIGS.items():
    register_model(
        ModelInfo(
            name=_name, family="convnext", paper=_PAPER + (_TIMM if _name in ("convnext_atto", "convnext_femto",
                                                                            "convnext_pico", "convnext_nano") else ""),
            params_m=_params, gflops=_gflops, interpolation="bicubic", crop_pct=_crop, classifier="head",
            weights_source=_src, kwargs={"depths": _depths, "dims": _dims},
        ),
        _create_convnext,
        remap_state_dict=remap_timm_state_dict,
    )


# A narrow ConvNeXt for tests (timm's ``test_*`` habit), trained in seconds on the bundled
# digits (``edgevis.catalog.training``): every part of the full model (stem, blocks with
# layer scale, the three LayerNorm + conv downsamplings, the final norm and head) at
# 64x64, where the last stage sees a 2x2 map. Figures are our own counts (GMACs).
register_model(
    ModelInfo(
        name="test_convnext", family="convnext", paper=_PAPER + "; reduced test configuration",
        params_m=0.114, gflops=0.0026, input_size=(64, 64), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
        interpolation="bicubic", crop_pct=1.0, num_classes=10, classifier="head",
        weights_source="none published; train with python -m edgevis.catalog.training --model test_convnext",
        fixture=True, kwargs={"depths": (1, 1, 2, 1), "dims": (16, 32, 48, 64)},
    ),
    _create_convnext,
    remap_state_dict=remap_timm_state_dict,
)
