"""OpenVINO's layout of a Q/DQ graph (quant/openvino.openvino_layout), read off a small hand-made graph and run
by ONNX Runtime: no second rounding after data movement, no rounding inside an element-wise chain, zero points 0
over a range that holds the old one, and the ops left in float named (layout_floated)."""

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from handmade_graphs import f32, model

from edgevis.quant.openvino import layout_floated, openvino_layout

S, ZP = 0.02, 128  # u8 asymmetric: the range [-2.56, 2.54]


def _qdq(x, name, scale=S, zp=ZP):
    return [helper.make_node("QuantizeLinear", [x, "s_" + name, "z_" + name], [f"{name}_q"], name=f"{name}_Q"),
            helper.make_node("DequantizeLinear", [f"{name}_q", "s_" + name, "z_" + name], [f"{name}_dq"],
                             name=f"{name}_DQ")], [
        numpy_helper.from_array(np.asarray(scale, np.float32), "s_" + name),
        numpy_helper.from_array(np.asarray(zp, np.uint8), "z_" + name)]


def _graph() -> onnx.ModelProto:
    """x -> Q/DQ -> Reshape -> Q/DQ -> two Muls -> Q/DQ each -> Add -> Q/DQ -> Relu, as ORT's quantizer writes it."""
    nodes, inits = [], [numpy_helper.from_array(np.asarray([1, 2, 4], np.int64), "shape")]
    for x, name, scale, zp in (("x", "x", S, ZP), ("r", "r", S, ZP), ("m1", "m1", 0.03, 40), ("m2", "m2", 0.03, 40),
                               ("a", "a", 0.05, 60)):
        n, i = _qdq(x, name, scale, zp)
        inits += i
        if name == "x":
            nodes += n + [helper.make_node("Reshape", ["x_dq", "shape"], ["r"], name="reshape")]
        elif name == "r":
            nodes += n + [helper.make_node("Mul", ["r_dq", "r_dq"], ["m1"], name="mul1"),
                          helper.make_node("Mul", ["r_dq", "r_dq"], ["m2"], name="mul2")]
        elif name == "m2":
            nodes += n + [helper.make_node("Add", ["m1_dq", "m2_dq"], ["a"], name="add")]
        elif name == "a":
            nodes += n + [helper.make_node("Relu", ["a_dq"], ["y"], name="relu")]
        else:
            nodes += n
    order = {"x_Q": 0, "x_DQ": 1, "reshape": 2, "r_Q": 3, "r_DQ": 4, "mul1": 5, "mul2": 6, "m1_Q": 7, "m1_DQ": 8,
             "m2_Q": 9, "m2_DQ": 10, "add": 11, "a_Q": 12, "a_DQ": 13, "relu": 14}
    nodes.sort(key=lambda n: order[n.name])
    return model(nodes, [f32("x", [1, 8])], [f32("y", [1, 2, 4])], inits)


def _run(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def test_openvino_layout_reads_the_graph_as_openvino_runs_it_and_names_what_it_floats():
    base = _graph()
    m = openvino_layout(base)
    by_name = {n.name: n for n in m.graph.node}
    producer = {o: n for n in m.graph.node for o in n.output}
    # the Muls read the Reshape's int8 values directly: no Q/DQ pair after data movement
    assert by_name["mul1"].input[0] == "r" and "r_Q" not in by_name
    # the Add reads both products in float: they fuse into one kernel on OpenVINO, nothing rounds between them
    assert list(by_name["add"].input) == ["m1", "m2"] and not {"m1_Q", "m2_Q"} & set(by_name)
    # what a non-element-wise op reads stays quantized
    assert producer[by_name["relu"].input[0]].op_type == "DequantizeLinear"
    # zero points 0; the signed input range [-2.56, 2.54] as int8 over [-2.56, 2.56]
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    for q in (n for n in m.graph.node if n.op_type == "QuantizeLinear"):
        assert int(inits[q.input[2]]) == 0
    xq = by_name["x_Q"]
    assert inits[xq.input[2]].dtype == np.int8 and np.isclose(float(inits[xq.input[1]]), 2.56 / 127)
    # ORT runs the laid-out graph to the same values within a step of the rounding it changed
    x = np.random.default_rng(0).uniform(-2.5, 2.5, (1, 8)).astype(np.float32)
    assert np.allclose(_run(m, x), _run(base, x), atol=0.15)
    # the Add has float inputs only now: named for kept_float; the Muls still read int8 values
    assert layout_floated(base, m, {}) == ["add"]
    assert layout_floated(base, m, {"add": "kept"}) == []
