"""Fusions ONNX Runtime's CPU session cannot find on its own, applied with its own transformer optimizer.

The exporters write GELU as ``x * (0.5 * (erf(x / sqrt 2) + 1))`` and a residual
``Add`` before each ``LayerNormalization``; ORT's session-level fusions do not match
that GELU spelling (12 of 12 ``Erf`` chains stay unfused on deit_tiny) and fuse one
``Add + LayerNormalization`` in 24. ``onnxruntime.transformers.optimizer`` (the
well-kept library for this; no hand-written pattern matcher here) does match them:
``Gelu``/``BiasGelu`` and ``SkipLayerNormalization`` (com.microsoft ops, so the
result runs on ONNX Runtime only - this is for the ``ort-cpu`` INT8 target and its
FP32 baseline, never for the portable FP32 file).

Not applied: ``Attention``/``MultiHeadAttention`` fusion. It would put the q/k/v
projection GEMMs inside one float contrib op, out of the quantizer's reach, and it
does not match the dynamo exporter's attention anyway; the embedding-layer fusion
(BERT-only) and the approximate GELU (changes numerics).

The same fusions are applied to the FP32 model a speed-up is measured against: an
INT8 speed-up over an unfused FP32 would credit int8 with what fusion did.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections import Counter
from dataclasses import dataclass

import onnx

# fused op -> the ops it replaces, for the record
FUSED_OPS = ("Gelu", "BiasGelu", "SkipLayerNormalization", "LayerNormalization", "FastGelu")
# ops one of the fusions starts from (GELU's Erf, a LayerNormalization or the ReduceMean of a spelled-out one)
_SEEDS = frozenset(("Erf", "LayerNormalization", "ReduceMean"))


@dataclass(frozen=True)
class FusionReport:
    fused: dict[str, int]  # fused op type -> how many nodes of it the fusions made
    nodes_before: int
    nodes_after: int
    error: str | None = None  # the optimizer failed on this graph: nothing was fused

    @property
    def changed(self) -> bool:
        return any(self.fused.values())

    def to_dict(self) -> dict[str, object]:
        return {"fused": self.fused, "nodes_before": self.nodes_before, "nodes_after": self.nodes_after,
                "by": "onnxruntime.transformers.optimizer (Gelu, BiasGelu, SkipLayerNormalization; no Attention)",
                **({"error": self.error} if self.error else {})}


def fuse_for_ort(model: onnx.ModelProto) -> tuple[onnx.ModelProto, FusionReport]:
    """A copy of ``model`` with GELU, bias-GELU and Add+LayerNorm fused into ONNX Runtime's contrib ops.

    Graphs with nothing to fuse come back unchanged (same nodes). Only ORT's CPU execution provider
    (and CUDA) runs the result.
    """
    if not any(n.op_type in _SEEDS for n in model.graph.node):
        # nothing any of these fusions starts from: skip the library (importing it costs seconds)
        return model, FusionReport({}, len(model.graph.node), len(model.graph.node))
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    m = onnx.ModelProto()
    m.CopyFrom(model)
    if _lacks_shapes(m):
        # past a fused contrib op ONNX's shape inference knows nothing, and ORT's calibrator then cannot type
        # the tensors downstream ("Unable to get valid quantization scale"); typed on the unfused graph, the
        # tensors the fusion keeps keep their types
        try:
            m = onnx.shape_inference.infer_shapes(m)
        except Exception:  # noqa: BLE001 - an untyped graph is fused as it is; the check below still guards it
            pass
    before = Counter(n.op_type for n in m.graph.node)
    opts = FusionOptions("vit")
    opts.enable_attention = False
    opts.enable_rotary_embeddings = False
    opts.enable_embed_layer_norm = False
    opts.enable_gelu_approximation = False
    opts.enable_qordered_matmul = False
    opts.enable_shape_inference = False  # shapes are static already; its inference is slow on large graphs
    # the library warns on the model producer ("edgevis", not "pytorch") and logs every fusion it tries
    logger = logging.getLogger("onnxruntime.transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    root = logging.getLogger()
    root_level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            out = optimize_model(m, model_type="vit", optimization_options=opts, opt_level=0).model
    except Exception as e:  # noqa: BLE001 - a pattern matcher tripping on a graph it did not expect
        # fusions are an optimization: the unfused graph is correct, so it is used as it is, and the record says why
        from ..core.errors import first_line

        return model, FusionReport({}, len(model.graph.node), len(model.graph.node),
                                   error=f"{type(e).__name__}: {first_line(e, 200)}")
    finally:
        logger.setLevel(level)
        root.setLevel(root_level)
    after = Counter(n.op_type for n in out.graph.node)
    fused = {op: after[op] - before[op] for op in FUSED_OPS if after[op] > before[op]}
    if not fused:
        return model, FusionReport({}, len(model.graph.node), len(model.graph.node))
    if not any(o.domain == "com.microsoft" for o in out.opset_import):
        # the optimizer leaves the contrib domain undeclared; ONNX's checker and shape inference (which ORT's
        # calibrator runs) refuse a node of an undeclared domain
        out.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    why = _runs_alike(model, out)
    if why is not None:
        # the library matched a pattern its kernel cannot run (SkipLayerNormalization on FocalNet's 4-D
        # tensors: "input is expected to have 3 or 2 dimensions") or computes something else: not fused
        return model, FusionReport({}, len(model.graph.node), len(model.graph.node), error=why)
    return out, FusionReport(fused, len(model.graph.node), len(out.graph.node))


def _lacks_shapes(model: onnx.ModelProto) -> bool:
    """Some node output has no type recorded (a hand-made file, or a tool that drops ``value_info``)."""
    typed = {v.name for v in (*model.graph.value_info, *model.graph.output)}
    return any(o and o not in typed for n in model.graph.node for o in n.output)


def _runs_alike(model: onnx.ModelProto, fused: onnx.ModelProto) -> str | None:
    """Why ``fused`` cannot stand in for ``model`` on ONNX Runtime's CPU provider (it fails, or its outputs
    differ on one random input), or None. Fusion patterns are matched on the graph alone, so this is checked
    by running both."""
    from ..core.errors import first_line

    try:
        feeds = random_feed(model)
        want = _quiet_session(model).run(None, feeds)
        got = _quiet_session(fused).run(None, feeds)
    except Exception as e:  # noqa: BLE001 - whatever ORT says about the fused graph, the unfused one is used
        return f"the fused graph does not run on ONNX Runtime ({first_line(e, 200)})"
    return None if outputs_agree(want, got) else "the fused graph computes other outputs than the unfused one"


def random_feed(model: onnx.ModelProto) -> dict:  # type: ignore[type-arg]
    """One standard-normal input per graph input (a dynamic dimension as 1), seed 0: the input the fusion
    checks (here and ``quant.openvino``'s) run both graphs on."""
    import numpy as np

    rng = np.random.default_rng(0)
    feeds = {}
    for i in model.graph.input:
        t = i.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in t.shape.dim]
        feeds[i.name] = rng.standard_normal(shape).astype(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type))
    return feeds


def outputs_agree(want: list, got: list) -> bool:  # type: ignore[type-arg]
    """The fused graph's outputs are the unfused one's: same shapes, within 1e-3 of each output's largest value."""
    import numpy as np

    for a, b in zip(want, got):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        scale = max(float(np.abs(a).max()), 1e-6) if a.size else 1.0
        if a.shape != b.shape or (a.size and float(np.abs(a - b).max()) > 1e-3 * scale):
            return False
    return True


def _quiet_session(model: onnx.ModelProto):  # type: ignore[no-untyped-def]
    """A CPU session that logs nothing: a kernel refusing the fused graph is an answer here, not an error for
    the user's terminal (ORT prints it in red at its default severity)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
