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


# ------------------------------------------------------------------------------ all families


@pytest.mark.parametrize("name,other", [("casvit_xs", "lsnet_t")])
def test_checkpoint_of_another_architecture_is_refused(tmp_path, name, other):
    path = tmp_path / f"{other}.pth"
    torch.save({"model": create_model(other).state_dict()}, path)
    with pytest.raises(WeightsError, match=f"does not match {name}: it is a checkpoint for another architecture"):
        create_model(name, weights=path)
