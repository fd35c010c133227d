"""Integer-only kernels: the ONNX lowering on ONNX Runtime equals the integer reference bit for bit,
and the integer results stay within stated bounds of the float functions they approximate."""

import math

import numpy as np
import onnxruntime as ort
import pytest

from edgevis.quant.ivit.arith import RangeError, dyadic, isqrt, requant
from edgevis.quant.ivit.kernels import (F, NORM_G, SIGMOID_P, Clip, ConvInteger, Exp2, Gelu, MatMulInteger, Norm,
                                        Requant, Shiftmax, Sigmoid, float_gelu, float_gelu_ivit, float_norm,
                                        float_sigmoid, float_softmax)
from edgevis.quant.ivit.lower import Builder
from edgevis.quant.ivit.program import single_kernel_model


def ort_run(kernel, *xs):
    m = single_kernel_model(kernel, [list(x.shape) for x in xs])
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {f"x{i}": x.astype(np.int64) for i, x in enumerate(xs)})[0]


def assert_bit_exact(kernel, *xs):
    ref = kernel.ref(*[x.astype(np.int64) for x in xs])
    got = ort_run(kernel, *xs)
    assert ref.dtype == np.int64 and got.dtype == np.int64
    np.testing.assert_array_equal(got, ref)
    return ref


def wide_inputs(shape, bound, seed):
    """Random values over the whole range, plus the edges, zeros and constant rows."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-bound, bound + 1, size=shape)
    x.reshape(-1, shape[-1])[0] = bound  # constant row at the top edge
    x.reshape(-1, shape[-1])[1] = -bound
    x.reshape(-1, shape[-1])[2] = 0
    x.reshape(-1, shape[-1])[3, ::2] = bound  # alternating extremes
    x.reshape(-1, shape[-1])[3, 1::2] = -bound
    return x.astype(np.int64)


# --------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("ratio", [1e-9, 3.3e-5, 0.0137, 0.5, 1.0, 7.25, 1234.5])
def test_dyadic_is_close_and_cannot_overflow(ratio):
    bound = 2 ** 31 if ratio < 100 else 2 ** 20
    m, k = dyadic(ratio, bound)
    assert abs(int(m) / 2.0 ** int(k) - ratio) <= ratio * 2.0 ** -29
    assert bound * int(m) < 2 ** 62


def test_requant_rounds_half_up_with_floor_for_negatives():
    x = np.array([-7, -6, -5, -1, 0, 1, 5, 6, 7], np.int64)
    # x * 0.5 exactly: m/2**k = 1/2
    np.testing.assert_array_equal(requant(x, np.int64(1), np.int64(1)), np.floor(x / 2 + 0.5).astype(np.int64))
    m, k = dyadic(0.0137, 2 ** 31)
    x = wide_inputs((8, 64), 2 ** 31 - 1, 0)
    assert_bit_exact(Requant(m, k, -127, 127), x)
    exact = np.clip(np.floor(x * (int(m) / 2.0 ** int(k)) + 0.5), -127, 127)
    np.testing.assert_array_equal(requant(x, m, k, -127, 127), exact)


def test_floor_division_lowering_matches_floor_for_every_sign():
    b = Builder()
    y = b.floor_div("x0", b.const(np.array([3, 7, 256], np.int64)))
    from onnx import TensorProto, helper

    g = helper.make_graph(b.nodes + [helper.make_node("Identity", [y], ["y0"])], "g",
                          [helper.make_tensor_value_info("x0", TensorProto.INT64, [4, 3])],
                          [helper.make_tensor_value_info("y0", TensorProto.INT64, None)], b.inits)
    s = ort.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
                             .SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.array([[-7, -7, -257], [-1, -1, -1], [0, 0, 0], [5, 13, 511]], np.int64)
    np.testing.assert_array_equal(s.run(None, {"x0": x})[0], x // np.array([3, 7, 256]))


# --------------------------------------------------------------------------- isqrt


def ivit_isqrt(n):
    """I-ViT's integer sqrt as its code does it: Newton from 2**16, 10 steps (for contrast)."""
    x = 2 ** 16
    for _ in range(10):
        x = (x + n // x) // 2
    return x


def test_isqrt_exact_where_ivit_newton_is_not():
    assert ivit_isqrt(10 ** 4) == 108  # the reference's flaw, as the issue reports it
    assert ivit_isqrt(4096) != 64 and ivit_isqrt(100) != 10  # 10 halvings from 2**16 cannot reach small roots
    assert int(isqrt(np.array([10 ** 4]))[0]) == 100
    assert int(isqrt(np.array([4096]))[0]) == 64
    assert int(isqrt(np.array([100]))[0]) == 10


def test_isqrt_is_floor_sqrt_for_every_input_of_its_domain():
    rng = np.random.default_rng(1)
    small = np.arange(1 << 20, dtype=np.int64)  # exhaustive below 2**20
    r = isqrt(small)
    assert np.all(r * r <= small) and np.all((r + 1) * (r + 1) > small)
    k = rng.integers(0, 2 ** 31, 20000, dtype=np.int64)
    near = np.concatenate([k * k - 1, k * k, k * k + 1, rng.integers(0, 2 ** 62, 20000, dtype=np.int64),
                           np.array([2 ** 62 - 1, 0, 1, 2, 3], np.int64)])
    near = near[(near >= 0) & (near < 2 ** 62)]
    r = isqrt(near)
    assert all(int(a) == math.isqrt(int(b)) for a, b in zip(r, near))
    with pytest.raises(RangeError):
        isqrt(np.array([2 ** 62], np.int64))


def test_isqrt_lowering_is_bit_exact():
    b = Builder()
    y = b.isqrt("x0", 31)
    from onnx import TensorProto, helper

    g = helper.make_graph(b.nodes + [helper.make_node("Identity", [y], ["y0"])], "g",
                          [helper.make_tensor_value_info("x0", TensorProto.INT64, [None])],
                          [helper.make_tensor_value_info("y0", TensorProto.INT64, None)], b.inits)
    s = ort.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
                             .SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(2)
    k = rng.integers(0, 2 ** 31, 5000, dtype=np.int64)
    n = np.concatenate([np.arange(5000), k * k - 1, k * k, rng.integers(0, 2 ** 62, 5000, dtype=np.int64)]).astype(np.int64)
    n = n[n >= 0]
    np.testing.assert_array_equal(s.run(None, {"x0": n})[0], isqrt(n))


# --------------------------------------------------------------------------- exp / softmax


@pytest.mark.parametrize("scale", [2e-5, 1e-3, 0.05])
def test_exp_matches_float_and_is_exactly_one_at_zero(scale):
    bound = 65534
    t = -np.arange(0, bound + 1, 7, dtype=np.int64)
    k = Exp2.for_scale(scale, bound)
    e = k.ref(t)
    assert e[0] == 1 << F and np.all(e >= 0) and np.all(np.diff(e) <= 0)  # exp(0) exact, monotone
    err = np.abs(e / 2.0 ** F - np.exp(t * scale))
    assert err.max() < 3e-4  # cubic 2**f (1.4e-4 relative) + Q16 rounding


@pytest.mark.parametrize("scale,row", [(1e-3, 197), (2e-5, 4096), (0.02, 49)])
def test_shiftmax_bit_exact_and_close_to_softmax(scale, row):
    x = wide_inputs((2, 4, row), 32767, row)
    k = Shiftmax.for_scale(scale, 32767, row, q=255)
    y = assert_bit_exact(k, x)
    assert y.min() >= 0 and y.max() <= 255
    err = np.abs(y / 255 - float_softmax(x * scale))
    assert err.max() <= 0.5 / 255 + 2e-3


def test_shiftmax_exp_sum_bound_holds_and_is_enforced():
    # the sum is largest when every element equals the row maximum: exactly row * 2**F
    row = 16384
    x = np.zeros((1, row), np.int64)
    k = Shiftmax.for_scale(1e-6, 32767, row, q=32767)
    t = x - x.max(axis=-1, keepdims=True)
    s = int(k.exp.ref(t).sum())
    assert s == row * (1 << F) and s < 2 ** 31  # 16384 * 65536 = 2**30: a 32-bit sum would still hold it
    y = assert_bit_exact(k, x)
    assert np.all(y == 2) and int(y.sum()) == row * 2  # 32767/16384 rounds to 2 per element
    # and the smallest possible sum (one element at the max, the rest underflowing to 0) is 2**F > 0:
    x = np.full((1, row), -32767, np.int64)
    x[0, 0] = 32767
    assert int(Shiftmax.for_scale(0.05, 32767, row).exp.ref(x - 32767).sum()) == 1 << F
    with pytest.raises(RangeError):  # rows so long that the int64 sum could overflow are refused
        Shiftmax.for_scale(1e-3, 32767, 2 ** 47)


# --------------------------------------------------------------------------- sigmoid / GELU


@pytest.mark.parametrize("scale", [1e-4, 5e-4, 4e-3])
def test_sigmoid_bit_exact_and_close(scale):
    x = wide_inputs((4, 1000), 32767, 3)
    y = assert_bit_exact(Sigmoid.for_scale(scale, 32767), x)
    assert np.abs(y / 2.0 ** SIGMOID_P - float_sigmoid(x * scale)).max() < 1.5e-4


@pytest.mark.parametrize("scale", [1e-4, 5e-4, 2e-3])
def test_gelu_bit_exact_and_closer_to_erf_gelu_than_ivit_form(scale):
    x = wide_inputs((4, 1000), 32767, 4)
    y = assert_bit_exact(Gelu.for_scale(scale, 32767), x)
    xr = x * scale
    ours = np.abs(y * scale / 2.0 ** SIGMOID_P - float_gelu(xr)).max()
    ivit = np.abs(float_gelu_ivit(xr) - float_gelu(xr)).max()  # even its float form, before any rounding
    assert ours < 1.5e-3 * max(1.0, np.abs(xr).max() / 8)
    if np.abs(xr).max() > 1:
        assert ours < ivit / 10


# --------------------------------------------------------------------------- norms


@pytest.mark.parametrize("n,scale", [(192, 1e-3), (768, 3e-5), (9, 0.01)])
def test_layernorm_bit_exact_and_close(n, scale):
    rng = np.random.default_rng(n)
    x = wide_inputs((3, 5, n), 32767, n)
    x[1, 0] = rng.integers(-3, 4, n)  # a tiny variance: where a Newton sqrt from 2**16 goes wrong
    x[1, 1] = 7  # zero variance: std clamps to one unit, output 0 (no division by zero)
    gamma = rng.integers(-32767, 32768, n)
    beta = rng.integers(-100000, 100000, n)
    k = Norm.for_input((-1,), n, 32767, scale, 1e-6, gamma, beta)
    assert_bit_exact(k, x)
    core = Norm.for_input((-1,), n, 32767, scale, 1e-6)
    z = assert_bit_exact(core, x) / 2.0 ** NORM_G
    ref = float_norm(x * scale, (-1,), 1e-6)
    ok = np.ones(z.shape[:-1], bool)
    ok[1, 1] = False
    assert np.abs(z - ref)[ok].max() < 2e-3 * max(1.0, np.abs(ref).max())
    assert np.all(z[1, 1] == 0)
    # the output bound the converter relies on: |z| <= 3 sqrt(n) 2**G + 1
    assert np.abs(z).max() * 2 ** NORM_G <= 3 * math.sqrt(n) * 2 ** NORM_G + 1


def test_groupnorm_over_spatial_axes_bit_exact():
    x = wide_inputs((2, 4, 9, 36), 32767, 7).reshape(2, 4, 9 * 36)
    k = Norm.for_input((2,), 9 * 36, 32767, 1e-3, 1e-5)
    z = assert_bit_exact(k, x) / 2.0 ** NORM_G
    assert np.abs(z - float_norm(x * 1e-3, (2,), 1e-5)).max() < 2e-3


# --------------------------------------------------------------------------- linear ops


@pytest.mark.parametrize("group,split,unsigned", [(1, False, False), (1, True, False), (8, False, True), (8, True, False)])
def test_conv_integer_bit_exact(group, split, unsigned):
    rng = np.random.default_rng(group)
    w = rng.integers(-127, 128, (8, 8 // group, 3, 3)).astype(np.int8)
    bias = rng.integers(-10 ** 6, 10 ** 6, 8)
    lo, hi = (0, 255) if unsigned else ((-32767, 32767) if split else (-127, 127))
    x = rng.integers(lo, hi + 1, (2, 8, 9, 7))
    assert_bit_exact(ConvInteger(w, bias, (2, 1), (1, 1, 1, 1), group, split=split, x_unsigned=unsigned), x)


def test_matmul_integer_bit_exact_for_weights_and_activations():
    rng = np.random.default_rng(5)
    w = rng.integers(-127, 128, (64, 16)).astype(np.int8)
    a = rng.integers(-127, 128, (3, 10, 64))
    assert_bit_exact(MatMulInteger(w, rng.integers(-1000, 1000, 16)), a)
    assert_bit_exact(MatMulInteger(w, None, split=True), rng.integers(-32767, 32768, (3, 10, 64)))
    p = rng.integers(0, 256, (2, 3, 10, 10))  # a softmax output (uint8) times int8 values
    v = rng.integers(-127, 128, (2, 3, 10, 16))
    assert_bit_exact(MatMulInteger(None, None, a_unsigned=True), p, v)
    assert_bit_exact(MatMulInteger(None, None, split=True), rng.integers(0, 32768, (2, 3, 10, 10)), v)


def test_clip_with_per_channel_bounds():
    x = np.arange(-20, 20).reshape(2, 4, 5)
    assert_bit_exact(Clip(np.array([-1, -2, -3, -4]).reshape(4, 1), np.array([1, 2, 3, 4]).reshape(4, 1)), x)
