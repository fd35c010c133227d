"""A tiny attention block as timm's ViT exports it, quantized by ONNX Runtime with the activation x activation
MatMuls excluded (what edgevis does): shared by the kept-float and placement-search tests."""

import contextlib
import io
import logging

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgevis.quant.qdq_graph import unquantize_outputs

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


def quantized_attention(d):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from edgevis.quant.calibration import ListReader

    fm = _attention()
    onnx.save(fm, str(d / "f.onnx"))
    rng = np.random.default_rng(1)
    xs = [rng.normal(0, 1, (1, T, C)).astype(np.float32) for _ in range(4)]


    logging.getLogger().setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        quantize_static(str(d / "f.onnx"), str(d / "q.onnx"), ListReader("x", xs), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=["attn_qk", "attn_v"])
    return fm, unquantize_outputs(onnx.load(str(d / "q.onnx"))), xs
