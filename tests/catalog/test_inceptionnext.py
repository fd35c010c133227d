"""InceptionNeXt: official names and shapes, the four-way channel split, BatchNorm folded in deploy form."""

import pytest
import torch
from torch import nn

from edgevis.catalog import create_model, reparameterize
from edgevis.catalog.inceptionnext import InceptionDWConv2d, fuse_bn_conv
from edgevis.core.errors import WeightsError


def _randomize(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if not v.dtype.is_floating_point:
                continue
            v.copy_(torch.rand(v.shape, generator=g) + 0.5 if "running_var" in k
                    else torch.randn(v.shape, generator=g) * 0.2 + (1.0 if k.endswith("norm.weight") else 0.0))
    return model.eval()


def _meta_sd(name):
    """Names and shapes of a model built on the meta device (no parameters initialized)."""
    with torch.device("meta"):
        return create_model(name).state_dict()


def test_official_names_and_shapes():
    sd = _meta_sd("inceptionnext_tiny")
    # facts from sail-sg/inceptionnext: 4x4 stem + BN; 1/8 of the channels per conv branch (3x3, 1x11, 11x1);
    # BN + 2x2 conv downsampling; 1x1-conv MLPs (ratio 3 in the last stage); MLP head of ratio 3
    assert sd["stem.0.weight"].shape == (96, 3, 4, 4) and sd["stem.1.running_var"].shape == (96,)
    assert sd["stages.1.downsample.0.weight"].shape == (96,)
    assert sd["stages.1.downsample.1.weight"].shape == (192, 96, 2, 2)
    assert sd["stages.0.blocks.0.token_mixer.dwconv_hw.weight"].shape == (12, 1, 3, 3)
    assert sd["stages.2.blocks.8.token_mixer.dwconv_w.weight"].shape == (48, 1, 1, 11)
    assert sd["stages.2.blocks.8.token_mixer.dwconv_h.weight"].shape == (48, 1, 11, 1)
    assert sd["stages.2.blocks.8.mlp.fc1.weight"].shape == (1536, 384, 1, 1)
    assert sd["stages.3.blocks.2.mlp.fc1.weight"].shape == (2304, 768, 1, 1)
    assert sd["stages.3.blocks.2.gamma"].shape == (768,) and sd["stages.0.blocks.0.norm.running_mean"].shape == (96,)
    assert sd["head.fc1.weight"].shape == (2304, 768) and sd["head.norm.weight"].shape == (2304,)
    assert sd["head.fc2.weight"].shape == (1000, 2304)
    assert "stages.0.downsample.0.weight" not in sd
    atto = _meta_sd("inceptionnext_atto")  # branch ratio 1/4, 1x9 bands
    assert atto["stages.0.blocks.0.token_mixer.dwconv_w.weight"].shape == (10, 1, 1, 9)


def test_channel_split_keeps_the_identity_part_first():
    m = InceptionDWConv2d(16)  # 2 channels per conv branch, 10 untouched
    assert m.split_indexes == (10, 2, 2, 2)
    x = torch.randn(1, 16, 5, 5)
    with torch.no_grad():
        y = m(x)
        assert torch.equal(y[:, :10], x[:, :10])
        torch.testing.assert_close(y[:, 12:14], m.dwconv_w(x[:, 12:14]))


def test_deploy_form_folds_every_batchnorm_and_equals_eval_mode():
    m = _randomize(create_model("inceptionnext_atto", input_size=(64, 64)))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        y = m(x)
        n_before = sum(p.numel() for p in m.parameters())
        d = reparameterize(m)
        assert not any(isinstance(t, nn.BatchNorm2d) for t in d.modules())
        assert sum(p.numel() for p in d.parameters()) < n_before
        torch.testing.assert_close(d(x), y, atol=1e-4, rtol=0)


def test_bn_folds_only_into_an_unpadded_conv():
    bn = nn.BatchNorm2d(3).eval()
    with pytest.raises(ValueError, match="no padding"):
        fuse_bn_conv(bn, nn.Conv2d(3, 4, 3, padding=1))


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    torch.save(create_model("inceptionnext_atto").state_dict(), tmp_path / "atto.pth")
    with pytest.raises(WeightsError, match=r"another architecture.*other shapes"):
        create_model("inceptionnext_tiny", weights=tmp_path / "atto.pth")
