"""The number of classes comes from the checkpoint; the test_* fixtures' structure."""

import pytest
import torch

from edgevis.catalog import create_model, model_info
from edgevis.core.errors import EdgevisError, WeightsError
from edgevis.exporters.onnx import ExportConfig, export_onnx


def _save(model: torch.nn.Module, path) -> None:
    torch.save({"model": model.state_dict()}, path)


@pytest.mark.parametrize("name,classifier", [("test_lsnet", "head.l"), ("test_deit", "head"), ("test_swin", "head")])
def test_checkpoint_with_other_class_count_loads(name, classifier, tmp_path):
    torch.manual_seed(0)
    src = create_model(name, num_classes=7)
    _save(src, tmp_path / "w.pth")
    assert model_info(name).classifier == classifier and model_info(name).num_classes == 10
    model = create_model(name, weights=tmp_path / "w.pth")
    assert model.edgevis_info.num_classes == 7  # what the exporter records
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), src(x), rtol=0, atol=0)


def test_fine_tuned_full_model_loads_without_flags(tmp_path):
    # a 10-class lsnet_t (e.g. trained on the digits) in the official layout, distilled heads too
    src = create_model("lsnet_t_distill", num_classes=10)
    _save(src, tmp_path / "lsnet_t_10.pth")
    model = create_model("lsnet_t_distill", weights=tmp_path / "lsnet_t_10.pth", deploy=True)
    assert model.edgevis_info.num_classes == 10 and model.head.out_features == 10


def test_explicit_num_classes_that_disagrees_is_a_weights_error(tmp_path):
    _save(create_model("test_deit", num_classes=7), tmp_path / "w.pth")
    with pytest.raises(WeightsError, match="head.weight"):
        create_model("test_deit", weights=tmp_path / "w.pth", num_classes=10)
    with pytest.raises(EdgevisError, match="num_classes"):
        create_model("test_deit", num_classes=0)
    with pytest.raises(EdgevisError, match="num-classes"):
        ExportConfig(num_classes=0)


def test_export_records_the_checkpoint_class_count(tmp_path):
    _save(create_model("test_deit", num_classes=3), tmp_path / "w.pth")
    result = export_onnx("test_deit", tmp_path, weights=tmp_path / "w.pth")
    assert result.artifact.provenance["output"]["num_classes"] == 3
    assert result.artifact.outputs[0].shape == (1, 3)
    # an explicit class count builds a random-init model of that size
    result = export_onnx("test_deit", tmp_path / "explicit", config=ExportConfig(num_classes=5))
    assert result.artifact.outputs[0].shape == (1, 5)


def test_swin_fixture_shifts_where_the_map_exceeds_the_window_and_clamps_elsewhere():
    model = create_model("test_swin")  # 64x64, patch 8: stages of 8x8 and 4x4 tokens, window 4
    (a0, a1), (b0, b1) = model.layers[0].blocks, model.layers[1].blocks
    assert (a0.window_size, a0.shift_size, a1.window_size, a1.shift_size) == (4, 0, 4, 2)
    assert a1.attn_mask is not None and a1.attn_mask.shape == (4, 16, 16)
    # official rule: a map no larger than the window is one window, and nothing shifts
    assert all(b.window_size == 4 and b.shift_size == 0 and b.attn_mask is None for b in (b0, b1))
    small = create_model("test_swin", input_size=(32, 32))  # 4x4 then 2x2 tokens
    for blk in small.layers[1].blocks:
        assert blk.window_size == 2 and blk.shift_size == 0 and blk.num_windows == 1
        assert blk.attn.relative_position_bias_table.shape == (9, 4)
    with torch.no_grad():
        assert small(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_lsnet_fixture_has_every_block_kind():
    from edgevis.catalog.lsnet import Attention, LSConv, RepVGGDW

    model = create_model("test_lsnet")
    kinds = {type(m) for m in model.modules()}
    assert {Attention, LSConv, RepVGGDW} <= kinds
