"""GELU and Add+LayerNorm, spelled as torch's dynamo exporter writes them, fused into ORT's contrib ops
(onnxruntime.transformers' optimizer), with the same outputs on ONNX Runtime."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgevis.graph.fusions import fuse_for_ort
from edgevis.runtimes.latency import cpu_session

T, C = 5, 16


def _mlp_block(gelu: bool = True, shape=(1, T, C)) -> onnx.ModelProto:
    """x -> LayerNorm -> MatMul -> GELU (x * (0.5 * (erf(x / sqrt2) + 1))) -> MatMul -> residual Add -> LayerNorm"""
    rng = np.random.default_rng(0)
    f = lambda a, n: numpy_helper.from_array(np.asarray(a, np.float32), n)  # noqa: E731
    inits = [f(rng.normal(0, 0.3, (C, 2 * C)), "w1"), f(rng.normal(0, 0.3, (2 * C, C)), "w2"),
             f(np.ones(C), "g"), f(np.zeros(C), "b"), f(np.sqrt(2.0), "sqrt2"), f(1.0, "one"), f(0.5, "half")]
    n = helper.make_node
    nodes = [n("LayerNormalization", ["x", "g", "b"], ["ln"], name="ln0", axis=-1),
             n("MatMul", ["ln", "w1"], ["h"], name="fc1")]
    if gelu:
        nodes += [n("Div", ["h", "sqrt2"], ["d"], name="div"), n("Erf", ["d"], ["e"], name="erf"),
                  n("Add", ["e", "one"], ["e1"], name="add1"), n("Mul", ["half", "e1"], ["e2"], name="mulhalf"),
                  n("Mul", ["h", "e2"], ["a"], name="gelu")]
    else:
        nodes += [n("Relu", ["h"], ["a"], name="relu")]
    nodes += [n("MatMul", ["a", "w2"], ["o"], name="fc2"), n("Add", ["x", "o"], ["r"], name="residual"),
              n("LayerNormalization", ["r", "g", "b"], ["y"], name="ln1", axis=-1)]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _run(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return cpu_session(m.SerializeToString()).run(None, {"x": x})[0]


def test_gelu_and_skip_layernorm_are_fused_with_the_same_outputs():
    m = _mlp_block()
    fused, rep = fuse_for_ort(m)
    ops = [n.op_type for n in fused.graph.node]
    assert rep.changed and rep.fused.get("Gelu") == 1 and rep.fused.get("SkipLayerNormalization") == 1
    assert "Erf" not in ops and "Div" not in ops and ops.count("LayerNormalization") == 1
    assert rep.nodes_after < rep.nodes_before == len(m.graph.node)
    assert [n.op_type for n in m.graph.node].count("Erf") == 1  # the input is not changed
    x = np.random.default_rng(1).normal(0, 1, (1, T, C)).astype(np.float32)
    np.testing.assert_allclose(_run(fused, x), _run(m, x), rtol=1e-4, atol=1e-4)


def test_a_graph_with_nothing_to_fuse_comes_back_as_it_was():
    m = _mlp_block(gelu=False)
    m.graph.node[-2].op_type = "Sub"  # no residual Add before the LayerNorm either
    out, rep = fuse_for_ort(m)
    assert out is m and not rep.changed and rep.fused == {}


def test_an_optimizer_failure_leaves_the_graph_unfused_and_says_why(monkeypatch):
    import onnxruntime.transformers.optimizer as opt

    def broken(*a, **k):
        raise IndexError("list index out of range\nmore context")

    monkeypatch.setattr(opt, "optimize_model", broken)
    m = _mlp_block()
    out, rep = fuse_for_ort(m)
    assert out is m and not rep.changed
    assert rep.error == "IndexError: list index out of range" and rep.to_dict()["error"] == rep.error


def test_a_fusion_ort_cannot_run_is_not_applied(capfd):
    # FocalNet's residual Add + LayerNorm over the last axis of a 4-D (B, H, W, C) tensor: the library fuses it
    # into SkipLayerNormalization, whose kernel takes 2-D or 3-D input only ("got 4"); calibration died on it
    m = _mlp_block(shape=(1, 2, T, C))
    out, rep = fuse_for_ort(m)
    assert out is m and not rep.changed
    assert "does not run on ONNX Runtime" in rep.error and "dimensions" in rep.error
    assert "SkipLayerNorm" not in capfd.readouterr().err  # ORT's own red log line does not reach the terminal
    x = np.random.default_rng(1).normal(0, 1, (1, 2, T, C)).astype(np.float32)
    assert _run(out, x).shape == (1, 2, T, C)


def test_an_untyped_graph_keeps_the_types_ort_calibration_needs_past_the_fused_ops(tmp_path):
    """A hand-made file without value_info: ONNX's shape inference cannot see past a fused contrib op, and ORT's
    calibrator skipped every tensor after the first one (quantizing then failed: "Unable to get valid
    quantization scale"). The unfused graph is typed before fusing, so every tensor keeps a type and a range."""
    from edgevis.quant.calibration import calibrate_ranges

    m = _mlp_block()
    assert not m.graph.value_info
    fused, rep = fuse_for_ort(m)
    assert rep.fused.get("Gelu") == 1 and rep.fused.get("SkipLayerNormalization") == 1
    typed = {v.name: v.type.tensor_type.elem_type for v in (*fused.graph.value_info, *fused.graph.output)}
    outputs = [o for n in fused.graph.node for o in n.output]
    assert all(typed.get(o) == TensorProto.FLOAT for o in outputs), [o for o in outputs if o not in typed]
    path = tmp_path / "fused.onnx"
    onnx.save(fused, path)
    xs = iter([np.random.default_rng(i).normal(0, 1, (1, T, C)).astype(np.float32) for i in range(4)])
    assert calibrate_ranges(path, xs, "x", "minmax", tmp_path / "ranges", tmp_path) == 4
    ranges = (tmp_path / "ranges").read_text() if (tmp_path / "ranges").is_file() else ""
    gelu_out = next(n.output[0] for n in fused.graph.node if n.op_type == "Gelu")
    assert gelu_out in ranges  # the MatMul after the fused GELU gets an input range
