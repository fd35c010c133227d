"""Graph simplification: onnxsim first, onnxslim as fallback, Q/DQ and integer-only regions protected.

Both tools fold constants and remove dead and duplicate nodes; neither knows
that a ``DequantizeLinear`` on an int8 weight is the *format* of a Q/DQ model
(TensorRT and ORT's quantized kernels fuse on it), not a computation to fold:
onnxsim 0.8 folds some of them into float weights. What edgevis adds:

* **Q/DQ protection.** The quantized constants (the data inputs of
  ``DequantizeLinear``/``QuantizeLinear``) are hidden from the tools as graph
  inputs while they run and restored afterwards, so nothing can fold through
  them; a signature of every Q/DQ node (op, scale, zero point, axis, quantized
  constant) must come back unchanged, or the tool's result is rejected.
* **Integer-only protection.** A model proven integer-only (see
  :mod:`edgevis.quant.ivit.check`) is left exactly as written: its bit-exact
  proof was made on that graph, and nothing outside the integer region (one
  QuantizeLinear, one DequantizeLinear) is left to simplify.
* **A numeric re-check** on ONNX Runtime against the input (:func:`simplify_file`);
  a tool whose result differs is rejected and the next one tried.
"""

from __future__ import annotations

import collections
import copy
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

from ..core.errors import EdgevisError, first_line
from .inspect import (META_PROVENANCE, get_metadata, load_onnx, op_histogram, random_feed, read_json_metadata,
                      set_metadata)

TOOLS = ("onnxsim", "onnxslim")
META_SIMPLIFY = "edgevis.simplify"
PROTOBUF_LIMIT = 2 * 1024**3
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


class SimplifyError(EdgevisError):
    """No tool produced a simplified model that keeps the protected regions and the numerics."""


@dataclass
class SimplifyResult:
    model: onnx.ModelProto
    tool: str  # "onnxsim", "onnxslim", or "none" when the model was left as it is
    before: dict[str, int]
    after: dict[str, int]
    bytes_before: int
    bytes_after: int
    protected: dict[str, int] = field(default_factory=dict)
    attempts: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    reason: str = ""  # why tool == "none"

    def summary(self) -> dict[str, Any]:
        return {"tool": self.tool, "tool_version": _tool_version(self.tool), "nodes_before": sum(self.before.values()),
                "nodes_after": sum(self.after.values()), "bytes_before": self.bytes_before,
                "bytes_after": self.bytes_after, "protected": self.protected, "attempts": self.attempts,
                "seconds": round(self.seconds, 2), **({"reason": self.reason} if self.reason else {})}

    def op_changes(self) -> list[tuple[str, int, int]]:
        """(op type, count before, count after) for every op type whose count changed."""
        ops = sorted(set(self.before) | set(self.after), key=lambda k: -max(self.before.get(k, 0), self.after.get(k, 0)))
        return [(k, self.before.get(k, 0), self.after.get(k, 0)) for k in ops
                if self.before.get(k, 0) != self.after.get(k, 0)]


def _tool_version(tool: str) -> str | None:
    if tool not in TOOLS:
        return None
    try:
        import importlib.metadata as md

        return md.version(tool)
    except Exception:  # noqa: BLE001 - a version is informative only
        return None


def is_integer_only(model: onnx.ModelProto) -> bool:
    prov = read_json_metadata(model, META_PROVENANCE) or {}
    if prov.get("precision") == "integer-only":
        return True
    ops = {n.op_type for n in model.graph.node}
    if not ops & {"MatMulInteger", "ConvInteger"}:
        return False
    from ..quant.ivit.check import check_integer_only

    return check_integer_only(model).ok


def _protected_constants(model: onnx.ModelProto) -> set[str]:
    """Initializers that are the quantized data of a Q/DQ node (weights, biases)."""
    inits = {i.name for i in model.graph.initializer}
    return {n.input[0] for n in model.graph.node if n.op_type in QDQ_OPS and n.input[0] in inits}


def _qdq_signature(model: onnx.ModelProto, hidden: set[str]) -> collections.Counter:
    """What must survive: each Q/DQ node's op, axis, scale and zero point values, and which
    protected constant it reads (activations are named by role only: a tool may rename them)."""
    values = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for n in model.graph.node:  # scales may also sit in Constant nodes
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            values[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    sig: collections.Counter = collections.Counter()
    for n in model.graph.node:
        if n.op_type not in QDQ_OPS:
            continue

        def val(i: int) -> tuple:
            if len(n.input) <= i or not n.input[i]:
                return ()
            v = values.get(n.input[i])
            return ("?",) if v is None else (str(v.dtype), v.shape, v.tobytes())

        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        data = n.input[0] if n.input[0] in hidden else "activation"
        sig[(n.op_type, data, axis, val(1), val(2))] += 1
    return sig


def _hide(model: onnx.ModelProto, names: set[str]) -> onnx.ModelProto:
    """A copy in which the initializers ``names`` are graph inputs (so no tool can fold through them)."""
    m = copy.deepcopy(model)
    keep = [i for i in m.graph.initializer if i.name not in names]
    hidden = [i for i in m.graph.initializer if i.name in names]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    for t in hidden:
        m.graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return m


def _restore(simplified: onnx.ModelProto, original: onnx.ModelProto, names: set[str]) -> onnx.ModelProto:
    used = {i for n in simplified.graph.node for i in n.input}
    inputs = [i for i in simplified.graph.input if i.name not in names]
    del simplified.graph.input[:]
    simplified.graph.input.extend(inputs)
    simplified.graph.initializer.extend(i for i in original.graph.initializer if i.name in names and i.name in used)
    return simplified


def _run_onnxsim(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxsim

    out, ok = onnxsim.simplify(model)
    if not ok:
        raise RuntimeError("onnxsim's own check failed")
    return out


def _run_onnxslim(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxslim

    return onnxslim.slim(model)


RUNNERS: dict[str, Callable[[onnx.ModelProto], onnx.ModelProto]] = {"onnxsim": _run_onnxsim, "onnxslim": _run_onnxslim}


def _model_bytes(model: onnx.ModelProto) -> int:
    return model.ByteSize()


def _external_bytes(model: onnx.ModelProto) -> int:
    return sum(i.ByteSize() for i in model.graph.initializer)


def simplify_model(
    model: onnx.ModelProto,
    *,
    tools: Sequence[str] = TOOLS,
    accept: Callable[[onnx.ModelProto], str | None] | None = None,
) -> SimplifyResult:
    """Simplify ``model`` with the first tool in ``tools`` whose result keeps the Q/DQ format and,
    if given, passes ``accept`` (which returns a reason to reject, or None).

    The input is not modified. An integer-only model is returned unchanged (tool ``"none"``).
    Raises :class:`SimplifyError` when every tool fails or is rejected.
    """
    for t in tools:
        if t not in TOOLS:
            raise EdgevisError(f"unknown simplifier {t!r}; use {' or '.join(TOOLS)}")
    before = op_histogram(model)
    size = _model_bytes(model)
    if size >= PROTOBUF_LIMIT:
        raise SimplifyError(f"the model is {size / 1024**3:.2f} GiB, over protobuf's 2 GiB limit for one message; "
                            "onnxsim and onnxslim cannot simplify it in memory")
    if is_integer_only(model):
        n = len(model.graph.node)
        return SimplifyResult(copy.deepcopy(model), "none", before, before, size, size,
                              protected={"integer_only_nodes": n},
                              reason=f"integer-only graph: its {n} nodes are the proven integer region and are "
                                     "left as written (nothing outside it to simplify)")
    names = _protected_constants(model)
    want = _qdq_signature(model, names)
    hidden = _hide(model, names) if names else model
    attempts: list[dict[str, str]] = []
    t0 = time.perf_counter()
    for tool in tools:
        try:
            out = RUNNERS[tool](copy.deepcopy(hidden))
            out = _restore(out, model, names) if names else out
            onnx.checker.check_model(out, full_check=False)
        except Exception as e:  # noqa: BLE001 - tool failures are many types; try the next tool
            attempts.append({"tool": tool, "result": "failed", "reason": first_line(e, 300)})
            continue
        if _qdq_signature(out, names) != want:
            attempts.append({"tool": tool, "result": "rejected",
                             "reason": "it changed QuantizeLinear/DequantizeLinear nodes"})
            continue
        why = accept(out) if accept else None
        if why:
            attempts.append({"tool": tool, "result": "rejected", "reason": why})
            continue
        attempts.append({"tool": tool, "result": "used", "reason": ""})
        _clean_metadata(out, model)
        return SimplifyResult(out, tool, before, op_histogram(out), size, _model_bytes(out),
                              protected={"qdq_constants": len(names), "qdq_nodes": sum(want.values())},
                              attempts=attempts, seconds=time.perf_counter() - t0)
    raise SimplifyError("no simplifier kept the model intact: "
                        + "; ".join(f"{a['tool']} {a['result']} ({a['reason']})" for a in attempts))


def _clean_metadata(out: onnx.ModelProto, original: onnx.ModelProto) -> None:
    """Keep the input's metadata; drop the tools' own bookkeeping (onnxsim writes lists of every
    removed node, often larger than the graph's description)."""
    keep = get_metadata(original)
    del out.metadata_props[:]
    set_metadata(out, keep)
    out.producer_name = original.producer_name or out.producer_name
    out.producer_version = original.producer_version


# ---------------------------------------------------------------------------------------------
# files: load, simplify, re-check on ONNX Runtime, write atomically with the sidecar


@dataclass
class SimplifyFileResult:
    path: Path
    source: Path
    result: SimplifyResult
    check: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {"file": str(self.path), "source": str(self.source), **r.summary(),
                "file_bytes_before": self.source.stat().st_size, "file_bytes_after": self.path.stat().st_size,
                "ops_before": r.before, "ops_after": r.after, "check": self.check, "warnings": self.warnings}


def default_output(src: str | os.PathLike[str]) -> Path:
    """``NAME.sim.onnx`` beside ``NAME.onnx``."""
    p = Path(src)
    stem = p.name[:-5] if p.name.endswith(".onnx") else p.name
    return p.with_name(stem + ".sim.onnx")


def numeric_check(ref_model: bytes | str, new_model: bytes | str, feeds: Sequence[dict[str, np.ndarray]], *,
                  atol: float = 1e-4, rtol: float = 1e-4, min_cosine: float = 0.99999) -> dict[str, Any]:
    """Every output of ``new_model`` against ``ref_model`` on ONNX Runtime CPU, over ``feeds``."""
    from ..core.compare import compare_outputs
    from ..profile.latency import cpu_session

    sa, sb = cpu_session(ref_model), cpu_session(new_model)
    worst: dict[str, Any] = {"passed": True, "inputs": 0, "max_abs_diff": 0.0, "cosine_min": 1.0, "exact": True}
    for feed in feeds:
        worst["inputs"] += int(next(iter(feed.values())).shape[0]) if feed else 1
        for name, x, y in zip([o.name for o in sa.get_outputs()], sa.run(None, feed), sb.run(None, feed)):
            x, y = np.asarray(x), np.asarray(y)
            if x.shape != y.shape:
                return {**worst, "passed": False, "exact": False,
                        "reason": f"output {name} changed shape from {x.shape} to {y.shape}"}
            x2, y2 = x.reshape(max(x.shape[:1] or (1,)), -1), y.reshape(max(y.shape[:1] or (1,)), -1)
            c = compare_outputs(x2.astype(np.float64), y2.astype(np.float64))
            worst["exact"] = worst["exact"] and bool(np.array_equal(x, y))
            worst["max_abs_diff"] = max(worst["max_abs_diff"], c.max_abs_diff)
            worst["cosine_min"] = min(worst["cosine_min"], c.cosine_min)
            limit = atol + rtol * c.ref_max_abs
            if not (c.max_abs_diff <= limit and c.cosine_min >= min_cosine):
                worst["passed"] = False
                worst["reason"] = (f"output {name} differs from the input model: max|diff| {c.max_abs_diff:.3g} "
                                   f"(limit {limit:.3g}), worst cosine {c.cosine_min:.6f}")
    return worst


def simplify_file(src: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
                  tools: Sequence[str] = TOOLS, log: Callable[[str], None] = lambda _: None) -> SimplifyFileResult:
    """Simplify the ONNX file ``src`` into ``out`` (default ``NAME.sim.onnx``), checked on ONNX Runtime.

    The output lands (atomically, with a JSON sidecar) only once the simplified model matches
    the input on ONNX Runtime: a tool whose result does not is rejected and the next one tried.
    """
    from ..core.files import atomic_output, sha256_file, write_json_atomic
    from ..core.types import read_sidecar, sidecar_path

    src = Path(src)
    out_path = Path(out) if out is not None else default_output(src)
    if out_path.resolve() == src.resolve():
        raise EdgevisError(f"the output {out_path} is the input file; choose another --output")
    total = src.stat().st_size if src.is_file() else 0
    model = load_onnx(src)
    total = max(total, _external_bytes(model))
    if total >= PROTOBUF_LIMIT:
        raise SimplifyError(f"{src} holds {total / 1024**3:.2f} GiB of weights, over protobuf's 2 GiB limit; "
                            "onnxsim and onnxslim cannot simplify it in memory (keep it as it is)")
    feeds = [random_feed(model, seed=k) for k in range(2)]
    ref_bytes = model.SerializeToString()
    checks: dict[str, dict[str, Any]] = {}

    def accept(candidate: onnx.ModelProto) -> str | None:
        try:
            r = numeric_check(ref_bytes, candidate.SerializeToString(), feeds)
        except Exception as e:  # noqa: BLE001 - ORT refusing the result is a rejection
            return f"ONNX Runtime cannot run the result: {first_line(e, 300)}"
        checks["last"] = r
        return None if r["passed"] else r["reason"]

    log("simplifying")
    result = simplify_model(model, tools=tools, accept=accept)
    check = checks.get("last") or {"passed": True, "exact": True, "reason": "model left unchanged"}
    warnings = []
    if result.tool == "none":
        warnings.append(f"{src.name} was left unchanged: {result.reason}")
    set_metadata(result.model, {META_SIMPLIFY: {**result.summary(), "source_sha256": sha256_file(src)}})
    with atomic_output(out_path) as tmp:
        onnx.save_model(result.model, str(tmp))
    side = read_sidecar(src) or {}
    side.pop("sha256", None)
    write_json_atomic(sidecar_path(out_path), {**side, "simplify": {**result.summary(), "check": check,
                                                                     "source": str(src),
                                                                     "source_sha256": sha256_file(src)},
                                               "sha256": sha256_file(out_path)})
    return SimplifyFileResult(out_path, src, result, check, warnings)

