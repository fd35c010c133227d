"""Integer average pooling: border counts as torch computes them, the reference and the ONNX
lowering agree bit for bit, and the result is within half a step of the exact average."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from edgevis.quant.ivit.arith import dyadic
from edgevis.quant.ivit.calibrate import activation_absmax
from edgevis.quant.ivit.convert import IntegerOnlyError
from edgevis.quant.ivit.pool import average_pool_kernels, pool_counts
from edgevis.quant.ivit.program import single_kernel_model
from edgevis.quant.integer_only import bit_exact_check, convert_model as convert


def _ort(kernel, x):
    m = single_kernel_model(kernel, [list(x.shape)])
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {"x0": x.astype(np.int64)})[0]


@pytest.mark.parametrize("h,w,k,s,p,include", [(5, 6, 3, 1, 1, False), (4, 4, 3, 1, 1, True), (7, 5, 5, 2, 2, False),
                                               (2, 3, 3, 1, 1, False), (6, 6, 2, 2, 0, False)])
def test_counts_are_torch_counts(h, w, k, s, p, include):
    ones = torch.ones(1, 1, h, w, dtype=torch.float64)
    # sum pooling of ones / average pooling of ones = number of pixels averaged
    summed = torch.nn.functional.avg_pool2d(ones, k, s, p, count_include_pad=True) * k * k
    avg = torch.nn.functional.avg_pool2d(ones, k, s, p, count_include_pad=include)
    np.testing.assert_array_equal(pool_counts(h, w, (k, k), (s, s), (p, p, p, p), include),
                                  torch.round(summed / avg)[0, 0].numpy().astype(np.int64))


@pytest.mark.parametrize("bound,split,unsigned", [(127, False, False), (255, False, True), (32767, True, False)])
def test_reference_equals_ort_and_stays_within_half_a_step(bound, split, unsigned):
    rng = np.random.default_rng(0)
    lo = 0 if unsigned else -bound
    x = rng.integers(lo, bound + 1, size=(2, 5, 7, 6)).astype(np.int64)
    x[0, 0] = bound  # a constant plane: its average is exact
    x[0, 1, ::2] = lo
    window_sum, divide = average_pool_kernels(5, 7, 6, (3, 3), (1, 1), (1, 1, 1, 1), False, bound, split, unsigned)
    s = window_sum.ref(x)
    y = divide.ref(s)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(_ort(window_sum, x), s)
    np.testing.assert_array_equal(_ort(divide, s), y)
    exact = torch.nn.functional.avg_pool2d(torch.from_numpy(x).double(), 3, 1, 1, count_include_pad=False).numpy()
    assert np.abs(y - exact).max() <= 0.5 + bound * 2.0 ** -29
    np.testing.assert_array_equal(y[0, 0], np.full((7, 6), bound))
    assert np.abs(y).max() <= bound


def _pool_graph(include_pad, ceil_mode=0):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])
    nodes = [helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1],
                              count_include_pad=include_pad, ceil_mode=ceil_mode),
             helper.make_node("Sub", ["p", "x"], ["y"])]
    return helper.make_model(helper.make_graph(nodes, "pool", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("include_pad", [0, 1])
def test_poolformer_mixer_converts_float_free_bit_exact_and_close(include_pad):
    """``avgpool(x) - x`` (PoolFormer's token mixer) through the converter: ORT equals the integer
    reference, and the dequantized output is close to the float graph."""
    from edgevis.graph.integer_check import check_integer_only

    model = _pool_graph(include_pad)
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((1, 4, 6, 6)).astype(np.float32) for _ in range(4)]
    absmax, _ = activation_absmax(model, xs)
    prog = convert(model, absmax, "pool", 8)
    assert check_integer_only(prog.to_onnx()).ok
    assert {s.kernel.kind for s in prog.steps} >= {"conv", "requant"}
    assert bit_exact_check(prog, xs)["bit_exact"]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    qs = ort.InferenceSession(prog.to_onnx().SerializeToString(), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {"x": xs[0]})[0]
    got = qs.run(None, {"x": xs[0]})[0]
    # 8-bit input steps of amax/127 on both operands of the subtraction
    assert np.abs(got - ref).max() <= 3 * float(np.abs(xs[0]).max()) / 127


def test_ceil_mode_is_refused_with_the_op_named():
    model = _pool_graph(0, ceil_mode=1)
    xs = [np.ones((1, 4, 6, 6), np.float32)]
    absmax, _ = activation_absmax(model, xs)
    with pytest.raises(IntegerOnlyError, match="AveragePool.*ceil_mode"):
        convert(model, absmax, "pool", 8)


def test_divisor_multipliers_are_close_to_the_reciprocals():
    counts = pool_counts(5, 5, (3, 3), (1, 1), (1, 1, 1, 1), False)
    m, k = dyadic(1.0 / counts, 127 * 9)
    assert np.all(np.abs(m / 2.0 ** k - 1.0 / counts) <= 2.0 ** -29 / counts)
