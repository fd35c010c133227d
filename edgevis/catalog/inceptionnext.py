"""InceptionNeXt: "InceptionNeXt: When Inception Meets ConvNeXt" (Yu et al., CVPR 2024).

Written from the paper and the official implementation (github sail-sg/inceptionnext):
a ConvNeXt-like MetaNeXt network whose token mixer splits the channels four ways
(identity, 3x3 depthwise, 1xk and kx1 band depthwise convs, k = 11), followed by
BatchNorm, a 1x1-conv GELU MLP and layer scale ``gamma``; BatchNorm + 2x2 stride-2
conv between stages; mean pool, MLP head (Linear 3C, GELU, LayerNorm, Linear).

Names follow the OFFICIAL checkpoints (``inceptionnext_tiny.pth``, a bare state dict),
which timm's ``inception_next.py`` shares::

    stem.{0: conv, 1: bn}
    stages.{i}.downsample.{0: bn, 1: conv}          (i >= 1)
    stages.{i}.blocks.{j}.token_mixer.dwconv_hw / dwconv_w / dwconv_h, norm (bn),
        mlp.fc1 / mlp.fc2 (1x1 convs), gamma
    head.fc1 / head.norm / head.fc2

Deploy form (:func:`edgevis.catalog.reparameterize`): every BatchNorm is folded into a
convolution: the stem's into its conv, each block's into ``mlp.fc1`` (BN then 1x1 conv),
each downsampling's into its unpadded 2x2 conv. No BatchNorm is left in the graph.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .layers.conv_bn import fuse_conv_bn
from .registry import ModelInfo, register_model
from .layers.init import trunc_normal_init

# --------------------------------------------------------------------------- folding


@torch.no_grad()
def fuse_bn_conv(bn: nn.BatchNorm2d, conv: nn.Conv2d) -> nn.Conv2d:
    """A single Conv2d equal to ``conv(bn(x))`` in eval mode, for an UNPADDED ``conv`` (with padding,
    the zeros it adds would pass through the BN shift at the borders)."""
    if any(p != 0 for p in conv.padding) or conv.groups != 1:  # type: ignore[union-attr]
        raise ValueError("BatchNorm folds into a following conv only when it has no padding and no groups")
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, bias=True,
                      device=conv.weight.device, dtype=conv.weight.dtype)
    fused.weight.copy_(conv.weight * scale[None, :, None, None])
    bias = (conv.weight * shift[None, :, None, None]).sum((1, 2, 3))
    fused.bias.copy_(bias + (conv.bias if conv.bias is not None else 0))
    return fused


class ConvBN(nn.Sequential):
    """``0``: conv, ``1``: BatchNorm (the stem); deploy form: one conv."""

    def fuse(self) -> nn.Conv2d:
        return fuse_conv_bn(self[0], self[1])


class BNConv(nn.Sequential):
    """``0``: BatchNorm, ``1``: unpadded conv (a downsampling); deploy form: one conv."""

    def fuse(self) -> nn.Conv2d:
        return fuse_bn_conv(self[0], self[1])


# --------------------------------------------------------------------------- blocks


class InceptionDWConv2d(nn.Module):
    """Channels split (identity, 3x3, 1xk, kx1); the three conv branches get ``branch_ratio`` each."""

    def __init__(self, dim: int, square_kernel_size: int = 3, band_kernel_size: int = 11, branch_ratio: float = 0.125):
        super().__init__()
        gc = int(dim * branch_ratio)
        self.dwconv_hw = nn.Conv2d(gc, gc, square_kernel_size, padding=square_kernel_size // 2, groups=gc)
        self.dwconv_w = nn.Conv2d(gc, gc, (1, band_kernel_size), padding=(0, band_kernel_size // 2), groups=gc)
        self.dwconv_h = nn.Conv2d(gc, gc, (band_kernel_size, 1), padding=(band_kernel_size // 2, 0), groups=gc)
        self.split_indexes = (dim - 3 * gc, gc, gc, gc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_id, x_hw, x_w, x_h = torch.split(x, self.split_indexes, dim=1)
        return torch.cat((x_id, self.dwconv_hw(x_hw), self.dwconv_w(x_w), self.dwconv_h(x_h)), dim=1)


class ConvMlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MetaNeXtBlock(nn.Module):
    """mixer -> BatchNorm -> MLP -> gamma, + x. Deploy form: the BatchNorm folded into ``mlp.fc1``."""

    def __init__(self, dim: int, mlp_ratio: int, band_kernel_size: int, branch_ratio: float,
                 ls_init_value: float = 1e-6) -> None:
        super().__init__()
        self.token_mixer = InceptionDWConv2d(dim, band_kernel_size=band_kernel_size, branch_ratio=branch_ratio)
        self.norm: nn.Module = nn.BatchNorm2d(dim)
        self.mlp = ConvMlp(dim, mlp_ratio * dim)
        self.gamma = nn.Parameter(ls_init_value * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(self.token_mixer(x))) * self.gamma.reshape(1, -1, 1, 1)

    def fuse(self) -> "MetaNeXtBlock":
        if isinstance(self.norm, nn.BatchNorm2d):
            self.mlp.fc1 = fuse_bn_conv(self.norm, self.mlp.fc1)
            self.norm = nn.Identity()
        return self


class MetaNeXtStage(nn.Module):
    def __init__(self, cin: int, cout: int, downsample: bool, depth: int, mlp_ratio: int, band: int, ratio: float):
        super().__init__()
        self.downsample: nn.Module = BNConv(nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 2, stride=2)) if downsample \
            else nn.Identity()
        self.blocks = nn.Sequential(*[MetaNeXtBlock(cout, mlp_ratio, band, ratio) for _ in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.downsample(x))


class MlpHead(nn.Module):
    def __init__(self, dim: int, num_classes: int, mlp_ratio: int = 3) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, mlp_ratio * dim)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(mlp_ratio * dim, eps=1e-6)
        self.fc2 = nn.Linear(mlp_ratio * dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.norm(self.act(self.fc1(x.mean((2, 3))))))


# --------------------------------------------------------------------------- model


class InceptionNeXt(nn.Module):
    def __init__(
        self,
        depths: Sequence[int] = (3, 3, 9, 3),
        dims: Sequence[int] = (96, 192, 384, 768),
        mlp_ratios: Sequence[int] = (4, 4, 4, 3),
        band_kernel_size: int = 11,
        branch_ratio: float = 0.125,
        in_chans: int = 3,
        num_classes: int = 1000,
        img_size: tuple[int, int] = (224, 224),
    ) -> None:
        super().__init__()
        del img_size  # fully convolutional
        self.stem = ConvBN(nn.Conv2d(in_chans, dims[0], 4, stride=4), nn.BatchNorm2d(dims[0]))
        chans = [dims[0]] + list(dims)
        self.stages = nn.Sequential(*[
            MetaNeXtStage(chans[i], dims[i], i > 0, depths[i], mlp_ratios[i], band_kernel_size, branch_ratio)
            for i in range(len(dims))
        ])
        self.head = MlpHead(dims[-1], num_classes)
        self.num_classes = num_classes
        self.num_features = dims[-1]
        trunc_normal_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


# --------------------------------------------------------------------------- registry

_PAPER = "Yu et al. 2024, InceptionNeXt: When Inception Meets ConvNeXt (CVPR 2024, arXiv:2303.16900)"
_URL = "https://github.com/sail-sg/inceptionnext/releases/download/model"
_CONFIGS = {
    # name: (depths, dims, band kernel, branch ratio, params_m, gmacs) - official README / paper Table 3
    "inceptionnext_atto": ((2, 2, 6, 2), (40, 80, 160, 320), 9, 0.25, 4.2, 0.51),
    "inceptionnext_tiny": ((3, 3, 9, 3), (96, 192, 384, 768), 11, 0.125, 28.1, 4.2),
    "inceptionnext_small": ((3, 3, 27, 3), (96, 192, 384, 768), 11, 0.125, 49.4, 8.4),
    "inceptionnext_base": ((3, 3, 27, 3), (128, 256, 512, 1024), 11, 0.125, 86.7, 14.9),
}


def _create_inceptionnext(**kwargs) -> InceptionNeXt:
    return InceptionNeXt(**kwargs)


for _name, (_depths, _dims, _band, _ratio, _params, _gmacs) in _CONFIGS.items():
    register_model(
        ModelInfo(
            name=_name, family="inceptionnext", paper=_PAPER, params_m=_params, gflops=_gmacs,
            interpolation="bicubic", crop_pct=0.875, classifier="head.fc2",
            weights_source=f"{_URL}/{_name}.pth",
            kwargs={"depths": _depths, "dims": _dims, "band_kernel_size": _band, "branch_ratio": _ratio},
        ),
        _create_inceptionnext,
    )
