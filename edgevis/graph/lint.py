"""Static checks that predict what a runtime will reject or run badly, with no GPU needed.

``lint_model(model, target="trt")`` reads the ONNX graph only and returns findings,
each naming a rule, the node(s) and what to do. Rules for TensorRT come from its
ONNX parser's operator table (:mod:`edgevis.graph.trt_ops`) and its explicit
quantization rules (symmetric INT8, per-channel weights on the output-channel axis,
per-tensor activations, Q/DQ on the inputs of weighted ops); rules for ``ort-cpu``
are the x86 pitfalls measured while building ``--int8`` (see the README's INT8 section).

One rule is one function; a table maps targets to rules (the shape of ONNX Runtime's
quantization registry). Findings of one rule on one op type are grouped, so an
integer-only graph with 3,000 BitShift nodes gives one finding, not 3,000.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from . import trt_ops
from ..core.onnxfile import QDQ_OPS, TensorIndex, has_qdq, node_attr

SEVERITIES = ("error", "warning", "info")
TARGETS = ("trt", "ort-cpu")
WEIGHTED = {"Conv": 0, "ConvTranspose": 1, "MatMul": -1, "Gemm": -1}  # op -> output-channel axis of its weight


@dataclass
class Finding:
    rule: str
    severity: str
    op: str
    nodes: list[str]
    message: str
    fix: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "op": self.op, "node": self.nodes[0] if self.nodes else "",
                "count": len(self.nodes), "nodes": self.nodes[:20], "message": self.message, "fix": self.fix}


@dataclass
class LintReport:
    target: str
    settings: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, **self.settings, "errors": self.errors, "warnings": self.warnings,
                "infos": len(self.findings) - self.errors - self.warnings,
                "findings": [f.to_dict() for f in self.findings]}


class Graph:
    """Lookups every rule needs: producers, consumers, constant values, inferred element types."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.nodes = list(model.graph.node)
        index = TensorIndex.of(model)
        self.producer, self.consumers = index.producer, index.consumers
        self.inits = {i.name: i for i in model.graph.initializer}
        for n in self.nodes:
            if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
                self.inits[n.output[0]] = n.attribute[0].t
        self.outputs = {o.name for o in model.graph.output}
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        try:
            inferred = onnx.shape_inference.infer_shapes(model)
            vis = list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
        except Exception:  # noqa: BLE001 - types are a help, not a requirement
            vis = list(model.graph.input) + list(model.graph.output)
        self.types = {v.name: v.type.tensor_type.elem_type for v in vis}
        self.types.update({k: t.data_type for k, t in self.inits.items()})

    def const(self, name: str) -> np.ndarray | None:
        t = self.inits.get(name)
        return None if t is None else numpy_helper.to_array(t)

    def is_const(self, name: str) -> bool:
        return name in self.inits

    @staticmethod
    def attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
        return node_attr(node, name, default)


def _label(n: onnx.NodeProto) -> str:
    return n.name or f"{n.op_type}->{n.output[0] if n.output else '?'}"


Hit = tuple[str, onnx.NodeProto, str, str]  # (severity, node, message, fix)
Rule = Callable[[Graph, dict[str, Any]], Iterator[Hit]]


# ---------------------------------------------------------------------------------------------
# TensorRT


def trt_ops_supported(g: Graph, s: dict[str, Any]) -> Iterator[Hit]:
    """Ops the parser does not take (at this TensorRT version), and custom domains (need a plugin)."""
    for n in g.nodes:
        if n.domain not in ("", "ai.onnx"):
            yield ("error", n, f"{n.domain}::{n.op_type} is not a standard ONNX op; TensorRT's parser needs a plugin",
                   "export without vendor ops (ORT-optimized files hold them: build from the source ONNX)")
        elif n.op_type in ("ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul"):
            yield ("error", n, f"{n.op_type} is not supported by TensorRT's ONNX parser (integer-op format)",
                   "TensorRT takes INT8 as Q/DQ: build the file from `edgevis export --int8 --target tensorrt`")
        elif n.op_type in trt_ops.UNSUPPORTED or n.op_type not in trt_ops.SUPPORTED:
            yield ("error", n, f"{n.op_type} is not supported by TensorRT's ONNX parser",
                   "replace it in the model, or implement a TensorRT plugin")
        elif n.op_type in trt_ops.SINCE_10_15 and s["trt_version"] == "10":
            yield ("warning", n, f"{n.op_type} is parsed only by TensorRT >= 10.15 (not 10.0-10.x of JetPack 6)",
                   "check the TensorRT version on the device, or export at an opset without this op")


def trt_opset(g: Graph, s: dict[str, Any]) -> Iterator[Hit]:
    hi = trt_ops.OPSET_MAX["11" if s["trt_version"] == "11" else "10.15"]
    first = g.nodes[0] if g.nodes else onnx.NodeProto()
    if g.opset < trt_ops.OPSET_MIN or g.opset > hi:
        yield ("error", first, f"opset {g.opset} is outside what TensorRT's parser reads ({trt_ops.OPSET_MIN}-{hi})",
               "re-export with `edgevis export --opset 17`")
    elif s["trt_version"] == "10" and g.opset > trt_ops.OPSET_MAX["10.0"]:
        yield ("warning", first, f"opset {g.opset}: TensorRT 10.0-10.14 parse up to opset {trt_ops.OPSET_MAX['10.0']}",
               "re-export with `edgevis export --opset 17` for older TensorRT 10 (JetPack 6)")


def trt_op_restrictions(g: Graph, s: dict[str, Any]) -> Iterator[Hit]:
    """The table's restrictions that the graph alone can decide."""
    for n in g.nodes:
        op = n.op_type
        if op == "Resize":
            mode = g.attr(n, "mode", b"nearest")
            mode = mode.decode() if isinstance(mode, bytes) else mode
            if mode == "cubic" or g.attr(n, "antialias", 0):
                yield ("error", n, f"Resize mode {mode!r}{' with antialias' if g.attr(n, 'antialias', 0) else ''} "
                                   "is not supported (nearest and linear only)", "export with bilinear or nearest")
        elif op.startswith("Reduce") and len(n.input) > 1 and n.input[1] and not g.is_const(n.input[1]):
            yield ("error", n, f"{op} axes come from a tensor computed at run time; TensorRT needs an initializer",
                   "simplify the graph (`edgevis simplify`) so the axes fold to a constant")
        elif op == "MaxPool" and len(n.output) > 1 and n.output[1]:
            yield ("error", n, "MaxPool's Indices output is not supported", "drop the indices output")
        elif op == "TopK" and len(n.input) > 1 and (k := g.const(n.input[1])) is not None and int(k.max()) >= 3840:
            yield ("error", n, f"TopK with K = {int(k.max())} (TensorRT needs K < 3840)", "reduce K")
        elif op == "LayerNormalization" and len([o for o in n.output if o]) > 1:
            yield ("warning", n, "LayerNormalization: only output Y is supported (Mean/InvStdDev are not)",
                   "drop the extra outputs")


def _qdq_axis(g: Graph, n: onnx.NodeProto) -> int:
    return int(g.attr(n, "axis", 1))


def trt_qdq(g: Graph, s: dict[str, Any]) -> Iterator[Hit]:
    """TensorRT's explicit-quantization rules."""
    for n in g.nodes:
        if n.op_type not in QDQ_OPS:
            continue
        zp = g.const(n.input[2]) if len(n.input) > 2 and n.input[2] else None
        if zp is not None and np.any(zp != 0):
            yield ("error", n, f"{n.op_type} with a non-zero zero point (asymmetric): TensorRT supports symmetric "
                               "quantization only (zero point 0)",
                   "quantize for TensorRT: `edgevis export --int8 --target tensorrt`")
        elif zp is not None and zp.dtype == np.uint8:
            yield ("warning", n, f"{n.op_type} is uint8: TensorRT quantizes to signed INT8 (the parser converts it, "
                               "with a warning)", "quantize with `--target tensorrt` (s8 activations)")
        scale = g.const(n.input[1])
        per_channel = scale is not None and scale.size > 1
        data_const = g.is_const(n.input[0])
        if per_channel and not data_const and n.op_type == "QuantizeLinear":
            yield ("error", n, "per-channel quantization of an activation: TensorRT quantizes activations per tensor",
                   "use one scale per activation tensor")
        if n.op_type == "DequantizeLinear" and data_const and per_channel:
            for c in g.consumers.get(n.output[0], []):
                if c.op_type in WEIGHTED and len(c.input) > 1 and c.input[1] == n.output[0]:
                    w = g.const(n.input[0])
                    rank = w.ndim if w is not None else 0
                    want = WEIGHTED[c.op_type]
                    if c.op_type == "Gemm" and g.attr(c, "transB", 0):
                        want = 0
                    want = want % rank if rank else want
                    if rank and _qdq_axis(g, n) % rank != want:
                        yield ("error", n, f"per-channel weight scale on axis {_qdq_axis(g, n)} of {c.op_type} "
                                           f"{_label(c)}; TensorRT wants the output-channel axis ({want})",
                               "quantize weights per output channel (`--target tensorrt` does)")
        if n.op_type == "QuantizeLinear" and not any(c.op_type == "DequantizeLinear"
                                                     for c in g.consumers.get(n.output[0], [])):
            yield ("error", n, "QuantizeLinear not followed by DequantizeLinear: TensorRT needs Q/DQ pairs",
                   "pair every QuantizeLinear with a DequantizeLinear")
    for n in g.nodes:
        if n.op_type not in WEIGHTED or len(n.input) < 2:
            continue
        x, w = (g.producer.get(n.input[0]), g.producer.get(n.input[1]))
        w_dq = w is not None and w.op_type == "DequantizeLinear"
        x_dq = x is not None and x.op_type == "DequantizeLinear"
        if w_dq and not x_dq and not g.is_const(n.input[0]):
            yield ("warning", n, f"{n.op_type} has a quantized weight but a float input: it runs in floating point "
                                 "(TensorRT fuses INT8 kernels only with Q/DQ on both inputs)",
                   "put a Q/DQ pair on its input too, or leave the weight unquantized")


def trt_dynamic_shapes(g: Graph, s: dict[str, Any]) -> Iterator[Hit]:
    for vi in g.model.graph.input:
        if vi.name in g.inits:
            continue
        dims = vi.type.tensor_type.shape.dim
        dyn = [d.dim_param or "?" for d in dims if not d.dim_value]
        if dyn:
            shape = "x".join(str(d.dim_value) if d.dim_value else "N" for d in dims)
            node = onnx.helper.make_node("Identity", [vi.name], [vi.name], name=f"input {vi.name}")
            yield ("warning", node, f"input {vi.name} has dynamic dimension(s) {', '.join(dyn)}: the engine needs an "
                                    "optimization profile", f"edgevis build ... --min-shape {vi.name}:{shape.replace('N', '1')} "
                                                            f"--opt-shape ... --max-shape ...")


def trt_int64(g: Graph, s: dict[str, Any]) -> Iterator[Hit]:
    i32 = np.iinfo(np.int32)
    for name, t in g.inits.items():
        if t.data_type != TensorProto.INT64:
            continue
        users = g.consumers.get(name, [])
        if all(u.op_type == "Slice" for u in users):
            continue  # Slice's INT64_MAX "to the end" is clamped safely
        v = numpy_helper.to_array(t)
        if v.size and (v.min() < i32.min or v.max() > i32.max):
            node = onnx.helper.make_node("Identity", [name], [name], name=name)  # named by the constant
            yield ("warning", node, "int64 constant with values outside int32: layers that compute in INT32 "
                                    "will cast them", "keep int64 constants within int32")
    for n in g.nodes:
        if n.op_type in trt_ops.FLOAT_ONLY and any(g.types.get(i) in (TensorProto.INT64, TensorProto.INT32)
                                                   for i in n.input[:1] if i):
            yield ("error", n, f"{n.op_type} on an integer tensor: TensorRT runs {n.op_type} in floating point only",
                   "cast to float before it")


def _is_pow2(g: Graph, n: onnx.NodeProto) -> bool:
    if n.op_type == "Pow" and len(n.input) > 1:
        e = g.const(n.input[1])
        return e is not None and e.size == 1 and float(e.ravel()[0]) == 2.0
    return n.op_type == "Mul" and len(n.input) == 2 and n.input[0] == n.input[1]


def trt_layernorm_fp16(g: Graph, s: dict[str, Any]) -> Iterator[Hit]:
    """LayerNorm spelled out as ReduceMean/Sub/Pow/ReduceMean: x-mean squared overflows FP16 above 256."""
    for n in g.nodes:
        if not _is_pow2(g, n):
            continue
        sub = g.producer.get(n.input[0])
        if sub is None or sub.op_type != "Sub":
            continue
        mean = g.producer.get(sub.input[1]) if len(sub.input) > 1 else None
        if mean is None or mean.op_type != "ReduceMean":
            continue
        if not any(c.op_type == "ReduceMean" for c in g.consumers.get(n.output[0], [])):
            continue
        sev = "warning" if s["precision"] in ("fp16", "int8") else "info"
        yield (sev, n, "LayerNorm decomposed into ReduceMean/Sub/Pow/ReduceMean: in FP16 the squared deviation "
                       "overflows (FP16 max 65504) after attention, a known TensorRT accuracy loss",
               "export at opset >= 17 so LayerNormalization is one node (TensorRT's normalization layer), "
               "or keep these layers in FP32")


def trt_precision(g: Graph, s: dict[str, Any]) -> Iterator[Hit]:
    qdq = has_qdq(g.model)
    first = g.nodes[0] if g.nodes else onnx.NodeProto()
    if s["precision"] == "int8" and not qdq:
        yield ("error", first, "INT8 requested but the model has no Q/DQ nodes; TensorRT 11 has no calibrator and "
                               "edgevis builds INT8 from Q/DQ only", "`edgevis export --int8 --target tensorrt`")
    fp16_graph = any(t.data_type == TensorProto.FLOAT16 for t in g.model.graph.initializer)
    if s["precision"] == "fp16" and s["trt_version"] == "11" and not fp16_graph:
        yield ("error", first, "FP16 on TensorRT 11 needs an FP16 ONNX: strongly typed networks have no FP16 flag",
               "python -m modelopt.onnx.autocast --onnx_path MODEL.onnx --low_precision_type fp16")


# ---------------------------------------------------------------------------------------------
# ONNX Runtime on x86 CPUs

ORT_CPU_QDQ_OPS = {"Conv", "MatMul", "Gemm", "Add", "Mul", "Concat", "MaxPool", "AveragePool", "GlobalAveragePool",
                   "Sigmoid", "LeakyRelu", "Resize", "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Gather",
                   "Softmax", "Where", "Split", "ArgMax", "Pad", "Slice", "Flatten", "Relu", "Clip",
                   "InstanceNormalization", "HardSigmoid", "DepthToSpace", "SpaceToDepth", "ConvTranspose"}


def ort_cpu_qdq(g: Graph, s: dict[str, Any]) -> Iterator[Hit]:
    for n in g.nodes:
        if n.op_type == "QuantizeLinear" and not g.is_const(n.input[0]):
            zp = g.const(n.input[2]) if len(n.input) > 2 and n.input[2] else None
            if zp is not None and zp.dtype == np.int8:
                yield ("warning", n, "int8 (s8) activations: ONNX Runtime's x86 kernels are fastest with uint8 "
                                     "activations and int8 weights; s8 activations made most catalog models slower "
                                     "than FP32 on this path", "`edgevis export --int8 --target ort-cpu` (u8 activations)")
        if n.op_type == "Conv" and len(n.input) > 1:
            w = g.producer.get(n.input[1])
            group = int(g.attr(n, "group", 1))
            if w is not None and w.op_type == "DequantizeLinear" and group > 1 and (wv := g.const(w.input[0])) is not None \
                    and wv.shape[1] == 1:
                yield ("info", n, "int8 depthwise Conv: ONNX Runtime's x86 int8 depthwise kernel is often slower than "
                                  "FP32", "keep depthwise convs in float (edgevis' latency search does where it pays)")
        if n.op_type == "MatMul" and len(n.input) == 2:
            srcs = [g.producer.get(i) for i in n.input]
            if all(p is not None and p.op_type == "DequantizeLinear" and not g.is_const(p.input[0]) for p in srcs):
                yield ("warning", n, "MatMul of two dequantized activations (attention q.k^T or attn.v): both inputs "
                                     "are rounded to 8 bits, a large accuracy cost for little speed",
                       "keep both inputs in float (no Q/DQ on them)")
        if n.op_type == "DequantizeLinear" and n.output[0] in g.outputs:
            q = g.producer.get(n.input[0])
            if q is not None and q.op_type == "QuantizeLinear":
                yield ("warning", n, f"graph output {n.output[0]} passes through Q/DQ: the logits are rounded to 8 bits",
                       "leave the classifier output unquantized")
        if n.op_type not in QDQ_OPS and n.op_type not in ORT_CPU_QDQ_OPS:
            ins = [g.producer.get(i) for i in n.input if i]
            outs = g.consumers.get(n.output[0], []) if n.output else []
            if any(p is not None and p.op_type == "DequantizeLinear" and not g.is_const(p.input[0]) for p in ins) and \
                    outs and all(c.op_type == "QuantizeLinear" for c in outs):
                yield ("info", n, f"{n.op_type} between DequantizeLinear and QuantizeLinear: ONNX Runtime has no int8 "
                                  f"{n.op_type} kernel, so it runs in float with an extra dequantize and quantize",
                       "drop the Q/DQ around it")


def ort_cpu_integer_ops(g: Graph, s: dict[str, Any]) -> Iterator[Hit]:
    for n in g.nodes:
        if n.op_type in ("ConvInteger", "MatMulInteger"):
            yield ("info", n, f"{n.op_type}: integer-only graphs run 10-40x slower than FP32 on ONNX Runtime CPU "
                              "(its int64 element-wise ops are not vectorized; measured in benchmarks/integer_only.py)",
                   "use `--int8` (Q/DQ) for CPU speed; integer-only is for integer hardware")


# ---------------------------------------------------------------------------------------------
# both targets


def empty_optional_io(g: Graph, s: dict[str, Any]) -> Iterator[Hit]:
    """Trailing inputs/outputs named "" (an explicitly absent optional): ONNX Runtime's optimizer segfaults on
    ``LayerNormalization(x, scale, "")`` at the EXTENDED and ALL levels (see :mod:`edgevis.core.normalize`)."""
    from ..core.normalize import empty_trailing_io

    severity = "error" if s.get("target") == "ort-cpu" else "warning"
    for n in empty_trailing_io(g.model):
        yield (severity, n, f"{n.op_type} names an absent optional input or output with an empty trailing name; "
                            "ONNX Runtime's graph optimizer crashes (segfault) on such nodes (LayerNormalization)",
               "drop the trailing \"\" inputs/outputs (edgevis does when it loads the file; `edgevis simplify` "
               "writes the fixed graph)")


RULES: dict[str, list[tuple[str, Rule]]] = {
    "trt": [("trt-unsupported-op", trt_ops_supported), ("trt-opset", trt_opset),
            ("trt-op-restriction", trt_op_restrictions), ("trt-qdq", trt_qdq), ("trt-dynamic-shape", trt_dynamic_shapes),
            ("trt-int64", trt_int64), ("trt-layernorm-fp16", trt_layernorm_fp16), ("trt-precision", trt_precision),
            ("empty-optional-io", empty_optional_io)],
    "ort-cpu": [("ort-cpu-qdq", ort_cpu_qdq), ("ort-cpu-integer-ops", ort_cpu_integer_ops),
                ("empty-optional-io", empty_optional_io)],
}


def lint_model(model: onnx.ModelProto, target: str = "trt", *, trt_version: str = "10",
               precision: str = "auto") -> LintReport:
    """Findings for ``target`` (``trt`` or ``ort-cpu``), errors first; same-rule, same-message hits grouped."""
    from ..core.errors import EdgevisError

    from ..core.names import as_lint_target

    target = as_lint_target(target)
    if target not in TARGETS:
        raise EdgevisError(f"unknown lint target {target!r}; use {' or '.join(TARGETS)} (tensorrt is trt)")
    if str(trt_version) not in ("10", "11"):
        raise EdgevisError(f"--trt-version must be 10 or 11 (got {trt_version})")
    if precision not in ("auto", "fp32", "fp16", "int8"):
        raise EdgevisError(f"unknown --precision {precision!r}; use auto, fp32, fp16 or int8")
    g = Graph(model)
    if precision == "auto":
        precision = "int8" if has_qdq(model) else "fp16"
    s = {"precision": precision, "trt_version": str(trt_version)}
    settings = s if target == "trt" else {"precision": precision}
    grouped: dict[tuple[str, str, str], Finding] = {}
    for rule, fn in RULES[target]:
        for sev, node, msg, fix in fn(g, {**s, "target": target}):
            key = (rule, node.op_type, msg)
            f = grouped.get(key)
            if f is None:
                grouped[key] = Finding(rule, sev, node.op_type, [_label(node)], msg, fix)
            else:
                f.nodes.append(_label(node))
    findings = sorted(grouped.values(), key=lambda f: (SEVERITIES.index(f.severity), f.rule))
    return LintReport(target, settings, findings)
