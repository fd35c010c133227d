"""Integer-only dilated convolution: the integer reference equals an independent float64
convolution of the same integers, ONNX Runtime's lowering equals the reference bit for bit,
and a converted float model stays within its quantization error bound."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from edgevis.quant.integer_only import bit_exact_check, convert_model
from edgevis.quant.ivit.calibrate import activation_absmax
from edgevis.quant.ivit.dilated import DilatedConvInteger, dilate_kernel
from edgevis.quant.ivit.program import single_kernel_model


def _ort(kernel, x):
    m = single_kernel_model(kernel, [list(x.shape)])
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {"x0": x.astype(np.int64)})[0]


# MogaNet's multi-order convs: 5x5 d=2 pad 4, 7x7 d=3 pad 9 (depthwise); plus a dense strided case
@pytest.mark.parametrize("k,d,p,group,stride", [(5, 2, 4, 8, 1), (7, 3, 9, 8, 1), (3, 2, 1, 1, 2)])
@pytest.mark.parametrize("bound,split,unsigned", [(127, False, False), (255, False, True), (32767, True, False)])
def test_reference_is_the_dilated_conv_and_ort_agrees(k, d, p, group, stride, bound, split, unsigned):
    rng = np.random.default_rng(k * 10 + d)
    c = 8
    x = rng.integers(0 if unsigned else -bound, bound + 1, size=(2, c, 11, 9)).astype(np.int64)
    w = rng.integers(-127, 128, size=(c, c // group, k, k)).astype(np.int8)
    bias = rng.integers(-1000, 1000, size=c).astype(np.int64)
    kern = DilatedConvInteger(w, bias, (stride, stride), (p, p, p, p), group, split=split, x_unsigned=unsigned,
                              dilations=(d, d))
    ref = kern.ref(x)
    want = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w.astype(np.float64)),
                                      torch.from_numpy(bias).double(), stride=stride, padding=p, dilation=d, groups=group)
    np.testing.assert_array_equal(ref, want.numpy().astype(np.int64))  # exact: |values| < 2**53
    np.testing.assert_array_equal(_ort(kern, x), ref)


def test_dilate_kernel_inserts_zeros():
    w = np.arange(1, 5, dtype=np.int8).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(dilate_kernel(w, (2, 3))[0, 0], [[1, 0, 0, 2], [0, 0, 0, 0], [3, 0, 0, 4]])


def _float_dilated_conv(c, k, d, p):
    rng = np.random.default_rng(3)
    w = (rng.standard_normal((c, 1, k, k)) * 0.2).astype(np.float32)
    b = (rng.standard_normal(c) * 0.1).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[k, k], pads=[p] * 4, dilations=[d, d], group=c)
    g = helper.make_graph([node], "dil", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 12, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 12, 12])],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), w


@pytest.mark.parametrize("act_bits", [8, 16])
def test_converted_dilated_conv_within_its_error_bound(act_bits):
    model, w = _float_dilated_conv(6, 7, 3, 9)
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((1, 6, 12, 12)).astype(np.float32) for _ in range(4)]
    amax, _ = activation_absmax(model, xs)
    prog = convert_model(model, amax, "dilated", act_bits)
    assert any(isinstance(s.kernel, DilatedConvInteger) for s in prog.steps)
    assert bit_exact_check(prog, xs[:2])["bit_exact"]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for x in xs:
        want = sess.run(None, {"x": x})[0]
        got = prog.dequantize_output(prog.run(prog.quantize_input(x)))
        # input step / 2 times sum|w| (input rounding) + |x| sum times half a weight step + one output step
        sx = prog.input_scale
        sw = np.abs(w).reshape(6, -1).max(1) / 127
        wsum = np.abs(w).reshape(6, -1).sum(1)
        bound = sx / 2 * wsum + np.abs(x).max() * w[0].size * sw / 2 + prog.output_scale
        assert np.all(np.abs(got - want) <= bound.reshape(1, -1, 1, 1) + 1e-6), np.abs(got - want).max()
