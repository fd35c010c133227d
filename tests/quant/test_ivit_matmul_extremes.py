"""MatMulInteger at the extremes of its operands: ONNX Runtime's uint8 x int8 product saturates pairs
of products in int16 on AVX2 (255*127 + 255*127 -> 32767), so the lowering must not hand it uint8
operands against int8 weights. Every case here failed bit-exactness before the lowering ran them
as int8 with a zero point."""

import numpy as np
import onnxruntime as ort
import pytest

from edgevis.quant.ivit.kernels import MatMulInteger
from edgevis.quant.ivit.program import single_kernel_model


def _ort(kernel, *xs):
    m = single_kernel_model(kernel, [list(x.shape) for x in xs])
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {f"x{i}": x.astype(np.int64) for i, x in enumerate(xs)})[0]


@pytest.mark.parametrize("a_unsigned,split,lo,hi", [(True, False, 0, 255), (False, True, -32767, 32767),
                                                    (False, False, -127, 127)])
def test_weight_products_are_exact_at_the_extremes(a_unsigned, split, lo, hi):
    rng = np.random.default_rng(0)
    w = np.full((320, 96), 127, np.int8)
    w[:, 1::2] = -127
    w[:, 2] = rng.integers(-127, 128, 320)
    a = rng.integers(lo, hi + 1, size=(3, 320)).astype(np.int64)
    a[0] = hi  # every product at its largest
    a[1] = 255 if split else lo  # the low byte of a 16-bit value at its largest: 255
    k = MatMulInteger(w, np.arange(96, dtype=np.int64), a_unsigned=a_unsigned, split=split)
    ref = k.ref(a)
    np.testing.assert_array_equal(ref, a @ w.astype(np.int64) + np.arange(96))
    np.testing.assert_array_equal(_ort(k, a), ref)


def test_activation_products_with_unsigned_second_operand_stay_exact():
    rng = np.random.default_rng(1)
    a = rng.integers(-127, 128, size=(2, 16, 64)).astype(np.int64)
    a[0] = 127
    b = np.full((2, 64, 8), 255, np.int64)  # a softmax output in [0, 255]
    k = MatMulInteger(None, None, b_unsigned=True)
    np.testing.assert_array_equal(_ort(k, a, b), k.ref(a, b))
