"""DeiT and Swin catalog entries: official checkpoint layout, strict loading, ONNX export.

Facts about the official checkpoints below were read from the official sources:

* DeiT (facebookresearch/deit, ``models.py``): ``deit_tiny_patch16_224`` /
  ``deit_small_patch16_224`` are timm ``VisionTransformer(patch_size=16, embed_dim=192|384,
  depth=12, num_heads=3|6, mlp_ratio=4, qkv_bias=True, norm_layer=LayerNorm(eps=1e-6))``;
  the released ``.pth`` holds the state dict under ``"model"``.
* Swin (microsoft/Swin-Transformer, ``models/swin_transformer.py``): ``relative_position_index``
  and ``attn_mask`` are registered with ``register_buffer`` (persistent), ``attn_mask`` only
  where ``shift_size > 0``; a block whose feature map is no larger than the window
  (stage 3 at 224: 7x7) gets no shift and so no mask. PatchMerging is the
  ``downsample`` at the END of stages 0..2. The official ``utils.load_pretrained`` deletes
  ``relative_position_index`` / ``attn_mask`` keys from checkpoints before loading, and
  timm's ``checkpoint_filter_fn`` skips them: the released checkpoints contain them.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pytest
import torch

from edgevis.catalog import create_model, model_info
from edgevis.catalog.deit import DeiT
from edgevis.catalog.swin import (
    SwinTransformer,
    cyclic_shift,
    remap_timm_state_dict,
    shifted_window_mask,
    window_partition,
    window_reverse,
)

# ---------------------------------------------------------------- official key facts

DEIT_FACTS = {
    "deit_tiny_patch16_224": {
        "num_keys": 152,  # cls_token, pos_embed, patch_embed.proj x2, 12 blocks x 12, norm x2, head x2
        "shapes": {
            "cls_token": (1, 1, 192),
            "pos_embed": (1, 197, 192),
            "patch_embed.proj.weight": (192, 3, 16, 16),
            "patch_embed.proj.bias": (192,),
            "blocks.0.norm1.weight": (192,),
            "blocks.0.attn.qkv.weight": (576, 192),
            "blocks.0.attn.qkv.bias": (576,),
            "blocks.0.attn.proj.weight": (192, 192),
            "blocks.0.norm2.bias": (192,),
            "blocks.11.mlp.fc1.weight": (768, 192),
            "blocks.11.mlp.fc2.weight": (192, 768),
            "norm.weight": (192,),
            "head.weight": (1000, 192),
            "head.bias": (1000,),
        },
    },
    "deit_small_patch16_224": {
        "num_keys": 152,
        "shapes": {
            "cls_token": (1, 1, 384),
            "pos_embed": (1, 197, 384),
            "patch_embed.proj.weight": (384, 3, 16, 16),
            "blocks.11.attn.qkv.weight": (1152, 384),
            "blocks.11.mlp.fc1.weight": (1536, 384),
            "head.weight": (1000, 384),
        },
    },
}
DEIT_PREFIXES = {"cls_token", "pos_embed", "patch_embed", "blocks", "norm", "head"}

SWIN_T_FACTS = {
    # 12 blocks x 14 (incl. relative_position_index) + 5 attn_mask + patch_embed 4
    # + 3 downsample x 3 + norm 2 + head 2
    "num_keys": 190,
    "shapes": {
        "patch_embed.proj.weight": (96, 3, 4, 4),
        "patch_embed.proj.bias": (96,),
        "patch_embed.norm.weight": (96,),
        "layers.0.blocks.0.attn.relative_position_bias_table": (169, 3),
        "layers.0.blocks.0.attn.relative_position_index": (49, 49),
        "layers.0.blocks.0.attn.qkv.weight": (288, 96),
        "layers.0.blocks.0.mlp.fc1.weight": (384, 96),
        "layers.0.blocks.1.attn_mask": (64, 49, 49),
        "layers.1.blocks.1.attn_mask": (16, 49, 49),
        "layers.2.blocks.1.attn_mask": (4, 49, 49),
        "layers.2.blocks.3.attn_mask": (4, 49, 49),
        "layers.2.blocks.5.attn_mask": (4, 49, 49),
        "layers.0.downsample.norm.weight": (384,),
        "layers.0.downsample.reduction.weight": (192, 384),
        "layers.2.downsample.reduction.weight": (768, 1536),
        "layers.3.blocks.1.attn.relative_position_bias_table": (169, 24),
        "norm.weight": (768,),
        "head.weight": (1000, 768),
        "head.bias": (1000,),
    },
    "absent": [
        "layers.0.blocks.0.attn_mask",  # unshifted block
        "layers.3.blocks.1.attn_mask",  # 7x7 map == window: no shift at 224
        "layers.3.downsample.reduction.weight",  # last stage has no PatchMerging
        "layers.0.downsample.reduction.bias",  # bias=False
        "absolute_pos_embed",  # ape=False
    ],
    "prefixes": {"patch_embed", "layers", "norm", "head"},
}


@functools.lru_cache(maxsize=None)
def _random_init(name: str) -> torch.nn.Module:
    """One randomly initialised instance per catalog name, shared by the tests (read only)."""
    torch.manual_seed(0)
    return create_model(name)


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", sorted(DEIT_FACTS))
def test_deit_keys_match_official(name):
    shapes = _shapes(_random_init(name))
    facts = DEIT_FACTS[name]
    assert len(shapes) == facts["num_keys"]
    assert {k.split(".")[0] for k in shapes} == DEIT_PREFIXES
    for k, s in facts["shapes"].items():
        assert shapes[k] == s, k


def test_swin_keys_match_official():
    model = _random_init("swin_tiny_patch4_window7_224")
    shapes = _shapes(model)
    assert len(shapes) == SWIN_T_FACTS["num_keys"]
    assert {k.split(".")[0] for k in shapes} == SWIN_T_FACTS["prefixes"]
    for k, s in SWIN_T_FACTS["shapes"].items():
        assert shapes[k] == s, k
    for k in SWIN_T_FACTS["absent"]:
        assert k not in shapes, k
    assert model.state_dict()["layers.0.blocks.0.attn.relative_position_index"].dtype == torch.int64


@pytest.mark.parametrize("name", ["deit_tiny_patch16_224", "deit_small_patch16_224", "swin_tiny_patch4_window7_224"])
def test_param_count_matches_registry(name):
    model = _random_init(name)
    n = sum(p.numel() for p in model.parameters())
    assert round(n / 1e6, 1) == model_info(name).params_m


# ---------------------------------------------------------------- shift / windows / mask


@pytest.mark.parametrize("shifts", [(3, 3), (-3, -3), (2, -5), (-1, 4), (0, 6), (-10, 13), (7, 9)])
def test_cyclic_shift_equals_roll(shifts):
    x = torch.randn(2, 7, 9, 5)
    expected = torch.roll(x, shifts=shifts, dims=(1, 2))
    assert torch.equal(cyclic_shift(x, *shifts), expected)
    assert torch.equal(cyclic_shift(x, *shifts, size=(7, 9)), expected)


def test_window_partition_roundtrip():
    x = torch.randn(2, 8, 12, 3)
    w = window_partition(x, 4, 8, 12, 3)
    assert w.shape == (2 * 2 * 3, 16, 3)
    assert torch.equal(w[1].reshape(4, 4, 3), x[0, 0:4, 4:8])  # second window: row 0, col 1
    assert torch.equal(window_reverse(w, 4, 8, 12, 3), x)


def test_shift_mask_matches_official_construction():
    # the official code labels the 3x3 regions with slices, then partitions the label map
    h, w, ws, s = 14, 21, 7, 3
    img = torch.zeros(1, h, w, 1)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -s), slice(-s, None)):
        for wsl in (slice(0, -ws), slice(-ws, -s), slice(-s, None)):
            img[:, hs, wsl, :] = cnt
            cnt += 1
    mw = window_partition(img, ws, h, w, 1).squeeze(-1)
    ref = mw.unsqueeze(1) - mw.unsqueeze(2)
    ref = ref.masked_fill(ref != 0, -100.0).masked_fill(ref == 0, 0.0)
    assert torch.equal(shifted_window_mask(h, w, ws, s), ref)


# ---------------------------------------------------------------- strict round trips


@pytest.mark.parametrize("name", ["deit_tiny_patch16_224", "swin_tiny_patch4_window7_224"])
def test_strict_roundtrip(name, tmp_path):
    src = _random_init(name)
    path = tmp_path / f"{name}.pth"
    torch.save({"model": src.state_dict()}, path)
    dst = create_model(name, weights=path)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))
    assert dst.edgevis_weights["path"] == str(path)


def test_swin_timm_layout_loads(tmp_path):
    """timm >= 0.9 layout: downsample at the start of the next stage, head.fc, no buffers."""
    src = _random_init("swin_tiny_patch4_window7_224")
    official = src.state_dict()
    timm_sd = {}
    for k, v in official.items():
        if "relative_position_index" in k or "attn_mask" in k:
            continue
        if k.startswith("layers.") and ".downsample." in k:
            i = int(k.split(".")[1])
            k = k.replace(f"layers.{i}.downsample.", f"layers.{i + 1}.downsample.", 1)
        k = k.replace("head.", "head.fc.", 1) if k.startswith("head.") else k
        timm_sd[k] = v
    assert "layers.3.downsample.reduction.weight" in timm_sd and "head.fc.weight" in timm_sd
    remapped = remap_timm_state_dict(timm_sd)
    assert set(remapped) == set(official)
    for k in official:
        assert torch.equal(remapped[k], official[k]), k
    assert remap_timm_state_dict(official).keys() == official.keys()  # official passes through
    path = tmp_path / "timm_swin.pth"
    torch.save({"state_dict": timm_sd}, path)
    dst = create_model("swin_tiny_patch4_window7_224", weights=path)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(src(x), dst(x))


# ---------------------------------------------------------------- ONNX export


def _export_and_compare(model, x, path, batch=2):
    """Legacy TorchScript exporter (dynamo=False) at opset 17: torch 2.13 still supports it,
    while dynamo=True emits opset 18 (its down-conversion to 17 fails on this graph)."""
    import onnx
    import onnxruntime as ort

    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter warns that it is deprecated
        torch.onnx.export(
            model,
            (x,),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    graph = onnx.load(str(path))
    assert [o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")] == [17]
    ops = {n.op_type for n in graph.graph.node}
    assert {"MatMul", "Softmax"} <= ops
    assert not ops & {"Roll", "ScatterND", "Loop"}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    xb = torch.randn(batch, *x.shape[1:])
    out = sess.run(None, {"input": xb.numpy()})[0]
    with torch.no_grad():
        ref = model(xb).numpy()
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4)
    return ops


def test_swin_small_config_exports_to_onnxruntime(tmp_path):
    torch.manual_seed(0)
    # non-square input, two stages, shifted blocks in both
    model = SwinTransformer(
        img_size=(64, 96), patch_size=4, embed_dim=16, depths=(2, 2), num_heads=(2, 4), window_size=4, num_classes=10
    )
    assert model.layers[0].blocks[1].shift_size == 2 and model.layers[1].blocks[1].shift_size == 2
    ops = _export_and_compare(model, torch.randn(1, 3, 64, 96), tmp_path / "swin_small.onnx")
    assert {"Slice", "Concat"} <= ops


def test_deit_small_config_exports_to_onnxruntime(tmp_path):
    torch.manual_seed(0)
    model = DeiT(img_size=(64, 48), patch_size=16, embed_dim=32, depth=2, num_heads=2, num_classes=10)
    _export_and_compare(model, torch.randn(1, 3, 64, 48), tmp_path / "deit_small.onnx")


def test_swin_tiny_full_exports(tmp_path):
    # ~15 s on 2 CPU cores (export + 2 runs), under the 20 s bar for the slow marker
    model = _random_init("swin_tiny_patch4_window7_224")
    _export_and_compare(model, torch.randn(1, 3, 224, 224), tmp_path / "swin_tiny.onnx", batch=1)
