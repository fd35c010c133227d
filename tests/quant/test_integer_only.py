"""Integer-only models end to end on trained fixtures: float-free, bit-exact on ONNX Runtime,
faithful to FP32, and refusing what has no integer rule."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgevis.exporters.onnx import ExportConfig

from edgevis.pipeline import export_fp32
from edgevis.graph.inspect import META_PROVENANCE, load_onnx, read_json_metadata
from edgevis.quant.integer_only import IntegerOnlyConfig, bit_exact_check, convert_model, quantize_integer_only_file
from edgevis.quant.ivit.calibrate import activation_absmax
from edgevis.graph.integer_check import check_integer_only
from edgevis.quant.ivit.convert import IntegerOnlyError


@pytest.fixture(scope="module")
def lsnet_io(digits_lsnet, digits_folders, tmp_path_factory):
    ckpt, size = digits_lsnet
    calib, held = digits_folders
    out = tmp_path_factory.mktemp("lsnet_io")
    # unsimplified: at 64 px the last stage attends over a single position, whose softmax (always 1) onnxsim
    # folds away with its branch; this fixture must cover every kernel (the CLI test covers the simplified file)
    src = export_fp32("test_lsnet", out, weights=ckpt,
                      config=ExportConfig(input_size=size, simplify=False)).artifact.path
    return src, quantize_integer_only_file(src, IntegerOnlyConfig(calib_dir=calib, holdout_dir=held, calib_count=64))


def test_trained_lsnet_is_float_free_bit_exact_and_faithful(lsnet_io):
    src, r = lsnet_io
    assert r.path.name == "test_lsnet.integer_only.onnx" and r.path.is_file()
    model = load_onnx(r.path)  # passes the ONNX checker
    rep = check_integer_only(model)
    assert rep.ok, rep.problems
    assert rep.quantize_nodes == 1 and rep.dequantize_nodes == 1
    ops = {n.op_type for n in model.graph.node}
    assert {"ConvInteger", "MatMulInteger"} <= ops and not ops & {"Conv", "MatMul", "Softmax", "Sigmoid", "Erf"}
    assert r.settings["bit_exact"]["bit_exact"] and r.settings["bit_exact"]["inputs"] == 3
    f = r.fidelity
    assert f["images"] == 359  # every held-out digit
    assert f["top1_agreement"] >= 0.99 and f["cosine_mean"] >= 0.99
    k = r.settings["kernels"]
    for kind in ("conv", "norm", "shiftmax", "sigmoid", "requant"):  # GroupNorm, attention, squeeze-excite
        assert k.get(kind, 0) > 0, kind
    prov = read_json_metadata(model, META_PROVENANCE)
    assert prov["precision"] == "integer-only" and prov["quantization"]["check"]["integer_only"]
    side = json.loads(r.path.with_name(r.path.name + ".json").read_text())
    assert side["fidelity"]["top1_agreement"] == f["top1_agreement"]


def test_reference_and_ort_agree_on_more_inputs(lsnet_io, digits_folders):
    """Beyond the three inputs the export checks: random inputs far outside the calibrated range too."""
    src, r = lsnet_io
    model = onnx.load(str(src))
    rng = np.random.default_rng(0)
    calib_x = [rng.standard_normal((1, 3, 64, 64)).astype(np.float32) for _ in range(4)]
    absmax, _ = activation_absmax(model, calib_x)
    prog = convert_model(model, absmax, "test_lsnet", 8)
    xs = [rng.standard_normal((1, 3, 64, 64)).astype(np.float32) * s for s in (0.1, 1.0, 10.0, 1000.0)]
    res = bit_exact_check(prog, xs)
    assert res["bit_exact"], res


def test_sixteen_bit_mode_is_also_integer_only_and_exact(lsnet_io):
    src, _ = lsnet_io
    model = onnx.load(str(src))
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((1, 3, 64, 64)).astype(np.float32) for _ in range(3)]
    absmax, _ = activation_absmax(model, xs)
    prog = convert_model(model, absmax, "test_lsnet", 16)
    assert check_integer_only(prog.to_onnx()).ok
    assert bit_exact_check(prog, xs[:2])["bit_exact"]


def _graph(nodes, inits, out_type=TensorProto.FLOAT):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", out_type, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def _q(name="q"):
    return [helper.make_node("QuantizeLinear", ["x", "s", "z"], [name]),
            helper.make_node("Cast", [name], [name + "64"], to=TensorProto.INT64)]


INITS = [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]), helper.make_tensor("z", TensorProto.INT8, [], [0]),
         helper.make_tensor("s32", TensorProto.FLOAT, [], [0.1]), helper.make_tensor("z32", TensorProto.INT32, [], [0])]


def test_checker_accepts_integer_graph_and_names_each_float_island():
    ok = _graph(_q() + [helper.make_node("Add", ["q64", "q64"], ["a"]),
                        helper.make_node("Cast", ["a"], ["a32"], to=TensorProto.INT32),
                        helper.make_node("DequantizeLinear", ["a32", "s32", "z32"], ["y"])], INITS)
    assert check_integer_only(ok).ok
    # a float op between Q and DQ
    bad = _graph(_q() + [helper.make_node("Cast", ["q64"], ["f"], to=TensorProto.FLOAT),
                         helper.make_node("Relu", ["f"], ["r"]),
                         helper.make_node("Cast", ["r"], ["a32"], to=TensorProto.INT32),
                         helper.make_node("DequantizeLinear", ["a32", "s32", "z32"], ["y"])], INITS)
    rep = check_integer_only(bad)
    assert not rep.ok and any("Relu" in p and "FLOAT" in p for p in rep.problems)
    # float math after the DequantizeLinear
    after = _graph(_q() + [helper.make_node("Cast", ["q64"], ["a32"], to=TensorProto.INT32),
                           helper.make_node("DequantizeLinear", ["a32", "s32", "z32"], ["d"]),
                           helper.make_node("Relu", ["d"], ["y"])], INITS)
    assert any("DequantizeLinear output d" in p for p in check_integer_only(after).problems)
    # the float input used directly
    direct = _graph([helper.make_node("Relu", ["x"], ["y"])], INITS)
    assert any("float input x feeds Relu" in p for p in check_integer_only(direct).problems)


def test_checker_rejects_the_fp32_and_int8_files(lsnet_io):
    src, _ = lsnet_io
    rep = check_integer_only(onnx.load(str(src)))
    assert not rep.ok and rep.problems


def test_op_without_integer_rule_names_op_and_model():
    nodes = [helper.make_node("Sin", ["x"], ["y"], name="weird_sin")]
    m = _graph(nodes, [])
    with pytest.raises(IntegerOnlyError, match=r"mymodel: no integer-only rule for Sin node 'weird_sin'"):
        convert_model(m, {"x": 1.0, "y": 1.0}, "mymodel", 8)


def test_dynamic_batch_shape_arithmetic_stays_integer(tmp_path):
    """A --dynamic-batch export computes shapes at run time (Shape, Gather, Concat on int64) and
    expands the class token to the batch: all of it converts, and any batch size is bit-exact."""
    src = export_fp32("test_deit", tmp_path, config=ExportConfig(dynamic_batch=True)).artifact.path
    model = onnx.load(str(src))
    assert "Shape" in {n.op_type for n in model.graph.node}
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, 3, 64, 64)).astype(np.float32) for _ in range(2)]
    absmax, _ = activation_absmax(model, xs)
    prog = convert_model(model, absmax, "test_deit", 8)
    assert check_integer_only(prog.to_onnx()).ok
    assert bit_exact_check(prog, [xs[0][:1], np.concatenate(xs)[:3]])["bit_exact"]
