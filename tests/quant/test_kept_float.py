"""An op kept in float reads float values: the Transpose/Reshape chain that feeds only kept-float ops is
taken out of int8 with it, read from the quantized graph itself (a real ORT-quantized attention block)."""

import contextlib
import io
import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgevis.quant.placement import Searcher
from edgevis.quant.qdq_graph import FEEDER_REASON, float_feeders, node_group, unquantize_outputs
from edgevis.runtimes.latency import cpu_session

T, C, H = 6, 8, 2  # tokens, channels, heads


def _attention() -> onnx.ModelProto:
    """x -> qkv MatMul + bias -> Reshape -> Transpose -> Gather q/k/v -> q.k^T (x scale) -> Softmax -> .v ->
    Transpose -> Reshape -> proj MatMul -> y: the shape timm's ViT attention exports to."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (C, 3 * C)).astype(np.float32), "wqkv"),
        numpy_helper.from_array(rng.normal(0, 0.1, (3 * C,)).astype(np.float32), "bqkv"),
        numpy_helper.from_array(np.array([1, T, 3, H, C // H], np.int64), "s5"),
        numpy_helper.from_array(np.array([1, T, C], np.int64), "s3"),
        numpy_helper.from_array(np.array((C // H) ** -0.5, np.float32), "scale"),
        numpy_helper.from_array(rng.normal(0, 0.3, (C, C)).astype(np.float32), "wo"),
        *(numpy_helper.from_array(np.array(i, np.int64), f"i{i}") for i in range(3)),
    ]
    n = helper.make_node
    nodes = [
        n("MatMul", ["x", "wqkv"], ["qkv0"], name="qkv"),
        n("Add", ["qkv0", "bqkv"], ["qkv1"], name="qkv_bias"),
        n("Reshape", ["qkv1", "s5"], ["qkv2"], name="split_heads"),
        n("Transpose", ["qkv2"], ["qkv3"], name="heads_first", perm=[2, 0, 3, 1, 4]),
        n("Gather", ["qkv3", "i0"], ["q0"], name="take_q", axis=0),
        n("Gather", ["qkv3", "i1"], ["k"], name="take_k", axis=0),
        n("Gather", ["qkv3", "i2"], ["v"], name="take_v", axis=0),
        n("Mul", ["q0", "scale"], ["q"], name="scale_q"),
        n("Transpose", ["k"], ["kt"], name="k_t", perm=[0, 1, 3, 2]),
        n("MatMul", ["q", "kt"], ["s"], name="attn_qk"),
        n("Softmax", ["s"], ["p"], name="softmax", axis=-1),
        n("MatMul", ["p", "v"], ["o0"], name="attn_v"),
        n("Transpose", ["o0"], ["o1"], name="tokens_first", perm=[0, 2, 1, 3]),
        n("Reshape", ["o1", "s3"], ["o2"], name="merge_heads"),
        n("MatMul", ["o2", "wo"], ["y"], name="proj"),
    ]
    g = helper.make_graph(nodes, "attn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, T, C])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, T, C])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    d = tmp_path_factory.mktemp("kept")
    fm = _attention()
    onnx.save(fm, str(d / "f.onnx"))
    rng = np.random.default_rng(1)
    xs = [rng.normal(0, 1, (1, T, C)).astype(np.float32) for _ in range(4)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(xs)

        def get_next(self):
            x = next(self.it, None)
            return None if x is None else {"x": x}

    logging.getLogger().setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        quantize_static(str(d / "f.onnx"), str(d / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=["attn_qk", "attn_v"])
    return fm, unquantize_outputs(onnx.load(str(d / "q.onnx"))), xs


def _round_trips_into(model: onnx.ModelProto, node_name: str) -> list[str]:
    """Q/DQ nodes met walking back from ``node_name``'s inputs through data movement and bias/scale ops."""
    prod = {o: n for n in model.graph.node for o in n.output}
    node = next(n for n in model.graph.node if n.name == node_name)
    found, todo = [], list(node.input)
    while todo:
        p = prod.get(todo.pop())
        if p is None:
            continue
        if p.op_type in ("QuantizeLinear", "DequantizeLinear"):
            if p.input[0] in {i.name for i in model.graph.initializer}:
                continue  # a weight's dequantization is no activation round trip
            found.append(p.name)
            todo.extend(p.input[:1])
        elif node_group(p) == "data movement" or p.op_type in ("Add", "Mul"):
            todo.extend(p.input[:1])
    return found


def test_kept_matmuls_read_float_through_their_data_movement(quantized):
    fm, q, xs = quantized
    # what ORT alone does: the excluded MatMuls read 8-bit-rounded Transpose/Gather outputs
    assert _round_trips_into(q, "attn_qk") and _round_trips_into(q, "attn_v")
    feeders = set(float_feeders(q, ["attn_qk", "attn_v"]))
    # the chain between the qkv GEMM and the attention MatMuls, and nothing the int8 ops still read
    assert {"qkv_bias", "split_heads", "heads_first", "take_q", "take_k", "take_v", "scale_q", "k_t"} <= feeders
    assert not feeders & {"qkv", "softmax", "tokens_first", "merge_heads", "proj"}

    s = Searcher(q, fm, b"", "x", xs[0], xs[0], xs[0])
    p = s.placement({"attn_qk": "accuracy", "attn_v": "accuracy"})
    assert {n for n, r in p.kept.items() if r == FEEDER_REASON} == feeders  # the record says what the graph does
    assert _round_trips_into(p.model, "attn_qk") == [] and _round_trips_into(p.model, "attn_v") == []
    # the GEMMs around still run in int8, and the graph runs
    dq_inputs = {n.name for n in p.model.graph.node
                 if any(i.endswith("DequantizeLinear_Output") or "_DequantizeLinear" in i for i in n.input)}
    assert "qkv" in dq_inputs and "proj" in dq_inputs
    y = cpu_session(p.blob).run(None, {"x": xs[1]})[0]
    ref = cpu_session(fm.SerializeToString()).run(None, {"x": xs[1]})[0]
    assert y.shape == ref.shape and np.corrcoef(y.ravel(), ref.ravel())[0, 1] > 0.95


def test_a_chain_read_by_an_int8_op_stays_quantized(quantized):
    fm, q, _ = quantized
    # with only q.k^T in float, v's Gather feeds attn_v (int8 here): it stays; q's and k's do not
    feeders = set(float_feeders(q, ["attn_qk"]))
    assert {"take_q", "take_k", "scale_q", "k_t"} <= feeders
    assert not feeders & {"take_v", "heads_first", "split_heads", "qkv_bias"}
