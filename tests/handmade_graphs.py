"""Small hand-built ONNX graphs (onnx.helper) shared by the graph tests."""

import numpy as np
from onnx import TensorProto, helper
from onnx import numpy_helper as nh


def model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)


def f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def twin_qdq_convs(*, zero_point=0, qtype=np.int8, axis=0, act_dtype=np.int8):
    """x -> Q/DQ -> two Convs whose int8 weights are equal, each read through its own DequantizeLinear
    (what a trained model never has but a zero-initialized one does; onnxsim merges such twins)."""
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 127, (4, 3, 3, 3)).astype(qtype)
    inits = [nh.from_array(w, "w1"), nh.from_array(w.copy(), "w2"),
             nh.from_array(np.full(w.shape[axis], 0.01, np.float32), "ws"),
             nh.from_array(np.full(w.shape[axis], zero_point, qtype), "wz"),
             nh.from_array(np.float32(0.02), "xs"), nh.from_array(np.array(zero_point, act_dtype), "xz")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="x_q"),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], name="x_dq"),
             helper.make_node("DequantizeLinear", ["w1", "ws", "wz"], ["wd1"], name="w1_dq", axis=axis),
             helper.make_node("DequantizeLinear", ["w2", "ws", "wz"], ["wd2"], name="w2_dq", axis=axis),
             helper.make_node("Conv", ["xd", "wd1"], ["y1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["xd", "wd2"], ["y2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["y1", "y2"], ["y"], name="add")]
    return model(nodes, [f32("x", [1, 3, 8, 8])], [f32("y", [1, 4, 8, 8])], inits)


def foldable_float():
    """A float graph with a constant subexpression, a dead branch and a duplicate node."""
    inits = [nh.from_array(np.float32(2.0), "a"), nh.from_array(np.float32(3.0), "b"),
             nh.from_array(np.array([1, 12], np.int64), "shape")]
    nodes = [helper.make_node("Mul", ["a", "b"], ["ab"], name="const_mul"),          # folds to 6
             helper.make_node("Mul", ["x", "ab"], ["x6"], name="scale"),
             helper.make_node("Relu", ["x6"], ["r1"], name="relu_a"),
             helper.make_node("Relu", ["x6"], ["r2"], name="relu_b"),                # duplicate of relu_a
             helper.make_node("Add", ["r1", "r2"], ["s"], name="add"),
             helper.make_node("Sigmoid", ["x"], ["dead"], name="dead_branch"),       # feeds nothing
             helper.make_node("Reshape", ["s", "shape"], ["y"], name="flatten")]
    return model(nodes, [f32("x", [1, 3, 2, 2])], [f32("y", [1, 12])], inits)


def small_convnet(batch="N", size=32):
    """A real, if tiny, classifier: Conv-Relu-Conv-Relu-GlobalAveragePool-Flatten-Gemm (batch symbolic by default)."""
    rng = np.random.default_rng(0)
    inits = [nh.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.2).astype(np.float32), "w1"),
             nh.from_array((rng.standard_normal((16, 8, 3, 3)) * 0.1).astype(np.float32), "w2"),
             nh.from_array((rng.standard_normal((10, 16)) * 0.3).astype(np.float32), "fc"),
             nh.from_array(np.zeros(10, np.float32), "fcb")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], name="fc", transB=1)]
    return model(nodes, [f32("x", [batch, 3, size, size])], [f32("y", [batch, 10])], inits)
