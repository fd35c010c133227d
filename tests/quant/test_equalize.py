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


@pytest.fixture(scope="module")
def digits_fp32(digits_lsnet, tmp_path_factory):
    from edgevis.exporters.onnx import ExportConfig
    from edgevis.pipeline import export_fp32

    ckpt, size = digits_lsnet
    return export_fp32("test_lsnet", tmp_path_factory.mktemp("eq_digits"), weights=ckpt,
                       config=ExportConfig(input_size=size)).artifact.path


def _digit_batches(folder, spec, n):
    from edgevis.quant.calibration import batched, folder_source

    return list(batched(folder_source(folder).arrays(spec), 1, n))


def test_bias_correction_removes_the_mean_output_shift_of_rounded_weights(digits_fp32, digits_folders, tmp_path):
    """On the digits-trained test_lsnet with 7-bit weights, quantized by ORT: the mean logit error over held-out
    digits that weight rounding causes (the systematic part of its error) shrinks once the biases are corrected.

    Measured with float activations (each Conv/Gemm given its dequantized int8 weight and bias, nothing else
    rounded): that is the error bias correction models. With activations rounded too, activation rounding and
    clipping add a mean shift of their own that it does not see; the sum then went either way by CPU (0.0270 ->
    0.0232 on one Xeon's trained model, 0.0316 -> 0.0352 on a Zen 4's)."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from edgevis.core.onnxfile import TensorIndex
    from edgevis.quant.calibration import ListReader
    from edgevis.quant.equalize import bias_targets
    from edgevis.quant.qdq_graph import dequantized_constant
    from edgevis.runtimes.predict import recorded_preprocess

    fm = onnx.load(str(digits_fp32))
    spec, _ = recorded_preprocess(digits_fp32, fm)
    name = fm.graph.input[0].name
    calib_dir, held_dir = digits_folders
    calib = _digit_batches(calib_dir, spec, 32)
    held = np.concatenate(_digit_batches(held_dir, spec, 96))

    fm, _ = unshare_initializers(fm)
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(fm, str(src))
    quantize_static(str(src), str(dst), ListReader(name, calib), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    qm = onnx.load(str(dst))
    fixed_m, fixed = correct_biases(qm, fm, [{name: x} for x in calib])
    assert fixed > 10  # the model's convs and its classifier

    def weights_of(m):
        """The float model with each corrected layer's weight and bias as ``m`` dequantizes them."""
        idx, inits = TensorIndex.of(m), {i.name: i for i in m.graph.initializer}
        out = onnx.ModelProto()
        out.CopyFrom(fm)
        finits = {i.name: i for i in out.graph.initializer}
        fnodes = {n.name: n for n in out.graph.node}
        for n, _ in bias_targets(m):
            for k in (1, 2):
                v = dequantized_constant(idx.producer[n.input[k]], inits)
                t = finits[fnodes[n.name].input[k]]
                t.CopyFrom(nh.from_array(v.astype(np.float32).reshape(nh.to_array(t).shape), t.name))
        return out

    def logits(m):
        s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return np.concatenate([s.run(None, {name: held[i:i + 1]})[0] for i in range(len(held))]).astype(np.float64)

    ref = logits(fm)
    rounded, corrected = logits(weights_of(qm)), logits(weights_of(fixed_m))
    assert not np.array_equal(rounded, ref)  # the weights were rounded
    shift_before = np.abs((rounded - ref).mean(axis=0)).mean()
    shift_after = np.abs((corrected - ref).mean(axis=0)).mean()
    assert shift_after < 0.7 * shift_before, (shift_before, shift_after)


@pytest.mark.parametrize("attrs", [
    {"pads": [1, 1, 1, 1]},
    {"pads": [0, 2, 1, 0], "strides": [2, 3]},
    {"pads": [2, 2, 2, 2], "dilations": [2, 2], "strides": [2, 2], "group": 2},
    {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
    {"auto_pad": "SAME_LOWER", "strides": [3, 2], "group": 4},
    {"auto_pad": "VALID", "strides": [2, 2]},
])
def test_tap_means_give_the_mean_output_of_the_conv_that_reads_them(attrs):
    """Bias correction's shift of a Conv, sum(dW * what each tap reads on average), is the mean over output
    positions of that Conv run by ONNX Runtime with dW as weights and no bias: padding, strides, dilations
    and groups included (a per-channel mean of the input misses what the borders read)."""
    from edgevis.quant.equalize import _tap_means

    rng = np.random.default_rng(1)
    g = attrs.get("group", 1)
    x = rng.standard_normal((1, 8, 7, 9)).astype(np.float32) + 2.0  # a positive mean: padding reads less
    dw = rng.standard_normal((4, 8 // g, 3, 3)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", kernel_shape=[3, 3], **attrs)
    m = model([node], [f32("x", [1, 8, 7, 9])], [f32("y", None)], [nh.from_array(dw, "w")])
    want = _run(m, x)[0].reshape(4, -1).mean(axis=1)
    taps = _tap_means(x[0].astype(np.float64), node, [3, 3])
    got = (dw.astype(np.float64).reshape(g, 4 // g, 8 // g, -1) * taps.reshape(g, 1, 8 // g, -1)).sum(axis=(2, 3)).ravel()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    if attrs.get("auto_pad") != "VALID":  # with padding, one mean per input channel gives another shift
        ex = x[0].astype(np.float64).mean(axis=(1, 2)).reshape(g, 1, 8 // g)
        per_channel = (dw.astype(np.float64).reshape(g, 4 // g, 8 // g, -1).sum(axis=3) * ex).sum(axis=2).ravel()
        assert np.abs(per_channel - want).max() > 0.05 * np.abs(want).max()


def _groupnorm_net(blocks=3, c=8):
    """Conv -> GroupNorm(1 group) blocks as the dynamo exporter writes them (Reshape -> InstanceNormalization ->
    Reshape -> Mul gamma -> Add beta), every InstanceNormalization reading one shared scale/bias as in lsnet_b
    and poolformer_s12, on which ORT's quantizer failed. This small graph does not make ORT fail by itself;
    it checks that the unshared graph quantizes and computes what the float one does."""
    rng = np.random.default_rng(0)
    inits = [nh.from_array(np.ones(1, np.float32), "gs"), nh.from_array(np.zeros(1, np.float32), "gb"),
             nh.from_array(np.array([1, 1, -1], np.int64), "flat"), nh.from_array(np.array([1, c, 6, 6], np.int64), "back"),
             nh.from_array(np.ones((c, 1, 1), np.float32), "gamma"), nh.from_array(np.zeros((c, 1, 1), np.float32), "beta")]
    nodes, t = [], "x"
    for k in range(blocks):
        w = f"w{k}"
        inits.append(nh.from_array((rng.standard_normal((c, 3 if k == 0 else c, 1, 1)) * 0.3).astype(np.float32), w))
        nodes += [helper.make_node("Conv", [t, w], [f"c{k}"], name=f"conv{k}"),
                  helper.make_node("Reshape", [f"c{k}", "flat"], [f"f{k}"], name=f"flat{k}"),
                  helper.make_node("InstanceNormalization", [f"f{k}", "gs", "gb"], [f"n{k}"], name=f"gn{k}"),
                  helper.make_node("Reshape", [f"n{k}", "back"], [f"r{k}"], name=f"back{k}"),
                  helper.make_node("Mul", ["gamma", f"r{k}"], [f"m{k}"], name=f"mul{k}"),
                  helper.make_node("Add", [f"m{k}", "beta"], [f"y{k}"], name=f"add{k}")]
        t = f"y{k}"
    return model(nodes, [f32("x", [1, 3, 6, 6])], [f32(t, [1, c, 6, 6])], inits)


def test_groupnorm_graph_with_shared_parameters_quantizes_and_runs(tmp_path):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from edgevis.quant.calibration import ListReader

    from edgevis.quant.equalize import prepare_float
    from edgevis.quant.int8 import quantizer_errors

    m = _groupnorm_net()
    prepared, record = prepare_float(m, equalize_pairs=True)
    assert record["unshared_initializers"] > 0
    readers = [i for n in prepared.graph.node for i in n.input if i in {t.name for t in prepared.graph.initializer}]
    assert len(readers) == len(set(readers))
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((1, 3, 6, 6)).astype(np.float32) for _ in range(8)]


    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(prepared, str(src))
    with quantizer_errors(src):
        quantize_static(str(src), str(dst), ListReader("x", xs), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    q = onnx.load(str(dst))
    assert any(n.op_type == "QuantizeLinear" for n in q.graph.node)
    ref, got = _run(m, xs[0]), _run(q, xs[0])
    assert np.corrcoef(ref.ravel(), got.ravel())[0, 1] > 0.98


def test_a_quantizer_failure_is_one_line_naming_the_node(tmp_path):
    """ORT's op quantizers hold the node they handle in a local ``node``: the error names it. (The raising
    function stands in for ORT's quantizer, whose failures on the catalog the unsharing above removed.)"""
    from edgevis.core.errors import EdgevisError
    from edgevis.quant.int8 import quantizer_errors

    def op_quantizer(node):
        raise ValueError("Quantization parameter shared mode is not supported for weight yet\nmore text")

    with pytest.raises(EdgevisError) as e:
        with quantizer_errors(tmp_path / "m.onnx"):
            op_quantizer(helper.make_node("InstanceNormalization", ["a", "s", "b"], ["y"], name="gn7"))
    msg = str(e.value)
    assert "at node gn7 (InstanceNormalization)" in msg and "shared mode" in msg and "\n" not in msg
