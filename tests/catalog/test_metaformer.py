"""MetaFormer baselines: official names and shapes, StarReLU / norms / pooling semantics, timm layout."""

import re

import pytest
import torch

from edgevis.catalog import create_model, reparameterize
from edgevis.catalog.metaformer import ModifiedLayerNorm, Pooling, StarReLU
from edgevis.core.errors import WeightsError


def _randomize(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for v in model.state_dict().values():
            v.copy_(torch.randn(v.shape, generator=g) * 0.2 + (1.0 if v.ndim == 1 else 0.0))
    return model.eval()


def _meta_sd(name):
    """Names and shapes of a model built on the meta device (no parameters initialized)."""
    with torch.device("meta"):
        return create_model(name).state_dict()


def test_official_names_and_shapes():
    sd = _meta_sd("caformer_s18")
    # facts from sail-sg/metaformer: stem conv 7x7/4 with a bias-free post-norm; bias-free Linear MLPs with
    # StarReLU scalars; res scales in stages 3-4; attention (head_dim 32, no biases) in stages 3-4; MLP head
    assert sd["downsample_layers.0.conv.weight"].shape == (64, 3, 7, 7)
    assert "downsample_layers.0.post_norm.weight" in sd and "downsample_layers.0.post_norm.bias" not in sd
    assert sd["downsample_layers.2.pre_norm.weight"].shape == (128,)
    assert sd["stages.0.2.token_mixer.pwconv1.weight"].shape == (128, 64)
    assert sd["stages.0.2.token_mixer.act1.scale"].shape == (1,)
    assert sd["stages.0.2.token_mixer.dwconv.weight"].shape == (128, 1, 7, 7)
    assert sd["stages.2.8.token_mixer.qkv.weight"].shape == (960, 320)
    assert "stages.2.8.token_mixer.qkv.bias" not in sd and sd["stages.3.0.token_mixer.proj.weight"].shape == (512, 512)
    assert sd["stages.2.0.res_scale1.scale"].shape == (320,) and "stages.1.0.res_scale1.scale" not in sd
    assert sd["stages.3.2.mlp.fc1.weight"].shape == (2048, 512) and sd["stages.3.2.mlp.act.bias"].shape == (1,)
    assert sd["head.fc1.weight"].shape == (2048, 512) and sd["head.norm.bias"].shape == (2048,)
    assert sd["head.fc2.weight"].shape == (1000, 2048) and sd["norm.bias"].shape == (512,)
    v1 = _meta_sd("poolformer_s12")
    # sail-sg/poolformer: stages and downsamplings interleave in ``network``; 1x1-conv MLPs; GroupNorm
    assert v1["patch_embed.proj.weight"].shape == (64, 3, 7, 7)
    assert v1["network.1.proj.weight"].shape == (128, 64, 3, 3)
    assert v1["network.4.5.mlp.fc1.weight"].shape == (1280, 320, 1, 1)
    assert v1["network.6.1.layer_scale_2"].shape == (512,) and v1["norm.weight"].shape == (512,)
    v2 = _meta_sd("poolformerv2_s12")
    assert v2["stages.2.5.norm1.weight"].shape == (320,) and v2["head.weight"].shape == (1000, 512)
    assert not any("token_mixer" in k for k in v2)


def test_starrelu_and_modified_layernorm_are_the_official_formulas():
    act = StarReLU()
    with torch.no_grad():
        act.scale.fill_(0.75)
        act.bias.fill_(-0.25)
    x = torch.randn(4, 7, dtype=torch.float64)
    torch.testing.assert_close(act.double()(x), 0.75 * torch.relu(x) ** 2 - 0.25, atol=1e-12, rtol=0)
    ln = ModifiedLayerNorm(5).double()
    with torch.no_grad():
        ln.weight.copy_(torch.randn(5))
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64) * 2 + 1  # B, H, W, C
    c = x - x.mean((1, 2, 3), keepdim=True)
    ref = c / torch.sqrt(c.pow(2).mean((1, 2, 3), keepdim=True) + 1e-6) * ln.weight
    torch.testing.assert_close(ln(x), ref, atol=1e-12, rtol=0)


def test_pooling_leaves_padding_out_of_the_average():
    x = torch.ones(1, 1, 4, 4)
    assert torch.equal(Pooling(3)(x), torch.zeros(1, 1, 4, 4))  # with padding counted, corners would be 4/9 - 1
    y = Pooling(3, channels_last=True)(torch.arange(16.0).reshape(1, 4, 4, 1))
    assert y[0, 0, 0, 0] == (0 + 1 + 4 + 5) / 4 - 0


def _to_timm(sd, v1):
    """Official -> timm ``metaformer.py`` names, key by key (the inverse of what the loader does)."""
    out = {}
    for k, v in sd.items():
        if v1:
            k = k.replace("patch_embed.proj.", "stem.conv.")
            m = re.match(r"network\.(\d+)\.(.*)", k)
            if m:
                i, rest = int(m[1]), m[2]
                if i % 2:
                    k = f"stages.{(i + 1) // 2}.downsample.conv." + rest[len("proj."):]
                else:
                    k = f"stages.{i // 2}.blocks.{rest}"
            k = re.sub(r"\.layer_scale_(\d)$", r".layer_scale\1.scale", k)
            if ".mlp.fc" in k and k.endswith(".weight"):
                v = v[:, :, 0, 0]  # timm's v1 MLP: Linear-shaped weights
        else:
            k = k.replace("downsample_layers.0.conv.", "stem.conv.").replace("downsample_layers.0.post_norm.", "stem.norm.")
            k = re.sub(r"downsample_layers\.(\d)\.conv\.", r"stages.\1.downsample.conv.", k)
            k = re.sub(r"downsample_layers\.(\d)\.pre_norm\.", r"stages.\1.downsample.norm.", k)
            k = re.sub(r"^stages\.(\d)\.(\d+)\.", r"stages.\1.blocks.\2.", k)
        if k.startswith("norm."):
            k = "head." + k
        elif k.startswith("head."):
            k = "head.fc." + k[len("head."):]
        out[k] = v
    return out


@pytest.mark.parametrize("name", ["test_convformer", "test_poolformerv2", "poolformer_s12"])
def test_official_and_timm_checkpoints_load_strict_with_the_same_outputs(name, tmp_path):
    size = 64
    ref = _randomize(create_model(name, num_classes=10, input_size=(size, size)))
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        y = ref(x)
    sd = ref.state_dict()
    timm_sd = _to_timm(sd, name.startswith("poolformer_"))
    assert "stem.conv.weight" in timm_sd and "head.fc.bias" in timm_sd or "head.fc.fc2.bias" in timm_sd
    torch.save({"model": sd}, tmp_path / "official.pth")
    torch.save(timm_sd, tmp_path / "timm.pth")
    for f in ("official.pth", "timm.pth"):
        m = create_model(name, weights=tmp_path / f, input_size=(size, size))
        with torch.no_grad():
            assert torch.equal(reparameterize(m)(x), y), f


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    torch.save(create_model("test_convformer").state_dict(), tmp_path / "convformer.pth")
    with pytest.raises(WeightsError, match=r"another architecture.*token_mixer"):
        create_model("test_poolformerv2", weights=tmp_path / "convformer.pth")
