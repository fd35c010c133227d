"""MetaFormer baselines: PoolFormer (v1), PoolFormerV2, ConvFormer and CAFormer.

Yu et al. 2022, "MetaFormer Is Actually What You Need for Vision" (CVPR 2022,
PoolFormer, github sail-sg/poolformer) and Yu et al. 2023, "MetaFormer Baselines
for Vision" (TPAMI, arXiv:2210.13452, github sail-sg/metaformer). Written from
the papers and the official code: a MetaFormer block is
``x = x + mixer(norm1(x)); x = x + mlp(norm2(x))`` with a per-family token mixer
(3x3 average pooling minus identity, an inverted separable 7x7 conv, or
self-attention), StarReLU ``s * relu(x)**2 + b`` in the MLPs of the v2
baselines and a Squared-ReLU MLP head for ConvFormer / CAFormer.

Names follow the OFFICIAL checkpoints:

* v1 (``poolformer_s12.pth.tar``): ``patch_embed.proj``, ``network.{0,2,4,6}.{j}``
  (blocks: ``norm1``, ``norm2``, ``mlp.fc1``/``fc2`` 1x1 convs, ``layer_scale_1``/``_2``),
  ``network.{1,3,5}.proj`` (downsampling), ``norm`` (GroupNorm), ``head``.
* v2 (``convformer_s18.pth``...): ``downsample_layers.{i}.{pre_norm,conv,post_norm}``,
  ``stages.{i}.{j}.{norm1,token_mixer.*,res_scale1.scale,norm2,mlp.*}``, ``norm``,
  ``head`` (Linear) or ``head.{fc1,norm,fc2}`` (MLP head).

timm's ``metaformer.py`` layout (``stem.*``, ``stages.{i}.downsample.*``,
``stages.{i}.blocks.{j}``, ``head.fc``, ``head.norm``) is converted by
:func:`remap_timm_state_dict`.

Export notes: the v1/v2 blocks run channels-first / channels-last as the official
code does; normalizations are single ``LayerNormalization`` (or GroupNorm's
``InstanceNormalization``) nodes; StarReLU and Squared ReLU square as ``r * r``;
attention reshapes use the static token count of the built input size.
"""

from __future__ import annotations

import re
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layers.norm import LayerNormLast
from .registry import ModelInfo, register_model
from .layers.init import trunc_normal_init

# --------------------------------------------------------------------------- layers


class StarReLU(nn.Module):
    """``scale * relu(x)**2 + bias`` with learnable scalars (``scale``, ``bias`` of shape (1,))."""

    def __init__(self, scale_value: float = 1.0, bias_value: float = 0.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(scale_value * torch.ones(1))
        self.bias = nn.Parameter(bias_value * torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = F.relu(x)
        return self.scale * (r * r) + self.bias


class SquaredReLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = F.relu(x)
        return r * r


class Scale(nn.Module):
    """Per-channel scale on the last axis (``scale``), the v2 baselines' res scale."""

    def __init__(self, dim: int, init_value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(init_value * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class ModifiedLayerNorm(nn.Module):
    """Normalize over (H, W, C) of a channels-last map, per-channel ``weight``, no bias
    (the v2 baselines' ``LayerNormGeneral(normalized_dim=(1, 2, 3), bias=False)``)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, tuple(x.shape[1:]), eps=self.eps) * self.weight


class Pooling(nn.Module):
    """``avgpool3x3(x) - x``; the average counts only pixels inside the map (``count_include_pad=False``)."""

    def __init__(self, pool_size: int = 3, channels_last: bool = False) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(pool_size, stride=1, padding=pool_size // 2, count_include_pad=False)
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            return self.pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1) - x
        return self.pool(x) - x


class SepConv(nn.Module):
    """Inverted separable conv on channels-last maps: Linear 2C, StarReLU, 7x7 depthwise, Linear C."""

    def __init__(self, dim: int, expansion_ratio: int = 2, kernel_size: int = 7) -> None:
        super().__init__()
        med = int(expansion_ratio * dim)
        self.pwconv1 = nn.Linear(dim, med, bias=False)
        self.act1 = StarReLU()
        self.dwconv = nn.Conv2d(med, med, kernel_size, padding=kernel_size // 2, groups=med, bias=False)
        self.pwconv2 = nn.Linear(med, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.pwconv1(x)).permute(0, 3, 1, 2)
        return self.pwconv2(self.dwconv(x).permute(0, 2, 3, 1))


class Attention(nn.Module):
    """Multi-head self-attention over the tokens of a (B, H, W, C) map of a fixed size, no biases."""

    def __init__(self, dim: int, resolution: tuple[int, int], head_dim: int = 32) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.num_heads = max(1, dim // head_dim)
        self.scale = head_dim**-0.5
        self.attention_dim = self.num_heads * head_dim
        self.resolution = resolution
        self.qkv = nn.Linear(dim, self.attention_dim * 3, bias=False)
        self.proj = nn.Linear(self.attention_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (h, w), nh, hd = self.resolution, self.num_heads, self.head_dim
        qkv = self.qkv(x).reshape(-1, h * w, 3, nh, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (torch.matmul(q, k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        x = torch.matmul(attn, v).transpose(1, 2).reshape(-1, h, w, self.attention_dim)
        return self.proj(x)


class Mlp(nn.Module):
    """Linear -> StarReLU -> Linear on channels-last maps, no biases (v2 baselines)."""

    def __init__(self, dim: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, mlp_ratio * dim, bias=False)
        self.act = StarReLU()
        self.fc2 = nn.Linear(mlp_ratio * dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class MlpHead(nn.Module):
    """Classifier of ConvFormer / CAFormer: Linear 4C, Squared ReLU, LayerNorm (eps 1e-5), Linear."""

    def __init__(self, dim: int, num_classes: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, mlp_ratio * dim)
        self.act = SquaredReLU()
        self.norm = nn.LayerNorm(mlp_ratio * dim)
        self.fc2 = nn.Linear(mlp_ratio * dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.norm(self.act(self.fc1(x))))


# --------------------------------------------------------------------------- v2 baselines


class MetaFormerBlock(nn.Module):
    def __init__(self, dim: int, mixer: str, resolution: tuple[int, int], res_scale: bool) -> None:
        super().__init__()
        pool = mixer == "pool"
        norm = (lambda: ModifiedLayerNorm(dim)) if pool else (lambda: LayerNormLast(dim, 1e-6, bias=False))
        self.norm1 = norm()
        self.token_mixer = {"pool": lambda: Pooling(3, channels_last=True), "sepconv": lambda: SepConv(dim),
                            "attention": lambda: Attention(dim, resolution)}[mixer]()
        self.res_scale1 = Scale(dim) if res_scale else nn.Identity()
        self.norm2 = norm()
        self.mlp = Mlp(dim)
        self.res_scale2 = Scale(dim) if res_scale else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res_scale1(x) + self.token_mixer(self.norm1(x))
        return self.res_scale2(x) + self.mlp(self.norm2(x))


class Downsampling(nn.Module):
    """Conv between stages on channels-last maps: ``pre_norm`` (stages 1-3) or ``post_norm`` (the stem)."""

    def __init__(self, cin: int, cout: int, stem: bool) -> None:
        super().__init__()
        k, s, p = (7, 4, 2) if stem else (3, 2, 1)
        self.pre_norm = nn.Identity() if stem else LayerNormLast(cin, 1e-6, bias=False)
        self.conv = nn.Conv2d(cin, cout, k, stride=s, padding=p)
        self.post_norm = LayerNormLast(cout, 1e-6, bias=False) if stem else nn.Identity()
        self.stem = stem

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre_norm(x)
        if not self.stem:
            x = x.permute(0, 3, 1, 2)
        return self.post_norm(self.conv(x).permute(0, 2, 3, 1))


def _stage_resolutions(img_size: tuple[int, int], stages: int) -> list[tuple[int, int]]:
    h, w = (img_size[0] + 4 - 7) // 4 + 1, (img_size[1] + 4 - 7) // 4 + 1
    out = [(h, w)]
    for _ in range(stages - 1):
        h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        out.append((h, w))
    return out


class MetaFormer(nn.Module):
    """PoolFormerV2 / ConvFormer / CAFormer: ``mixers`` names the token mixer of each stage."""

    def __init__(
        self,
        depths: Sequence[int] = (2, 2, 6, 2),
        dims: Sequence[int] = (64, 128, 320, 512),
        mixers: Sequence[str] = ("pool",) * 4,
        mlp_head: bool = False,
        res_scale_stages: Sequence[bool] = (False, False, True, True),
        in_chans: int = 3,
        num_classes: int = 1000,
        img_size: tuple[int, int] = (224, 224),
    ) -> None:
        super().__init__()
        img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        res = _stage_resolutions(img_size, len(dims))  # type: ignore[arg-type]
        down = [in_chans] + list(dims)
        self.downsample_layers = nn.ModuleList([Downsampling(down[i], down[i + 1], i == 0) for i in range(len(dims))])
        self.stages = nn.ModuleList(
            [nn.Sequential(*[MetaFormerBlock(dims[i], mixers[i], res[i], res_scale_stages[i]) for _ in range(depths[i])])
             for i in range(len(dims))]
        )
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head: nn.Module = MlpHead(dims[-1], num_classes) if mlp_head else nn.Linear(dims[-1], num_classes)
        self.num_classes = num_classes
        self.num_features = dims[-1]
        trunc_normal_init(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.norm(x.mean((1, 2)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


# --------------------------------------------------------------------------- v1 PoolFormer


class PoolFormerBlock(nn.Module):
    """Channels-first: GroupNorm(1), pooling, 1x1-conv GELU MLP, layer scales ``layer_scale_1``/``_2``."""

    def __init__(self, dim: int, layer_scale_init_value: float = 1e-5, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(1, dim)
        self.token_mixer = Pooling(3)
        self.norm2 = nn.GroupNorm(1, dim)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Conv2d(dim, mlp_ratio * dim, 1)
        self.mlp.act = nn.GELU()
        self.mlp.fc2 = nn.Conv2d(mlp_ratio * dim, dim, 1)
        self.layer_scale_1 = nn.Parameter(layer_scale_init_value * torch.ones(dim))
        self.layer_scale_2 = nn.Parameter(layer_scale_init_value * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.layer_scale_1[:, None, None] * self.token_mixer(self.norm1(x))
        mlp = self.mlp
        return x + self.layer_scale_2[:, None, None] * mlp.fc2(mlp.act(mlp.fc1(self.norm2(x))))


class PatchEmbed(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, s: int, p: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cin, cout, k, stride=s, padding=p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class PoolFormer(nn.Module):
    def __init__(
        self,
        depths: Sequence[int] = (2, 2, 6, 2),
        dims: Sequence[int] = (64, 128, 320, 512),
        layer_scale_init_value: float = 1e-5,
        in_chans: int = 3,
        num_classes: int = 1000,
        img_size: tuple[int, int] = (224, 224),
    ) -> None:
        super().__init__()
        del img_size  # fully convolutional
        self.patch_embed = PatchEmbed(in_chans, dims[0], 7, 4, 2)
        network: list[nn.Module] = []
        for i in range(len(dims)):
            network.append(nn.Sequential(*[PoolFormerBlock(dims[i], layer_scale_init_value) for _ in range(depths[i])]))
            if i < len(dims) - 1:
                network.append(PatchEmbed(dims[i], dims[i + 1], 3, 2, 1))
        self.network = nn.ModuleList(network)
        self.norm = nn.GroupNorm(1, dims[-1])
        self.head = nn.Linear(dims[-1], num_classes)
        self.num_classes = num_classes
        self.num_features = dims[-1]
        trunc_normal_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for block in self.network:
            x = block(x)
        return self.head(self.norm(x).mean((-2, -1)))


# --------------------------------------------------------------------------- timm layout


def remap_timm_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm ``metaformer.py`` checkpoint -> official names; official checkpoints pass through unchanged.

    timm keeps one layout for v1 and v2 (``stem``, ``stages.{i}.downsample``, ``stages.{i}.blocks.{j}``,
    ``head.norm``, ``head.fc``); a v1 checkpoint is recognised by its ``layer_scale1`` parameters and
    goes back to ``network.{2i}`` / ``network.{2i-1}.proj`` with 1x1-conv MLP weights.
    """
    if "stem.conv.weight" not in sd:
        return sd
    v1 = any(".layer_scale1." in k for k in sd)
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        k = re.sub(r"^head\.norm\.", "norm.", k)
        k = re.sub(r"^head\.fc\.", "head.", k)  # Linear head -> head.*, MLP head head.fc.fc1 -> head.fc1
        if v1:
            k = k.replace("stem.conv.", "patch_embed.proj.")
            k = re.sub(r"^stages\.(\d+)\.downsample\.conv\.", lambda m: f"network.{2 * int(m[1]) - 1}.proj.", k)
            k = re.sub(r"^stages\.(\d+)\.blocks\.", lambda m: f"network.{2 * int(m[1])}.", k)
            k = re.sub(r"\.layer_scale(\d)\.scale$", r".layer_scale_\1", k)
            if re.search(r"\.mlp\.fc\d\.weight$", k) and v.ndim == 2:
                v = v[:, :, None, None]
        else:
            k = k.replace("stem.conv.", "downsample_layers.0.conv.").replace("stem.norm.", "downsample_layers.0.post_norm.")
            k = re.sub(r"^stages\.(\d+)\.downsample\.conv\.", r"downsample_layers.\1.conv.", k)
            k = re.sub(r"^stages\.(\d+)\.downsample\.norm\.", r"downsample_layers.\1.pre_norm.", k)
            k = re.sub(r"^stages\.(\d+)\.blocks\.", r"stages.\1.", k)
            if v.ndim == 4 and v.shape[2:] == (1, 1) and re.search(r"\.(mlp\.fc\d|pwconv\d)\.weight$", k):
                v = v.reshape(v.shape[0], v.shape[1])
        out[k] = v
    return out


# --------------------------------------------------------------------------- registry

_PAPER_V1 = "Yu et al. 2022, MetaFormer Is Actually What You Need for Vision (CVPR 2022, arXiv:2111.11418)"
_PAPER_V2 = "Yu et al. 2023, MetaFormer Baselines for Vision (TPAMI, arXiv:2210.13452)"
_HF = "https://huggingface.co/sail/dl/resolve/main"
_V1_URL = "https://github.com/sail-sg/poolformer/releases/download/v1.0"

_S = (64, 128, 320, 512)
_M = (96, 192, 384, 768)
# name: (family, kwargs, params_m, gmacs, crop_pct, weights) - figures: official READMEs / paper tables
_CONFIGS: dict[str, tuple[str, dict, float, float, float, str]] = {
    "poolformer_s12": ("poolformer", {"depths": (2, 2, 6, 2), "dims": _S}, 11.9, 1.8, 0.9, f"{_V1_URL}/poolformer_s12.pth.tar"),
    "poolformer_s24": ("poolformer", {"depths": (4, 4, 12, 4), "dims": _S}, 21.4, 3.4, 0.9, f"{_V1_URL}/poolformer_s24.pth.tar"),
    "poolformer_s36": ("poolformer", {"depths": (6, 6, 18, 6), "dims": _S, "layer_scale_init_value": 1e-6}, 30.9, 5.0,
                       0.9, f"{_V1_URL}/poolformer_s36.pth.tar"),
    "poolformer_m36": ("poolformer", {"depths": (6, 6, 18, 6), "dims": _M, "layer_scale_init_value": 1e-6}, 56.2, 8.8,
                       0.95, f"{_V1_URL}/poolformer_m36.pth.tar"),
    "poolformer_m48": ("poolformer", {"depths": (8, 8, 24, 8), "dims": _M, "layer_scale_init_value": 1e-6}, 73.5, 11.6,
                       0.95, f"{_V1_URL}/poolformer_m48.pth.tar"),
}
for _n, _d, _dims, _p, _g in (("s12", (2, 2, 6, 2), _S, 11.9, 1.8), ("s24", (4, 4, 12, 4), _S, 21.3, 3.4),
                              ("s36", (6, 6, 18, 6), _S, 30.8, 5.0), ("m36", (6, 6, 18, 6), _M, 56.1, 8.8),
                              ("m48", (8, 8, 24, 8), _M, 73.3, 11.5)):
    _CONFIGS[f"poolformerv2_{_n}"] = ("poolformerv2", {"depths": _d, "dims": _dims}, _p, _g, 1.0,
                                      f"{_HF}/poolformerv2/poolformerv2_{_n}.pth")
for _fam, _mix, _figs in (
    ("convformer", ("sepconv",) * 4, {"s18": (26.8, 3.9), "s36": (40.0, 7.6), "m36": (57.1, 12.8), "b36": (99.9, 22.6)}),
    ("caformer", ("sepconv", "sepconv", "attention", "attention"),
     {"s18": (26.3, 4.1), "s36": (39.3, 8.0), "m36": (56.2, 13.2), "b36": (98.8, 23.2)}),
):
    for _n, (_p, _g) in _figs.items():
        _d = (3, 3, 9, 3) if _n == "s18" else (3, 12, 18, 3)
        _dims = {"s": _S, "m": (96, 192, 384, 576), "b": (128, 256, 512, 768)}[_n[0]]
        _CONFIGS[f"{_fam}_{_n}"] = (_fam, {"depths": _d, "dims": _dims, "mixers": _mix, "mlp_head": True}, _p, _g, 1.0,
                                    f"{_HF}/{_fam}/{_fam}_{_n}.pth")


def _create_metaformer(**kwargs) -> MetaFormer:
    return MetaFormer(**kwargs)


def _create_poolformer(**kwargs) -> PoolFormer:
    return PoolFormer(**kwargs)


for _name, (_fam, _kw, _params, _gmacs, _crop, _src) in _CONFIGS.items():
    register_model(
        ModelInfo(
            name=_name, family=_fam, paper=_PAPER_V1 if _fam == "poolformer" else _PAPER_V2, params_m=_params,
            gflops=_gmacs, interpolation="bicubic", crop_pct=_crop, classifier="head.fc2" if _kw.get("mlp_head") else "head",
            weights_source=_src, kwargs=_kw,
        ),
        _create_poolformer if _fam == "poolformer" else _create_metaformer,
        remap_state_dict=remap_timm_state_dict,
    )


# Narrow MetaFormers for tests (timm's ``test_*`` habit), trained in seconds on the bundled digits
# (``edgevis.catalog.training``): one block per stage at 64x64 (stage maps 16, 8, 4, 2), every part of
# the full models (stem with post-norm, pre-norm downsamplings, res scales in stages 3-4, StarReLU MLPs;
# ConvFormer's separable convs and MLP head; PoolFormerV2's pooling and whole-map LayerNorm).
# Figures are our own counts (GMACs).
for _name, _fam, _kw, _params, _gmacs in (
    ("test_convformer", "convformer", {"mixers": ("sepconv",) * 4, "mlp_head": True}, 0.177, 0.0042),
    ("test_poolformerv2", "poolformerv2", {}, 0.111, 0.0027),
):
    register_model(
        ModelInfo(
            name=_name, family=_fam, paper=_PAPER_V2 + "; reduced test configuration", params_m=_params,
            gflops=_gmacs, input_size=(64, 64), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bicubic",
            crop_pct=1.0, num_classes=10, classifier="head.fc2" if _kw.get("mlp_head") else "head",
            weights_source=f"none published; train with python -m edgevis.catalog.training --model {_name}",
            fixture=True, kwargs={"depths": (1, 1, 1, 1), "dims": (16, 32, 48, 64), **_kw},
        ),
        _create_metaformer,
        remap_state_dict=remap_timm_state_dict,
    )
