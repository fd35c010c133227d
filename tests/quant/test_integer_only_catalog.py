"""Integer-only on digits-trained catalog fixtures of the new families: ConvNeXt (channels-first
LayerNorm, GELU, layer scale) and PoolFormerV2 (average pooling without padding counts, StarReLU's
activation x activation square, whole-map LayerNorm). Float-free, bit-exact, faithful to FP32."""

import pytest

from edgevis.catalog.training import train_digits
from edgevis.exporters.onnx import ExportConfig, export_onnx
from edgevis.graph.inspect import load_onnx
from edgevis.graph.integer_check import check_integer_only
from edgevis.quant.integer_only import IntegerOnlyConfig, quantize_integer_only_file

# epochs that reach >= 92 % on the digits test split at 64x64 in about 15 s of one core
CASES = {"test_convnext": 5, "test_poolformerv2": 4}


@pytest.mark.parametrize("name", sorted(CASES))
def test_trained_fixture_is_float_free_bit_exact_and_faithful(name, digits_folders, tmp_path):
    calib, held = digits_folders
    trained = train_digits(name, tmp_path / "digits.pth", epochs=CASES[name], input_size=64, seed=0, threads=1)
    assert trained.test_acc >= 0.9  # the outputs mean something
    src = export_onnx(name, tmp_path, weights=trained.path, config=ExportConfig(input_size=(64, 64))).artifact.path
    r = quantize_integer_only_file(src, IntegerOnlyConfig(calib_dir=calib, holdout_dir=held, calib_count=64))
    model = load_onnx(r.path)
    rep = check_integer_only(model)
    assert rep.ok, rep.problems
    ops = {n.op_type for n in model.graph.node}
    assert not ops & {"Conv", "MatMul", "AveragePool", "LayerNormalization", "Erf", "Pow", "Sqrt"}
    assert r.settings["bit_exact"]["bit_exact"]
    f = r.fidelity
    assert f["images"] == 359 and f["top1_agreement"] >= 0.98 and f["cosine_mean"] >= 0.99
    assert r.settings["kernels"]["norm"] > 0
    if name == "test_convnext":
        assert r.settings["kernels"]["gelu"] > 0
