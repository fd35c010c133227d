"""Data-aware rounding of int8 weights (quant/rounding.py) on small real graphs run by ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgevis.quant.rounding import optimize_rounding


def _conv_pair(w: np.ndarray, group: int, pads: int, stride: int = 1) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """(float Conv, the same Conv reading its weight through a per-channel int8 DequantizeLinear rounded to nearest)."""
    co, cig, kh, kw = w.shape
    cin = cig * group
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", cin, 12, 12])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    attrs = {"group": group, "pads": [pads] * 4, "strides": [stride, stride]}
    fm = helper.make_model(helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="conv", **attrs)], "f",
                                             [x], [y], [numpy_helper.from_array(w, "w")]),
                           opset_imports=[helper.make_opsetid("", 17)])
    scale = (np.abs(w).reshape(co, -1).max(1) / 127).astype(np.float32)
    q = np.clip(np.round(w / scale[:, None, None, None]), -127, 127).astype(np.int8)
    qm = helper.make_model(helper.make_graph(
        [helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="dq", axis=0),
         helper.make_node("Conv", ["x", "wd"], ["y"], name="conv", **attrs)], "q", [x], [y],
        [numpy_helper.from_array(q, "wq"), numpy_helper.from_array(scale, "ws"),
         numpy_helper.from_array(np.zeros(co, np.int8), "wz")]), opset_imports=[helper.make_opsetid("", 17)])
    return fm, qm


def _run(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def _smooth(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    """Images whose neighbouring pixels are close (a photo's statistics, where nearest rounding fails)."""
    base = rng.normal(size=(n, c, 1, 1)) + 0.3 * rng.normal(size=(n, c, 3, 3))
    return np.kron(base, np.ones((1, 1, 4, 4))).astype(np.float32) + 0.05 * rng.normal(size=(n, c, 12, 12)).astype(np.float32)


def test_rounding_against_the_inputs_beats_nearest_on_unseen_inputs():
    rng = np.random.default_rng(0)
    # depthwise kernels of large weights whose sum is small: on smooth inputs the output is that small sum
    w = rng.normal(scale=5.0, size=(8, 1, 3, 3)).astype(np.float32)
    w -= w.mean(axis=(2, 3), keepdims=True) - 0.05
    fm, qm = _conv_pair(w, group=8, pads=1)
    calib, unseen = _smooth(rng, 8, 8), _smooth(rng, 8, 8)
    tuned, n = optimize_rounding(qm, fm, [{"x": calib[i:i + 1]} for i in range(8)])
    assert n == 1
    ref = _run(fm, unseen)
    err_nearest = float(np.mean((_run(qm, unseen) - ref) ** 2))
    err_tuned = float(np.mean((_run(tuned, unseen) - ref) ** 2))
    assert err_tuned < 0.5 * err_nearest
    # only the int8 values changed: same nodes, same scales, int8 within the symmetric range, each within one step
    assert [nd.op_type for nd in tuned.graph.node] == [nd.op_type for nd in qm.graph.node]
    inits = {i.name: numpy_helper.to_array(i) for i in tuned.graph.initializer}
    old = {i.name: numpy_helper.to_array(i) for i in qm.graph.initializer}
    assert np.array_equal(inits["ws"], old["ws"]) and inits["wq"].dtype == np.int8
    assert np.abs(inits["wq"].astype(int)).max() <= 127 and not np.array_equal(inits["wq"], old["wq"])


def test_dense_conv_with_stride_is_rounded_too_and_a_zero_point_is_left_alone():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 4, 3, 3)).astype(np.float32)
    fm, qm = _conv_pair(w, group=1, pads=0, stride=2)
    calib = _smooth(rng, 4, 4)
    tuned, n = optimize_rounding(qm, fm, [{"x": calib}])
    assert n == 1
    unseen = _smooth(rng, 4, 4)
    ref = _run(fm, unseen)
    assert np.mean((_run(tuned, unseen) - ref) ** 2) < np.mean((_run(qm, unseen) - ref) ** 2)
    # an asymmetric weight (non-zero zero point) is not what the rounding assumes: untouched
    zp = next(i for i in qm.graph.initializer if i.name == "wz")
    zp.CopyFrom(numpy_helper.from_array(np.full(6, 3, np.int8), "wz"))
    same, n = optimize_rounding(qm, fm, [{"x": calib}])
    assert n == 0 and same.graph.initializer[0] == qm.graph.initializer[0]


def test_cli_flag_reaches_the_config():
    from edgevis.cli.options import int8_config

    kw = dict(calib=None, holdout=None, calib_count=8, target="ort-cpu", method="minmax", min_agreement=None,
              min_cosine=None, latency_search=False)
    assert int8_config(**kw, optimize_rounding=True).optimize_rounding is True
    assert int8_config(**kw).optimize_rounding is False  # unset: Int8Config's default (off)
