"""Placement edits on real ORT-quantized tiny graphs: keep_float, dead Q/DQ removal, streaming calibration."""

import contextlib
import io
import json
import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgevis.runtimes.latency import cpu_session
from edgevis.quant.calibration import batched, calibrate_ranges, ort_method
from edgevis.quant.qdq_graph import keep_float, node_group, quantized_nodes, unquantize_outputs


def _conv_model(relu: bool) -> onnx.ModelProto:
    """x -> Conv(bias) -> [Relu] -> Conv(bias) -> Add(residual with first conv) -> y"""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(0, 0.1, (8,)).astype(np.float32), "b2"),
    ]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1])]
    if relu:
        nodes.append(helper.make_node("Relu", ["c1"], ["a1"], name="relu1"))
    mid = "a1" if relu else "c1"
    nodes += [helper.make_node("Conv", [mid, "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
              helper.make_node("Add", ["c2", mid], ["y"], name="add")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 16, 16])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _quantize(fm: onnx.ModelProto, tmp_path, xs) -> onnx.ModelProto:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    src = tmp_path / "f.onnx"
    onnx.save(fm, str(src))
    cache = tmp_path / "r.json"
    with contextlib.redirect_stdout(io.StringIO()):
        calibrate_ranges(src, iter(xs), "x", "minmax", cache, tmp_path)
    logging.getLogger().setLevel(logging.ERROR)
    quantize_static(str(src), str(tmp_path / "q.onnx"), None, quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=ort_method("minmax"), calibration_cache_path=str(cache))
    return unquantize_outputs(onnx.load(str(tmp_path / "q.onnx")))


def _run(m: onnx.ModelProto, xs) -> np.ndarray:
    s = cpu_session(m.SerializeToString())
    return np.concatenate([s.run(None, {"x": x})[0] for x in xs])


@pytest.fixture
def inputs():
    rng = np.random.default_rng(1)
    return [rng.normal(0, 1, (1, 3, 16, 16)).astype(np.float32) for _ in range(6)]


def test_all_ops_back_in_float_reproduces_the_float_model(tmp_path, inputs):
    fm = _conv_model(relu=False)
    q = _quantize(fm, tmp_path, inputs)
    names = [n.name for n in quantized_nodes(q)]
    assert set(names) == {"conv1", "conv2", "add"}
    back = keep_float(q, fm, names)
    onnx.checker.check_model(back)
    assert not any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in back.graph.node)
    np.testing.assert_allclose(_run(back, inputs), _run(fm, inputs), rtol=1e-5, atol=1e-5)
    # the quantized model itself does differ, so the check above is not vacuous
    assert np.abs(_run(q, inputs) - _run(fm, inputs)).max() > 1e-3


def test_keeping_one_op_in_float_leaves_its_neighbours_int8(tmp_path, inputs):
    fm = _conv_model(relu=False)
    q = _quantize(fm, tmp_path, inputs)
    one = keep_float(q, fm, ["conv2"])
    onnx.checker.check_model(one)
    left = {n.name for n in quantized_nodes(one)}
    assert left == {"conv1", "add"}
    conv2 = next(n for n in one.graph.node if n.name == "conv2")
    inits = {i.name: i for i in one.graph.initializer}
    # conv2 reads the float weight and bias again (bias under its own name: ORT gave the bias DQ output "b2")
    assert inits[conv2.input[1]].data_type == TensorProto.FLOAT
    assert inits[conv2.input[2]].data_type == TensorProto.FLOAT
    err_q = np.abs(_run(q, inputs) - _run(fm, inputs)).mean()
    err_one = np.abs(_run(one, inputs) - _run(fm, inputs)).mean()
    assert err_one < err_q


def test_folded_relu_is_not_bypassed(tmp_path, inputs):
    """ORT folds a ReLU into the u8 range and gives its output name to the conv; an op kept in float
    must still see the ReLU's output, not the pre-activation tensor of the same name."""
    fm = _conv_model(relu=True)
    q = _quantize(fm, tmp_path, inputs)
    assert "relu1" not in {n.name for n in q.graph.node}  # ORT removed it
    one = keep_float(q, fm, ["conv2", "add"])
    ref = _run(fm, inputs)
    err_q = np.abs(_run(q, inputs) - ref).max()
    err_one = np.abs(_run(one, inputs) - ref).max()
    assert err_one <= err_q * 1.01  # bypassing the folded ReLU would leak negative values: far larger errors
    # and conv2 reads no DequantizeLinear: the ReLU is re-applied in float (an op between DQ and Q
    # would be re-quantized by ORT's WeightBiasQuantization pass when the session loads)
    from edgevis.graph.inspect import TensorIndex

    idx = TensorIndex.of(one)
    conv2 = next(n for n in one.graph.node if n.name == "conv2")
    assert all(idx.producer[i].op_type != "DequantizeLinear" for i in conv2.input if i in idx.producer)
    assert any(n.op_type == "Relu" for n in one.graph.node)
    onnx.checker.check_model(one)


def test_streamed_calibration_matches_one_pass(tmp_path, inputs):
    fm = _conv_model(relu=False)
    src = tmp_path / "f.onnx"
    onnx.save(fm, str(src))
    with contextlib.redirect_stdout(io.StringIO()):
        calibrate_ranges(src, iter(inputs), "x", "minmax", tmp_path / "a.json", tmp_path, chunk=2)
        calibrate_ranges(src, iter(inputs), "x", "minmax", tmp_path / "b.json", tmp_path, chunk=100)
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a == b and len(json.dumps(a)) > 100


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_run_ahead_calibration_matches_orts_own_session(tmp_path, inputs, method):
    """calibrate_ranges runs the batches on worker threads through a one-thread session of its own; the ranges
    (and histograms) it saves are those of ORT's calibrator run on its own session, one batch after another."""
    import itertools

    from onnxruntime.quantization import create_calibrator, save_tensors_data
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    from edgevis.quant.calibration import ListReader

    src = tmp_path / "f.onnx"
    onnx.save(_conv_model(relu=True), str(src))
    xs = [x + np.float32(k) * 0.1 for k in range(3) for x in inputs]  # distinct batches, a few chunks of them
    with contextlib.redirect_stdout(io.StringIO()):
        calib = create_calibrator(src, sorted(set(QDQRegistry) | set(QLinearOpsRegistry)),
                                  augmented_model_path=str(tmp_path / "own.onnx"), calibrate_method=ort_method(method))
        it = iter(xs)
        while part := list(itertools.islice(it, 3)):
            calib.collect_data(ListReader("x", part))
        save_tensors_data(calib.compute_data(), tmp_path / "own.json")
        n = calibrate_ranges(src, iter(xs), "x", method, tmp_path / "ahead.json", tmp_path, chunk=3, workers=2)
    assert n == len(xs) > 3
    own, ahead = (json.loads((tmp_path / f).read_text()) for f in ("own.json", "ahead.json"))
    assert ahead == own and len(json.dumps(own)) > 100


def test_calibration_pulls_images_lazily(tmp_path, inputs):
    """The calibrator never holds more than one chunk of the stream."""
    fm = _conv_model(relu=False)
    src = tmp_path / "f.onnx"
    onnx.save(fm, str(src))
    pulled = []

    def stream():
        for i, x in enumerate(inputs * 4):
            pulled.append(i)
            yield x

    class Watch:
        max_ahead = 0

    import onnxruntime.quantization.calibrate as cal

    orig = cal.MinMaxCalibrater.collect_data

    def collect(self, reader):
        Watch.max_ahead = max(Watch.max_ahead, len(pulled) - getattr(Watch, "done", 0))
        orig(self, reader)
        Watch.done = len(pulled)

    cal.MinMaxCalibrater.collect_data = collect
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            n = calibrate_ranges(src, stream(), "x", "minmax", tmp_path / "a.json", tmp_path, chunk=3)
    finally:
        cal.MinMaxCalibrater.collect_data = orig
    assert n == 24 and Watch.max_ahead <= 3


def test_batched_pads_last_batch_and_respects_limit():
    xs = [np.full((3, 2, 2), i, np.float32) for i in range(5)]
    out = list(batched(iter(xs), 2, 5))
    assert [b.shape[0] for b in out] == [2, 2, 2] and out[-1][1, 0, 0, 0] == 4
    assert sum(b.shape[0] for b in batched(iter(xs), 1, 3)) == 3


def test_node_groups():
    dw = helper.make_node("Conv", ["a", "w"], ["b"], group=8)
    assert node_group(dw) == "depthwise conv"
    assert node_group(helper.make_node("Conv", ["a", "w"], ["b"])) == "conv"
    assert node_group(helper.make_node("Softmax", ["a"], ["b"])) == "normalization"
    assert node_group(helper.make_node("Slice", ["a"], ["b"])) == "data movement"
    assert node_group(helper.make_node("Einsum", ["a"], ["b"])) == "other"


def test_graph_output_is_not_rounded(tmp_path, inputs):
    fm = _conv_model(relu=False)
    q = _quantize(fm, tmp_path, inputs)
    raw = onnx.load(str(tmp_path / "q.onnx"))  # ORT's own output, before unquantize_outputs
    last = {n.output[0]: n for n in raw.graph.node}["y"]
    assert last.op_type == "DequantizeLinear"
    assert {n.output[0]: n for n in q.graph.node}["y"].op_type == "Add"
    onnx.checker.check_model(q)
    # the Add still runs on int8 inputs, only its result stays float
    assert "add" in {n.name for n in quantized_nodes(q)}
    assert len(np.unique(_run(q, inputs))) > len(np.unique(_run(raw, inputs)))


def test_percentile_calibration_takes_a_near_constant_tensor(tmp_path):
    """A near-uniform softmax (all values 1/16 within a few float32 steps, as in one of lsnet_t's) made ORT's
    percentile collector raise numpy's "Too many bins for data range"; calibrate_ranges calibrates it, to about
    1/16, and every other tensor as ORT does (test_run_ahead_calibration_matches_orts_own_session)."""
    from onnxruntime.quantization.calibrate import HistogramCollector

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (16, 4)).astype(np.float32), "w")
    eps = numpy_helper.from_array(np.array(1e-6, np.float32), "eps")
    nodes = [helper.make_node("Mul", ["x", "eps"], ["t"], name="tiny"),
             helper.make_node("Softmax", ["t"], ["p"], name="softmax", axis=-1),
             helper.make_node("MatMul", ["p", "w"], ["y"], name="matmul")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w, eps])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    src = tmp_path / "f.onnx"
    onnx.save(m, str(src))
    xs = [rng.normal(0, 1, (1, 16)).astype(np.float32) for _ in range(8)]
    p = [np.exp(x * np.float32(1e-6)) / np.exp(x * np.float32(1e-6)).sum() for x in xs]
    own = HistogramCollector("percentile", True, 2048, 128, 99.999, "same")
    with pytest.raises(ValueError, match="Too many bins"), contextlib.redirect_stdout(io.StringIO()):
        own.collect({"p": p})  # ORT's own collector on these values
    with contextlib.redirect_stdout(io.StringIO()):
        calibrate_ranges(src, iter(xs), "x", "percentile", tmp_path / "r.json", tmp_path, chunk=4)
    saved = json.loads((tmp_path / "r.json").read_text())["data"]["p"]
    lo, hi = (float(v["data"] if isinstance(v, dict) else v) for v in (saved["lowest"], saved["highest"]))
    # ORT clips the percentile's (-t, t) to the values seen: here all about 1/16
    assert 1 / 16 - 1e-3 < lo <= hi < 1 / 16 + 1e-3


def test_percentile_histogram_of_a_narrow_first_batch_does_not_explode(tmp_path):
    """ORT's percentile collector bins a tensor's first values over their own [min|x|, max|x|] and widens the
    histogram for later, larger values with bins of that first width. A softmax near-uniform on the first images
    (1/16 within 2e-5, not narrow enough for numpy to refuse) that peaks on a later one then took ~10^7 bins
    (hundreds of MB for 16 values; a peak of 1.0 on a finer first range runs to GBs), and so did its logits
    (5 +- 6e-4, then 6.5); calibrate_ranges starts such a tensor's histogram at 0, so its bins stay max|x|/2048
    wide, and the range still comes out right."""
    import tracemalloc

    nodes = [helper.make_node("Softmax", ["x"], ["p"], name="softmax", axis=-1),
             helper.make_node("Relu", ["p"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    src = tmp_path / "f.onnx"
    onnx.save(m, str(src))
    rng = np.random.default_rng(0)
    xs = [(5 + rng.standard_normal((1, 16)) * 2e-4).astype(np.float32) for _ in range(4)]  # logits all ~5
    peaked = np.full((1, 16), 5, np.float32)
    peaked[0, 0] = 6.5  # softmax max ~0.23
    tracemalloc.start()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            calibrate_ranges(src, iter([*xs, peaked]), "x", "percentile", tmp_path / "r.json", tmp_path, chunk=4)
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert peak_mb < 40, f"{peak_mb:.0f} MB of histogram for a 16-value tensor"
    saved = json.loads((tmp_path / "r.json").read_text())["data"]

    def highest(t):
        v = saved[t]["highest"]
        return float(v["data"] if isinstance(v, dict) else v)

    # the 99.999th percentile of these 80 values is about their max (ORT's growth step can leave a later batch's
    # top value past its last edge, uncounted: for the softmax that is the one peaked value, so 1/16 is right too)
    assert 6.49 < highest("x") <= 6.5
    assert 1 / 16 - 1e-3 < highest("p") <= float(np.exp(1.5) / (np.exp(1.5) + 15)) + 1e-6
