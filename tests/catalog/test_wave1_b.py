"""Catalog wave 1, part B (CAS-ViT, HorNet, MogaNet, FocalNet): what the registry test does not cover.

Official-layout checkpoints load with strict=True through ``create_model(weights=...)``,
the deploy form computes what eval mode computes, and a checkpoint of another
architecture gets the clear error. Smallest variants, small inputs (the models are
fully convolutional, or built for the size asked), random weights with perturbed
BatchNorm statistics so that folding is really exercised.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgevis.catalog import create_model
from edgevis.catalog.factory import reparameterize
from edgevis.core.errors import WeightsError

SIZE = 64


def _perturb(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random BatchNorm statistics and parameters away from their init (layer scales of 1e-6
    and zero BatchNorm shifts would hide mistakes)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def _x(n: int = 2, size: int = SIZE) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1))


# ------------------------------------------------------------------------------ CAS-ViT


def test_casvit_training_script_checkpoint_loads_strict_and_equals_single_head(tmp_path):
    ref = _perturb(create_model("casvit_xs", input_size=(SIZE, SIZE)))
    sd = {k: v for k, v in ref.state_dict().items() if not k.startswith("dist_head.")}
    path = tmp_path / "rcvit_xs.pth"
    torch.save({"model": sd, "epoch": 299}, path)
    model = create_model("casvit_xs", weights=path, input_size=(SIZE, SIZE))
    x = _x()
    with torch.no_grad():
        want = ref.head(ref.forward_features(x))  # the training script's model has only ``head``
        torch.testing.assert_close(model(x), want, rtol=0, atol=1e-5)
    # the official constructor's layout (with dist_head), bare, loads as it is
    torch.save(ref.state_dict(), tmp_path / "bare.pth")
    model = create_model("casvit_xs", weights=tmp_path / "bare.pth", input_size=(SIZE, SIZE))
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=0, atol=0)


def test_casvit_deploy_form_has_no_batchnorm_and_equals_eval():
    model = _perturb(create_model("casvit_xs", input_size=(SIZE, SIZE)))
    x = _x()
    with torch.no_grad():
        want = model(x)
        dep = reparameterize(model)
        got = dep(x)
    assert not [m for m in dep.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    assert not hasattr(dep, "dist_head")
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)


# ------------------------------------------------------------------------------ HorNet, MogaNet, FocalNet


@pytest.mark.parametrize("name,key", [("hornet_tiny_7x7", "model"), ("moganet_xtiny", "state_dict"),
                                      ("focalnet_tiny_srf", "model")])
def test_official_layout_checkpoint_loads_strict(tmp_path, name, key):
    """The official checkpoints' names, under the key each repository saves them under."""
    ref = _perturb(create_model(name, input_size=(SIZE, SIZE)))
    path = tmp_path / f"{name}.pth"
    torch.save({key: ref.state_dict()}, path)
    model = create_model(name, weights=path, input_size=(SIZE, SIZE))
    x = _x()
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=0, atol=0)


def test_hornet_has_the_official_gnconv_orders():
    with torch.device("meta"):  # structure only
        model = create_model("hornet_tiny_7x7", input_size=(SIZE, SIZE))
    assert [s[0].gnconv.order for s in model.stages] == [2, 3, 4, 5]
    assert [s[0].gnconv.dims for s in model.stages] == [[32, 64], [32, 64, 128], [32, 64, 128, 256],
                                                         [32, 64, 128, 256, 512]]
    sd = model.state_dict()
    assert tuple(sd["stages.3.0.gnconv.dwconv.weight"].shape) == (992, 1, 7, 7)
    assert "stages.3.0.gnconv.pws.3.weight" in sd and "stages.0.0.gamma1" in sd


def _spectral_filter_reference(x2: torch.Tensor, complex_weight: torch.Tensor) -> torch.Tensor:
    """The global filter as HorNet's paper writes it: rfft2 (ortho), times the learned complex
    weight (bilinearly resized to the spectrum, corners aligned), irfft2 (ortho)."""
    import torch.nn.functional as F

    a, b = x2.shape[-2:]
    spec = torch.fft.rfft2(x2, dim=(2, 3), norm="ortho")
    w = complex_weight
    if tuple(w.shape[1:3]) != tuple(spec.shape[2:4]):
        w = F.interpolate(w.permute(3, 0, 1, 2), size=spec.shape[2:4], mode="bilinear", align_corners=True)
        w = w.permute(1, 2, 3, 0)
    return torch.fft.irfft2(spec * torch.view_as_complex(w.contiguous()), s=(a, b), dim=(2, 3), norm="ortho")


@pytest.mark.parametrize("size", [224, 64])
def test_hornet_global_filter_equals_the_fft(size):
    """At 224 the learned 14x8 spectrum is used as it is; at 64 (a 4x4 map) it is resized."""
    from edgevis.catalog.hornet import GlobalLocalFilter

    a = size // 16
    gf = GlobalLocalFilter(32, h=14, w=8, map_size=(a, a)).eval()
    _perturb(gf)
    x = torch.randn(2, 32, a, a, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        x1, x2 = gf.pre_norm(x).chunk(2, dim=1)
        y2 = _spectral_filter_reference(x2, gf.complex_weight)
        want = gf.post_norm(torch.cat([gf.dw(x1).unsqueeze(2), y2.unsqueeze(2)], dim=2).reshape(2, 32, a, a))
        torch.testing.assert_close(gf(x), want, rtol=0, atol=1e-5)
        gf.freeze()  # deploy form: the kernel computed once
        torch.testing.assert_close(gf(x), want, rtol=0, atol=1e-5)


def _timm_focalnet_layout(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What timm's ``checkpoint_filter_fn`` makes of an official FocalNet checkpoint (written
    here from timm's documented renames: stem, downsample moved to the next stage, 1x1 convs, head.fc)."""
    import re

    out = {}
    for k, v in sd.items():
        k = k.replace("patch_embed.", "stem.")
        k = re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) + 1}.downsample", k)
        k = k.replace("head.", "head.fc.")
        if re.search(r"(modulation\.(f|proj)|mlp\.fc[12])\.weight$", k):
            v = v[:, :, None, None]
        out[k] = v
    return out


def test_focalnet_timm_layout_is_remapped(tmp_path):
    ref = _perturb(create_model("focalnet_tiny_srf", input_size=(SIZE, SIZE)))
    timm_sd = _timm_focalnet_layout(ref.state_dict())
    assert "layers.1.downsample.proj.weight" in timm_sd and "stem.norm.weight" in timm_sd
    torch.save({"model": timm_sd}, tmp_path / "timm.pth")
    model = create_model("focalnet_tiny_srf", weights=tmp_path / "timm.pth", input_size=(SIZE, SIZE))
    x = _x()
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["hornet_tiny_7x7", "hornet_tiny_gf", "moganet_xtiny", "focalnet_tiny_srf"])
def test_deploy_form_equals_eval(name):
    model = _perturb(create_model(name, input_size=(SIZE, SIZE)))
    x = _x()
    with torch.no_grad():
        want = model(x)
        dep = reparameterize(model)
        got = dep(x)
    if name.startswith("moganet"):
        # norm1..3 stay (a padded 3x3 conv follows them); every block and embedding BatchNorm folds
        bns = [n for n, m in dep.named_modules() if isinstance(m, nn.BatchNorm2d)]
        assert bns == ["norm1", "norm2", "norm3"]
    torch.testing.assert_close(got, want, rtol=0, atol=1e-4)


# ------------------------------------------------------------------------------ all families


@pytest.mark.parametrize("name,other", [("casvit_xs", "lsnet_t"), ("hornet_tiny_7x7", "casvit_xs"),
                                        ("moganet_xtiny", "hornet_tiny_7x7"), ("focalnet_tiny_srf", "test_swin")])
def test_checkpoint_of_another_architecture_is_refused(tmp_path, name, other):
    path = tmp_path / f"{other}.pth"
    torch.save({"model": create_model(other).state_dict()}, path)
    with pytest.raises(WeightsError, match=f"does not match {name}: it is a checkpoint for another architecture"):
        create_model(name, weights=path)
