"""LSNet: official structure and names, SKA semantics, deploy form, checkpoints."""

import pytest
import torch

from edgevis.catalog import create_model, reparameterize
from edgevis.catalog.layers.ska import ska, ska_reference
from edgevis.core.errors import WeightsError


@pytest.mark.parametrize("shape,wc", [((2, 16, 5, 7), 2), ((1, 24, 4, 4), 3), ((1, 8, 3, 6), 8), ((1, 6, 2, 2), 1)])
def test_ska_matches_naive_loop_in_official_indexing(shape, wc):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    w = torch.randn(shape[0], wc, 9, shape[2], shape[3], generator=g, dtype=torch.float64)
    torch.testing.assert_close(ska(x, w), ska_reference(x, w), atol=1e-12, rtol=0)


def test_ska_channels_share_kernels_interleaved_not_contiguous():
    # channel c uses kernel c % Cw: with C=4, Cw=2, channels 0 and 2 share a kernel
    x = torch.zeros(1, 4, 3, 3)
    x[0, 2, 1, 1] = 1.0  # a single impulse in channel 2
    w = torch.zeros(1, 2, 9, 3, 3)
    w[0, 0, 4] = 5.0  # center tap of kernel 0
    w[0, 1, 4] = 7.0  # center tap of kernel 1
    y = ska(x, w)
    assert y[0, 2, 1, 1] == 5.0  # kernel 0, as the official kernel indexes it (2 % 2 == 0)
    assert y.abs().sum() == 5.0


def test_ska_zero_padding_at_borders():
    x = torch.ones(1, 1, 2, 2)
    w = torch.ones(1, 1, 9, 2, 2)
    # every pixel of a 2x2 map sees exactly the 4 in-bounds ones of its 3x3 window
    assert torch.equal(ska(x, w), torch.full((1, 1, 2, 2), 4.0))


def _randomize(model):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                v.copy_(torch.rand(v.shape, generator=g) + 0.5 if "running_var" in k
                        else torch.randn(v.shape, generator=g) * 0.2)
    return model.eval()


def test_official_names_and_shapes():
    sd = create_model("lsnet_t").state_dict()
    # facts from the official code: patch embed 3 -> 16 -> 32 -> 64; blocks1 empty for -T;
    # stage 2 starts with the stride-2 depthwise + pointwise downsample of stage 1
    assert sd["patch_embed.0.c.weight"].shape == (16, 3, 3, 3)
    assert sd["patch_embed.4.c.weight"].shape == (64, 32, 3, 3)
    assert not any(k.startswith("blocks1.") for k in sd)
    assert sd["blocks2.0.c.weight"].shape == (64, 1, 3, 3)
    assert sd["blocks2.1.c.weight"].shape == (128, 64, 1, 1)
    assert sd["blocks2.2.mixer.conv.c.weight"].shape == (128, 1, 3, 3)
    assert sd["blocks2.2.se.fc1.weight"].shape == (32, 128, 1, 1)
    assert sd["blocks2.3.mixer.lkp.cv2.c.weight"].shape == (64, 1, 7, 7)
    assert sd["blocks2.3.mixer.lkp.cv4.weight"].shape == (9 * 128 // 8, 64, 1, 1)
    assert sd["blocks2.3.mixer.lkp.norm.weight"].shape == (144,)
    assert sd["blocks4.3.mixer.m.attention_biases"].shape == (4, 16)  # 4 heads, 4x4 map offsets
    assert sd["blocks4.3.mixer.m.attention_bias_idxs"].shape == (16, 16)
    assert sd["head.l.weight"].shape == (1000, 384)
    assert "head_dist.l.weight" in create_model("lsnet_t_distill").state_dict()


@pytest.mark.parametrize("name", ["lsnet_t", "lsnet_s_distill"])
def test_reparameterize_matches_eval_within_1e4(name):
    model = _randomize(create_model(name))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ref = model(x)
        fused = reparameterize(model)
        out = fused(x)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in fused.modules())
    assert not hasattr(fused, "head_dist")  # distillation heads merged into one
    # BatchNorm2d remains only after SKA (a dynamic conv it cannot fold into)
    assert all(n.endswith("mixer.bn") for n, m in fused.named_modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert (out - ref).abs().max() <= 1e-4 * max(1.0, ref.abs().max().item())


@pytest.mark.parametrize("layout", ["bare", "model", "state_dict", "module_prefix"])
def test_checkpoint_layouts_load_strict(layout, tmp_path):
    src = _randomize(create_model("lsnet_t"))
    sd = src.state_dict()
    obj = {"bare": sd, "model": {"model": sd, "epoch": 3}, "state_dict": {"state_dict": sd},
           "module_prefix": {"model": {f"module.{k}": v for k, v in sd.items()}}}[layout]
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    model = create_model("lsnet_t", weights=path)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(model(x), src(x))
    assert model.edgevis_weights["sha256"] and len(model.edgevis_weights["sha256"]) == 64


def test_checkpoint_with_training_args_namespace_loads(tmp_path):
    import argparse

    sd = create_model("lsnet_t").state_dict()
    torch.save({"model": sd, "args": argparse.Namespace(lr=0.1)}, tmp_path / "c.pth")
    create_model("lsnet_t", weights=tmp_path / "c.pth")


def test_checkpoint_for_another_architecture_lists_keys(tmp_path):
    torch.save(create_model("lsnet_s").state_dict(), tmp_path / "s.pth")
    with pytest.raises(WeightsError, match=r"another architecture.*other shapes.*e\.g\. patch_embed"):
        create_model("lsnet_t", weights=tmp_path / "s.pth")
    torch.save(create_model("deit_tiny_patch16_224").state_dict(), tmp_path / "d.pth")
    with pytest.raises(WeightsError, match=r"missing \(e\.g\. patch_embed\.0\.c\.weight.*unexpected \(e\.g\. cls_token"):
        create_model("lsnet_t", weights=tmp_path / "d.pth")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"junk\n", None])
def test_corrupt_or_truncated_checkpoint_is_named(content, tmp_path):
    path = tmp_path / "bad.pth"
    if content is None:  # a real checkpoint cut in half
        torch.save(create_model("lsnet_t").state_dict(), path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(WeightsError, match="corrupt, truncated or not a PyTorch file") as e:
        create_model("lsnet_t", weights=path)
    reason = str(e.value).rsplit("file): ", 1)[-1]
    assert not reason.strip("'\"").isdigit(), reason  # a text file failed with torch's bare KeyError: '174812789'
    with pytest.raises(WeightsError, match="not found"):
        create_model("lsnet_t", weights=tmp_path / "missing.pth")
