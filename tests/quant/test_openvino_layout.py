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


def _laid_out(base: onnx.ModelProto) -> tuple[onnx.ModelProto, dict, dict]:
    """``openvino_layout(base)``, its nodes by name and the node that makes each tensor."""
    m = openvino_layout(base)
    return m, {n.name: n for n in m.graph.node}, {o: n for n in m.graph.node for o in n.output}


def test_openvino_layout_reads_the_graph_as_openvino_runs_it_and_names_what_it_floats():
    base = _graph()
    m, by_name, producer = _laid_out(base)
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


def _mm_graph() -> onnx.ModelProto:
    """ORT's layout around OpenVINO's fused kernels: x -> Q/DQ -> MatMul (int8 weight) -> Q/DQ -> Sigmoid -> Q/DQ
    -> y1; float scores x.x^T -> Q/DQ -> Add (a constant bias) -> Q/DQ -> Reshape -> Softmax -> y2 (float out, as
    when attn.v is kept in float); other scores -> Q/DQ -> Softmax -> Q/DQ -> y3 (an int8 attention); a second
    MatMul whose product the activation shares with an Add -> y4."""
    w = np.random.default_rng(1).integers(-100, 100, (8, 8)).astype(np.int8)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.float32(0.01), "ws"),
             numpy_helper.from_array(np.int8(0), "wz"), numpy_helper.from_array(np.asarray([1, 4], np.int64), "flat"),
             numpy_helper.from_array(np.asarray([[0.1, -0.2], [0.3, 0.0]], np.float32), "bias")]
    nodes = [helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["w_dq"], name="w_DQ")]
    for name in ("x", "mm", "act", "sc", "b", "sc2", "sm3", "mm4"):
        n, i = _qdq(name, name)
        nodes += n
        inits += i
    nodes += [helper.make_node("MatMul", ["x_dq", "w_dq"], ["mm"], name="matmul"),
              helper.make_node("Sigmoid", ["mm_dq"], ["act"], name="sigmoid"),
              helper.make_node("Identity", ["act_dq"], ["y1"], name="out1"),
              helper.make_node("Transpose", ["x"], ["xt"], name="xt", perm=[1, 0]),
              helper.make_node("MatMul", ["x", "xt"], ["sc"], name="scores"),
              helper.make_node("Add", ["sc_dq", "bias"], ["b"], name="add_bias"),
              helper.make_node("Reshape", ["b_dq", "flat"], ["b_flat"], name="flatten"),
              helper.make_node("Softmax", ["b_flat"], ["y2"], name="softmax"),
              helper.make_node("MatMul", ["x", "xt"], ["sc2"], name="scores2"),
              helper.make_node("Softmax", ["sc2_dq"], ["sm3"], name="softmax_int8"),
              helper.make_node("Identity", ["sm3_dq"], ["y3"], name="out3"),
              helper.make_node("MatMul", ["x_dq", "w_dq"], ["mm4"], name="matmul4"),
              helper.make_node("Relu", ["mm4_dq"], ["r4"], name="relu4"),
              helper.make_node("Add", ["r4", "mm4_dq"], ["y4"], name="add4")]
    order = ["w_DQ", "x_Q", "x_DQ", "matmul", "mm_Q", "mm_DQ", "sigmoid", "act_Q", "act_DQ", "out1", "xt", "scores",
             "sc_Q", "sc_DQ", "add_bias", "b_Q", "b_DQ", "flatten", "softmax", "scores2", "sc2_Q", "sc2_DQ",
             "softmax_int8", "sm3_Q", "sm3_DQ", "out3", "matmul4", "mm4_Q", "mm4_DQ", "relu4", "add4"]
    nodes.sort(key=lambda n: order.index(n.name))
    return model(nodes, [f32("x", [2, 8])], [f32(y, None) for y in ("y1", "y2", "y3", "y4")], inits)


def test_openvino_layout_keeps_no_rounding_inside_what_openvino_fuses_into_one_kernel():
    from edgevis.quant.openvino import ACTIVATION_REASON, SOFTMAX_REASON, layout_floated_why

    base = _mm_graph()
    m, by_name, producer = _laid_out(base)
    # the activation reads the MatMul's product itself: OpenVINO runs it as the FullyConnected's post-op
    assert by_name["sigmoid"].input[0] == "mm" and "mm_Q" not in by_name
    assert producer[by_name["out1"].input[0]].op_type == "DequantizeLinear"  # its own output stays int8
    # a Softmax whose output stays float reads float scores, through the Reshape and the bias Add only it reads
    assert by_name["flatten"].input[0] == "b" and by_name["add_bias"].input[0] == "sc"
    assert not {"sc_Q", "b_Q"} & set(by_name)
    # an int8 Softmax (its output quantized) keeps its int8 input; so does an activation whose product is shared
    assert producer[by_name["softmax_int8"].input[0]].op_type == "DequantizeLinear"
    assert producer[by_name["relu4"].input[0]].op_type == "DequantizeLinear"
    # ORT runs both graphs to the same values within the roundings removed
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 8)).astype(np.float32)  # within every Q range
    run = lambda g: ort.InferenceSession(g.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for got, want in zip(run(m), run(base)):
        assert np.allclose(got, want, atol=0.06)
    # each op the layout floated is named with the rule that floated it
    assert layout_floated_why(base, m, {}) == {"sigmoid": ACTIVATION_REASON, "add_bias": SOFTMAX_REASON,
                                               "flatten": SOFTMAX_REASON}
