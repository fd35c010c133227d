"""Cross-layer equalization, unshared initializers and bias correction (edgevis/quant/equalize.py).

Graphs are built with onnx.helper and run through real ONNX Runtime sessions; bias correction is
checked on the digits-trained test_lsnet (random weights say nothing about quantization error)."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper
from onnx import numpy_helper as nh

from edgevis.quant.equalize import correct_biases, equalize, find_pairs, unshare_initializers
from tests.handmade_graphs import f32, model


def _run(m, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def _mobile_block():
    """conv -> Relu -> depthwise conv -> (no activation) -> pointwise conv, with output channels whose weight
    ranges differ by 1000x (what BatchNorm folding leaves in MobileNet-style nets)."""
    rng = np.random.default_rng(0)
    spread = np.logspace(-2, 1, 8).astype(np.float32)
    w1 = (rng.standard_normal((8, 3, 3, 3)) * spread[:, None, None, None]).astype(np.float32)
    b1 = (rng.standard_normal(8) * spread).astype(np.float32)
    w2 = (rng.standard_normal((8, 1, 3, 3)) / spread[:, None, None, None]).astype(np.float32)
    b2 = rng.standard_normal(8).astype(np.float32)
    w3 = rng.standard_normal((5, 8, 1, 1)).astype(np.float32)
    inits = [nh.from_array(w1, "w1"), nh.from_array(b1, "b1"), nh.from_array(w2, "w2"), nh.from_array(b2, "b2"),
             nh.from_array(w3, "w3")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="dw", pads=[1, 1, 1, 1], group=8),
             helper.make_node("Conv", ["c2", "w3"], ["y"], name="pw")]
    return model(nodes, [f32("x", [1, 3, 12, 12])], [f32("y", [1, 5, 12, 12])], inits)


def _out_ranges(m, name):
    w = nh.to_array(next(i for i in m.graph.initializer if i.name == name))
    return np.abs(w.reshape(w.shape[0], -1)).max(axis=1)


def test_equalization_keeps_fp32_outputs_and_equalizes_weight_ranges():
    m = _mobile_block()
    assert [(a.name, b.name) for a, b in find_pairs(m)] == [("conv1", "dw"), ("dw", "pw")]
    eq, rep = equalize(m)
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32)
    ref, got = _run(m, x), _run(eq, x)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()))
    before, after = _out_ranges(m, "w1"), _out_ranges(eq, "w1")
    assert before.max() / before.min() > 100  # the test graph is badly spread ...
    assert after.max() / after.min() < before.max() / before.min() / 10  # ... and equalization narrows it
    r = rep.to_dict()
    assert r["pairs"] == 2 and r["worst_imbalance_before"] > 100 and r["worst_imbalance_after"] < 1.05  # a chain settles over sweeps
    assert onnx.checker.check_model(eq) is None and _out_ranges(m, "w1")[0] == before[0]  # the input is untouched


def test_relu6_and_branching_outputs_are_not_equalized():
    m = _mobile_block()
    clip = helper.make_node("Clip", ["c1", "lo", "hi"], ["r1"], name="relu6")
    m.graph.node[1].CopyFrom(clip)
    m.graph.initializer.extend([nh.from_array(np.float32(0), "lo"), nh.from_array(np.float32(6), "hi")])
    m.graph.output.append(f32("c2", [1, 8, 12, 12]))  # dw's output is also a graph output
    assert find_pairs(m) == []


def test_unshared_initializers_give_each_reader_its_own_copy():
    m = _mobile_block()
    m.graph.node[3].input[1] = "w3"
    m.graph.node.append(helper.make_node("Conv", ["c2", "w3"], ["y2"], name="pw2"))
    m.graph.node.append(helper.make_node("Add", ["y", "y2"], ["z"], name="add"))
    m.graph.output[0].CopyFrom(f32("z", [1, 5, 12, 12]))
    out, copies = unshare_initializers(m)
    assert copies == 1
    readers = [i for n in out.graph.node for i in n.input if i.startswith("w3")]
    assert len(readers) == len(set(readers)) == 2
    x = np.random.default_rng(2).standard_normal((1, 3, 12, 12)).astype(np.float32)
    np.testing.assert_array_equal(_run(out, x), _run(m, x))
