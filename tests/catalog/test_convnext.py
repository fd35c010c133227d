"""ConvNeXt: official names and shapes, channels-first LayerNorm, timm-layout checkpoints."""

import re

import pytest
import torch

from edgevis.catalog import create_model, reparameterize
from edgevis.catalog.layers.norm import LayerNorm2d
from edgevis.core.errors import WeightsError


def _randomize(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for v in model.state_dict().values():
            v.copy_(torch.randn(v.shape, generator=g) * 0.2 + (1.0 if v.ndim == 1 else 0.0))
    return model.eval()


def _meta(name):
    """Built on the meta device: names and shapes without initializing the parameters."""
    with torch.device("meta"):
        return create_model(name)


def test_official_names_and_shapes():
    sd = _meta("convnext_tiny").state_dict()
    # facts from the official code: 4x4 stride-4 stem + channels-first LN; LN then 2x2 conv between stages;
    # blocks: 7x7 depthwise, Linear 4x, layer scale gamma; final LN and head
    assert sd["downsample_layers.0.0.weight"].shape == (96, 3, 4, 4)
    assert sd["downsample_layers.0.1.weight"].shape == (96,)
    assert sd["downsample_layers.1.0.bias"].shape == (96,)
    assert sd["downsample_layers.3.1.weight"].shape == (768, 384, 2, 2)
    assert sd["stages.2.8.dwconv.weight"].shape == (384, 1, 7, 7)
    assert sd["stages.2.8.pwconv1.weight"].shape == (1536, 384)
    assert sd["stages.3.2.gamma"].shape == (768,)
    assert sd["norm.weight"].shape == (768,) and sd["head.weight"].shape == (1000, 768)
    assert not any(k.startswith("stages.2.9.") for k in sd)
    assert len(_meta("convnext_small").stages[2]) == 27


def test_channels_first_layernorm_is_the_official_formula():
    ln = LayerNorm2d(5)
    with torch.no_grad():
        ln.weight.copy_(torch.randn(5))
        ln.bias.copy_(torch.randn(5))
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64) * 3 + 1
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    ref = ln.weight.double()[:, None, None] * (x - u) / torch.sqrt(s + 1e-6) + ln.bias.double()[:, None, None]
    torch.testing.assert_close(ln.double()(x), ref, atol=1e-12, rtol=0)
    assert "bias" not in LayerNorm2d(5, bias=False).state_dict()


def _to_timm(sd, conv_mlp):
    """Official -> timm names, spelled out key by key (the inverse of what the loader must do)."""
    out = {}
    for k, v in sd.items():
        m = re.match(r"downsample_layers\.(\d+)\.(\d+)\.(.*)", k)
        if m:
            i, j, rest = m.groups()
            k = f"stem.{j}.{rest}" if i == "0" else f"stages.{i}.downsample.{j}.{rest}"
        m = re.match(r"stages\.(\d+)\.(\d+)\.(\w+)\.?(.*)", k)
        if m:
            i, j, part, rest = m.groups()
            part = {"dwconv": "conv_dw", "pwconv1": "mlp.fc1", "pwconv2": "mlp.fc2"}.get(part, part)
            k = f"stages.{i}.blocks.{j}.{part}" + (f".{rest}" if rest else "")
            if conv_mlp and part.startswith("mlp.") and v.ndim == 2:
                v = v[:, :, None, None]
        if k.startswith("norm."):
            k = "head." + k
        elif k.startswith("head."):
            k = "head.fc." + k[5:]
        out[k] = v
    return out


@pytest.mark.parametrize("conv_mlp", [True, False])
def test_timm_and_official_checkpoints_load_strict_with_the_same_outputs(tmp_path, conv_mlp):
    ref = _randomize(create_model("test_convnext"))
    sd = ref.state_dict()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        y = ref(x)
    torch.save({"model": sd}, tmp_path / "official.pth")
    torch.save(sd, tmp_path / "bare.pth")
    timm_sd = _to_timm(sd, conv_mlp)
    assert "stem.0.weight" in timm_sd and "head.fc.weight" in timm_sd and "stages.1.downsample.1.weight" in timm_sd
    torch.save({"state_dict": timm_sd}, tmp_path / "timm.pth")
    for f in ("official.pth", "bare.pth", "timm.pth"):
        m = create_model("test_convnext", weights=tmp_path / f)
        with torch.no_grad():
            assert torch.equal(m(x), y), f


def test_deploy_form_equals_eval_mode():
    m = _randomize(create_model("convnext_atto", input_size=(64, 64)))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        y = m(x)
        d = reparameterize(m)
        torch.testing.assert_close(d(x), y, atol=1e-4, rtol=0)
    # the layer scales went into pwconv2
    assert all(b.gamma is None for stage in d.stages for b in stage)
    assert not any(k.endswith("gamma") for k in d.state_dict())


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    torch.save({"model": create_model("test_lsnet").state_dict()}, tmp_path / "lsnet.pth")
    with pytest.raises(WeightsError, match=r"another architecture.*missing \(e\.g\. downsample_layers"):
        create_model("test_convnext", weights=tmp_path / "lsnet.pth")
    torch.save({"model": create_model("convnext_atto").state_dict()}, tmp_path / "atto.pth")
    with pytest.raises(WeightsError, match=r"other shapes"):
        create_model("convnext_femto", weights=tmp_path / "atto.pth")
