"""The lint's rules, each on a hand-built graph that breaks it (and a clean twin that does not)."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx import numpy_helper as nh

from edgevis.core.errors import EdgevisError
from edgevis.graph.lint import lint_model
from handmade_graphs import f32, model, twin_qdq_convs


def _rules(report):
    return {(f.rule, f.severity, f.op) for f in report.findings}


def _find(report, rule, op=None):
    return [f for f in report.findings if f.rule == rule and (op is None or f.op == op)]


def test_symmetric_int8_qdq_is_clean_for_tensorrt():
    r = lint_model(twin_qdq_convs(), "trt")
    assert r.errors == 0 and r.warnings == 0, [f.to_dict() for f in r.findings]
    assert r.settings["precision"] == "int8"


def test_asymmetric_and_uint8_qdq_are_named():
    r = lint_model(twin_qdq_convs(zero_point=3), "trt")
    zp = _find(r, "trt-qdq", "QuantizeLinear")
    assert zp and zp[0].severity == "error" and "symmetric" in zp[0].message and zp[0].nodes == ["x_q"]
    dq = _find(r, "trt-qdq", "DequantizeLinear")
    assert dq and set(dq[0].nodes) == {"x_dq", "w1_dq", "w2_dq"}  # grouped: one finding, every node
    u8 = lint_model(twin_qdq_convs(act_dtype=np.uint8), "trt")
    assert any(f.severity == "warning" and "uint8" in f.message for f in u8.findings)


def test_per_channel_weight_axis_must_be_the_output_channels():
    r = lint_model(twin_qdq_convs(axis=1), "trt")
    f = _find(r, "trt-qdq", "DequantizeLinear")
    assert f and f[0].severity == "error" and "axis 1" in f[0].message and "(0)" in f[0].message


def test_weight_only_quantization_and_dangling_quantize():
    m = twin_qdq_convs()
    for n in m.graph.node:  # conv1 reads the float input directly: weight-only
        if n.name == "conv1":
            n.input[0] = "x"
    m.graph.node.append(helper.make_node("QuantizeLinear", ["y1", "xs", "xz"], ["dangling"], name="dangling_q"))
    r = lint_model(m, "trt")
    assert any(f.op == "Conv" and f.nodes == ["conv1"] and "float input" in f.message for f in r.findings)
    assert any(f.nodes == ["dangling_q"] and "not followed by DequantizeLinear" in f.message for f in r.findings)


def test_per_channel_activation_quantization_is_refused():
    inits = [nh.from_array(np.full(3, 0.1, np.float32), "s"), nh.from_array(np.zeros(3, np.int8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q", axis=1),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq", axis=1)]
    r = lint_model(model(nodes, [f32("x", [1, 3, 4, 4])], [f32("y", [1, 3, 4, 4])], inits), "trt")
    assert any(f.nodes == ["q"] and "activations per tensor" in f.message for f in r.findings)


def test_unsupported_ops_and_integer_only_ops():
    inits = [nh.from_array(np.ones((4, 3), np.int8), "w")]
    nodes = [helper.make_node("Cast", ["x"], ["x8"], to=TensorProto.INT8, name="cast"),
             helper.make_node("MatMulInteger", ["x8", "w"], ["acc"], name="mmi"),
             helper.make_node("Unique", ["acc"], ["u"], name="uniq"),
             helper.make_node("Cast", ["u"], ["y"], to=TensorProto.FLOAT, name="back")]
    r = lint_model(model(nodes, [f32("x", [1, 4])], [f32("y", None)], inits), "trt")
    ops = {f.op: f for f in _find(r, "trt-unsupported-op")}
    assert ops["MatMulInteger"].severity == "error" and "Q/DQ" in ops["MatMulInteger"].fix
    assert ops["Unique"].severity == "error" and ops["Unique"].nodes == ["uniq"]
    assert "Cast" not in ops


def test_vendor_ops_need_a_plugin():
    n = helper.make_node("FusedMatMul", ["x", "x"], ["y"], name="fused", domain="com.microsoft")
    m = model([n], [f32("x", [2, 2])], [f32("y", [2, 2])])
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    f = _find(lint_model(m, "trt"), "trt-unsupported-op")
    assert f and "com.microsoft::FusedMatMul" in f[0].message


def test_opset_and_newer_ops_by_trt_version():
    m = model([helper.make_node("Relu", ["x"], ["y"], name="r")], [f32("x", [1])], [f32("y", [1])], opset=22)
    assert _find(lint_model(m, "trt", trt_version="10"), "trt-opset")[0].severity == "warning"
    m26 = model([helper.make_node("Relu", ["x"], ["y"], name="r")], [f32("x", [1])], [f32("y", [1])], opset=26)
    assert _find(lint_model(m26, "trt"), "trt-opset")[0].severity == "error"


def test_restrictions_the_graph_decides():
    inits = [nh.from_array(np.array([1.0, 1.0, 2.0, 2.0], np.float32), "scales")]
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["r"], name="up", mode="cubic"),
             helper.make_node("Shape", ["r"], ["sh"], name="shape"),
             helper.make_node("Slice", ["sh", "one", "two"], ["ax"], name="axes_from_shape"),
             helper.make_node("ReduceMean", ["r", "ax"], ["y"], name="mean_dyn_axes")]
    inits += [nh.from_array(np.array([1], np.int64), "one"), nh.from_array(np.array([2], np.int64), "two")]
    r = lint_model(model(nodes, [f32("x", [1, 3, 4, 4])], [f32("y", None)], inits, opset=18), "trt")
    found = {f.op: f for f in _find(r, "trt-op-restriction")}
    assert "cubic" in found["Resize"].message and found["ReduceMean"].nodes == ["mean_dyn_axes"]


def test_dynamic_batch_needs_a_profile():
    m = model([helper.make_node("Relu", ["x"], ["y"], name="r")], [f32("x", ["batch", 3])], [f32("y", ["batch", 3])])
    f = _find(lint_model(m, "trt"), "trt-dynamic-shape")
    assert f and "batch" in f[0].message and "--min-shape x:1x3" in f[0].fix


def test_int64_constants_out_of_int32_range_and_integer_input_to_float_only_ops():
    inits = [nh.from_array(np.array([2**40], np.int64), "big"), nh.from_array(np.array([2**62], np.int64), "end")]
    nodes = [helper.make_node("Add", ["i", "big"], ["a"], name="add_big"),
             helper.make_node("Slice", ["a", "zero", "end"], ["s"], name="slice_to_end"),
             helper.make_node("Sqrt", ["s"], ["y"], name="int_sqrt")]
    inits.append(nh.from_array(np.array([0], np.int64), "zero"))
    i64 = helper.make_tensor_value_info("i", TensorProto.INT64, [4])
    r = lint_model(model(nodes, [i64], [helper.make_tensor_value_info("y", TensorProto.INT64, None)], inits), "trt")
    ints = _find(r, "trt-int64")
    assert [f.nodes for f in ints if f.severity == "warning"] == [["big"]]  # Slice's to-the-end is clamped safely
    assert any(f.op == "Sqrt" and f.severity == "error" for f in ints)


def _decomposed_layernorm():
    inits = [nh.from_array(np.array(2.0, np.float32), "two"), nh.from_array(np.array(1e-5, np.float32), "eps"),
             nh.from_array(np.array([-1], np.int64), "axes")]
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["mu"], name="mean"),
             helper.make_node("Sub", ["x", "mu"], ["d"], name="sub"),
             helper.make_node("Pow", ["d", "two"], ["d2"], name="square"),
             helper.make_node("ReduceMean", ["d2", "axes"], ["var"], name="var"),
             helper.make_node("Add", ["var", "eps"], ["ve"], name="add_eps"),
             helper.make_node("Sqrt", ["ve"], ["sd"], name="sqrt"),
             helper.make_node("Div", ["d", "sd"], ["y"], name="div")]
    return model(nodes, [f32("x", [1, 4, 8])], [f32("y", [1, 4, 8])], inits, opset=18)


def test_decomposed_layernorm_in_fp16_is_flagged():
    f = _find(lint_model(_decomposed_layernorm(), "trt", precision="fp16"), "trt-layernorm-fp16")
    assert f and f[0].severity == "warning" and f[0].nodes == ["square"] and "opset >= 17" in f[0].fix
    assert _find(lint_model(_decomposed_layernorm(), "trt", precision="fp32"), "trt-layernorm-fp16")[0].severity == "info"
    native = model([helper.make_node("LayerNormalization", ["x", "g"], ["y"], name="ln", axis=-1)],
                   [f32("x", [1, 4, 8])], [f32("y", [1, 4, 8])], [nh.from_array(np.ones(8, np.float32), "g")])
    assert not _find(lint_model(native, "trt", precision="fp16"), "trt-layernorm-fp16")


def test_precision_rules_for_tensorrt_10_and_11():
    fp32 = _decomposed_layernorm()
    assert _find(lint_model(fp32, "trt", precision="int8"), "trt-precision")[0].severity == "error"
    assert _find(lint_model(fp32, "trt", trt_version="11", precision="fp16"), "trt-precision")
    assert not _find(lint_model(fp32, "trt", trt_version="10", precision="fp16"), "trt-precision")


def test_ort_cpu_pitfalls():
    r = lint_model(twin_qdq_convs(), "ort-cpu")  # s8 activations
    assert any(f.severity == "warning" and "uint8 activations" in f.message for f in r.findings)
    assert not any("uint8 activations" in f.message
                   for f in lint_model(twin_qdq_convs(act_dtype=np.uint8, zero_point=0), "ort-cpu").findings)
    # attention: a MatMul of two dequantized activations, and logits through Q/DQ at the output
    inits = [nh.from_array(np.float32(0.1), "s"), nh.from_array(np.uint8(128), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["a", "s", "z"], ["aq"]), helper.make_node("DequantizeLinear", ["aq", "s", "z"], ["ad"]),
             helper.make_node("QuantizeLinear", ["b", "s", "z"], ["bq"]), helper.make_node("DequantizeLinear", ["bq", "s", "z"], ["bd"]),
             helper.make_node("MatMul", ["ad", "bd"], ["m"], name="qk"),
             helper.make_node("QuantizeLinear", ["m", "s", "z"], ["mq"]),
             helper.make_node("DequantizeLinear", ["mq", "s", "z"], ["y"], name="out_dq")]
    r = lint_model(model(nodes, [f32("a", [2, 2]), f32("b", [2, 2])], [f32("y", [2, 2])], inits), "ort-cpu")
    assert any(f.nodes == ["qk"] and "two dequantized activations" in f.message for f in r.findings)
    assert any(f.nodes == ["out_dq"] and "logits are rounded" in f.message for f in r.findings)


def test_bad_arguments():
    with pytest.raises(EdgevisError, match="unknown lint target"):
        lint_model(twin_qdq_convs(), "tflite")
    with pytest.raises(EdgevisError, match="10 or 11"):
        lint_model(twin_qdq_convs(), "trt", trt_version="8")


def test_exported_models_from_the_other_issues(lsnet_t_export, tmp_path):
    """The real lsnet_t export is clean for TensorRT but for its dynamic batch; its ORT-optimized twin is not."""
    from edgevis.runtimes.ort_build import build_ort

    m = onnx.load(lsnet_t_export.artifact.path)
    r = lint_model(m, "trt")
    assert r.errors == 0 and {f.rule for f in r.findings} == {"trt-dynamic-shape"}
    opt = build_ort(lsnet_t_export.artifact.path, tmp_path / "opt.onnx")
    r2 = lint_model(onnx.load(opt.path), "trt")
    assert r2.errors and any("com.microsoft" in f.message for f in r2.findings)
