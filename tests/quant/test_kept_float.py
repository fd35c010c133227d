"""An op kept in float reads float values: the Transpose/Reshape chain that feeds only kept-float ops is
taken out of int8 with it, read from the quantized graph itself (a real ORT-quantized attention block)."""

import numpy as np
import onnx
import pytest

from attention_block import quantized_attention
from edgevis.quant.placement import Searcher
from edgevis.quant.qdq_graph import FEEDER_REASON, float_feeders, node_group
from edgevis.runtimes.latency import cpu_session


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    return quantized_attention(tmp_path_factory.mktemp("kept"))


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
