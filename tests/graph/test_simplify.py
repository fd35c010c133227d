"""Graph simplification with the real onnxsim and onnxslim: what they fold, what edgevis protects."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx import numpy_helper as nh

from edgevis.core.errors import EdgevisError
from edgevis.graph import simplify as simp
from edgevis.graph.simplify import SimplifyError, simplify_file, simplify_model
from edgevis.runtimes.latency import cpu_session
from handmade_graphs import foldable_float, twin_qdq_convs


def _ops(m):
    return [n.op_type for n in m.graph.node]


def test_float_graph_is_folded_and_numerics_kept(tmp_path):
    src = tmp_path / "f.onnx"
    onnx.save(foldable_float(), src)
    r = simplify_file(src)
    assert r.path == tmp_path / "f.sim.onnx" and r.result.tool == "onnxsim"
    m = onnx.load(r.path)
    # the constant Mul folded, the dead Sigmoid and the duplicate Relu gone
    assert "Sigmoid" not in _ops(m) and _ops(m).count("Relu") == 1 and len(m.graph.node) < 7
    assert r.check["passed"] and r.check["inputs"] == 2
    x = np.random.default_rng(1).standard_normal((1, 3, 2, 2)).astype(np.float32)
    want = cpu_session(str(src)).run(None, {"x": x})[0]
    np.testing.assert_allclose(cpu_session(str(r.path)).run(None, {"x": x})[0], want, rtol=1e-6)
    side = json.loads((tmp_path / "f.sim.onnx.json").read_text())
    assert side["simplify"]["tool"] == "onnxsim" and side["simplify"]["nodes_before"] == 7
    d = r.to_dict()
    assert d["ops_before"]["Relu"] == 2 and d["ops_after"]["Relu"] == 1


def test_qdq_nodes_survive_what_onnxsim_would_merge():
    m = twin_qdq_convs()
    # what the tool does on its own: the twin DequantizeLinear nodes (equal int8 weights) are merged
    import onnxsim

    raw, _ = onnxsim.simplify(m)
    assert _ops(raw).count("DequantizeLinear") < 3
    r = simplify_model(m)
    assert r.tool == "onnxsim"
    assert _ops(r.model).count("DequantizeLinear") == 3 and _ops(r.model).count("Conv") == 2
    assert r.protected == {"qdq_constants": 2, "qdq_nodes": 4}
    # the quantized weights are initializers again, not graph inputs
    assert [i.name for i in r.model.graph.input] == ["x"]
    assert {"w1", "w2"} <= {i.name for i in r.model.graph.initializer}


def test_a_tool_that_touches_qdq_is_rejected_and_the_next_one_used(monkeypatch):
    # without edgevis' protection onnxsim merges the twins; the signature check must catch it
    monkeypatch.setattr(simp, "_protected_constants", lambda model: set())
    r = simplify_model(twin_qdq_convs())
    assert r.tool == "onnxslim"
    assert r.attempts[0] == {"tool": "onnxsim", "result": "rejected",
                             "reason": "it changed QuantizeLinear/DequantizeLinear nodes"}
    assert _ops(r.model).count("DequantizeLinear") == 3
    with pytest.raises(SimplifyError, match="onnxsim rejected"):
        simplify_model(twin_qdq_convs(), tools=("onnxsim",))


def test_numeric_rejection_falls_back_and_all_rejected_is_an_error():
    seen = []

    def accept(candidate):
        seen.append(len(candidate.graph.node))
        return "differs" if len(seen) == 1 else None

    r = simplify_model(foldable_float(), accept=accept)
    assert r.tool == "onnxslim" and r.attempts[0]["result"] == "rejected" and len(seen) == 2
    with pytest.raises(SimplifyError, match="no simplifier kept the model intact"):
        simplify_model(foldable_float(), accept=lambda c: "differs")


def _integer_only_model():
    """Q -> integer ops (a MatMulInteger, a constant subexpression onnxsim would fold) -> DQ."""
    inits = [nh.from_array(np.float32(0.1), "s"), nh.from_array(np.int8(0), "z"),
             nh.from_array(np.ones((4, 3), np.int8), "w"), nh.from_array(np.int32(2), "c1"),
             nh.from_array(np.int32(3), "c2"), nh.from_array(np.float32(0.01), "so"), nh.from_array(np.int32(0), "zo")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("MatMulInteger", ["xq", "w"], ["acc"]),
             helper.make_node("Add", ["c1", "c2"], ["c"]),
             helper.make_node("Mul", ["acc", "c"], ["y32"]),
             helper.make_node("DequantizeLinear", ["y32", "so", "zo"], ["y"])]
    g = helper.make_graph(nodes, "io", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def test_integer_only_graph_is_left_exactly_as_written(tmp_path):
    m = _integer_only_model()
    import onnxsim

    assert len(onnxsim.simplify(m)[0].graph.node) < len(m.graph.node)  # the tool alone would fold c1 + c2
    r = simplify_model(m)
    assert r.tool == "none" and "integer-only" in r.reason and r.protected == {"integer_only_nodes": 5}
    assert r.model.graph.SerializeToString() == m.graph.SerializeToString()
    src = tmp_path / "io.onnx"
    onnx.save(m, src)
    fr = simplify_file(src)
    assert fr.warnings and "left unchanged" in fr.warnings[0]
    assert onnx.load(fr.path).graph.SerializeToString() == m.graph.SerializeToString()


def test_models_over_the_protobuf_limit_are_refused_and_nothing_is_written(tmp_path, monkeypatch):
    src = tmp_path / "f.onnx"
    onnx.save(foldable_float(), src)
    monkeypatch.setattr(simp, "PROTOBUF_LIMIT", 100)
    with pytest.raises(SimplifyError, match="over protobuf's 2 GiB limit"):
        simplify_file(src)
    assert not (tmp_path / "f.sim.onnx").exists()


def test_bad_arguments(tmp_path):
    src = tmp_path / "f.onnx"
    onnx.save(foldable_float(), src)
    with pytest.raises(EdgevisError, match="unknown simplifier"):
        simplify_model(foldable_float(), tools=("polygraphy",))
    with pytest.raises(EdgevisError, match="is the input file"):
        simplify_file(src, src)


def test_export_simplifies_and_records_it(lsnet_t_export):
    s = lsnet_t_export.simplify
    assert s["tool"] in ("onnxsim", "onnxslim") and s["nodes_after"] < s["nodes_before"]
    assert lsnet_t_export.artifact.provenance["simplify"] == s
    assert sum(lsnet_t_export.nodes.values()) == s["nodes_after"]
