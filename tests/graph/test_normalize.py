"""Trailing empty optional inputs (the ORT optimizer segfault) are respelled before ORT sees them, and lint
reports them."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgevis.graph.lint import lint_model
from edgevis.core.normalize import empty_trailing_io, normalize_model
from edgevis.runtimes.ort import run_session, session_from_onnx


def ln_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 8])
    scale = numpy_helper.from_array(np.linspace(0.5, 1.5, 8).astype(np.float32), "scale")
    nodes = [helper.make_node("LayerNormalization", ["x", "scale", ""], ["y"], axis=-1)]
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y], [scale]),
                             opset_imports=[helper.make_opsetid("", 18)], ir_version=9)


def test_normalize_drops_trailing_empty_names_and_keeps_the_numbers(tmp_path):
    m = ln_model()
    assert [n.op_type for n in empty_trailing_io(m)] == ["LayerNormalization"]
    fixed, changed = normalize_model(m)
    assert changed == 1 and list(fixed.graph.node[0].input) == ["x", "scale"]
    assert list(m.graph.node[0].input) == ["x", "scale", ""]  # the input is not modified
    assert normalize_model(fixed) == (fixed, 0)
    f = tmp_path / "ln.onnx"
    onnx.save(m, f)
    x = np.random.default_rng(0).standard_normal((2, 4, 8)).astype(np.float32)
    # the reference: ORT at BASIC, where the file as written does not crash
    o = ort.SessionOptions()
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    want = ort.InferenceSession(str(f), o, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = run_session(session_from_onnx(f), {"x": x})[0]  # ALL level: survives because it is respelled
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_lint_reports_it_for_both_targets():
    for target, severity in (("ort-cpu", "error"), ("trt", "warning")):
        found = [f for f in lint_model(ln_model(), target).findings if f.rule == "empty-optional-io"]
        assert len(found) == 1 and found[0].severity == severity and "segfault" in found[0].message
