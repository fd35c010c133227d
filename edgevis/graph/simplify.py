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
  :mod:`edgevis.graph.integer_check`) is left exactly as written: its bit-exact
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
from ..core.onnxfile import (META_PROVENANCE, PROTOBUF_LIMIT, QDQ_OPS, get_metadata, load_onnx, op_histogram, random_feed, read_json_metadata,
                      set_metadata)
from ..core.normalize import normalize_model

TOOLS = ("onnxsim", "onnxslim")
META_SIMPLIFY = "edgevis.simplify"


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
    from .integer_check import check_integer_only

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


def import_onnxsim():  # type: ignore[no-untyped-def]
    """onnxsim, imported without torch where torch is not loaded yet.

    onnxsim's package imports all its modules, and one (``ppq_integration``, an optional PPQ backend that needs
    the ``ppq`` package, absent here) tries ``import torch`` first: 230 MB and ~1.5 s in a process that exports
    with torch in a child and goes on to quantize (issue 18). ``import torch`` is made to fail while onnxsim
    loads (that module catches it, as it does the missing ppq); simplify itself never uses torch. Should
    another onnxsim release need torch to import at all, it is imported as it is."""
    import sys

    if "onnxsim" in sys.modules or "torch" in sys.modules:
        import onnxsim

        return onnxsim
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        import onnxsim
    except ImportError:
        for name in [m for m in sys.modules if m == "onnxsim" or m.startswith("onnxsim.")]:
            del sys.modules[name]
        del sys.modules["torch"]
        import onnxsim
    finally:
        if "torch" in sys.modules and sys.modules["torch"] is None:
            del sys.modules["torch"]
    return onnxsim


def _run_onnxsim(model: onnx.ModelProto) -> onnx.ModelProto:
    onnxsim = import_onnxsim()
    out, ok = onnxsim.simplify(model)
    if not ok:
        raise RuntimeError("onnxsim's own check failed")
    return out


def _run_onnxslim(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxslim

    return onnxslim.slim(model)


RUNNERS: dict[str, Callable[[onnx.ModelProto], onnx.ModelProto]] = {"onnxsim": _run_onnxsim, "onnxslim": _run_onnxslim}


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
    size = model.ByteSize()
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
        return SimplifyResult(out, tool, before, op_histogram(out), size, out.ByteSize(),
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


class OrtGate:
    """The ``accept`` of :func:`simplify_model` that makes a candidate match the reference model on ONNX
    Runtime CPU over ``feeds``; the reference runs once, and ``last`` keeps the latest comparison."""

    def __init__(self, reference: onnx.ModelProto, feeds: Sequence[dict[str, np.ndarray]],
                 source: str = "the input model") -> None:
        self.reference = reference.SerializeToString()
        self.feeds = list(feeds)
        self.source = source
        self.last: dict[str, Any] | None = None
        self._refs: list[list[np.ndarray]] | None = None

    def reference_outputs(self) -> list[list[np.ndarray]]:
        """The reference's outputs on every feed (once); ONNX Runtime refusing the *input* is the user's
        file's problem: an :class:`~edgevis.core.errors.OrtError` naming it."""
        from ..runtimes.ort import run_session, session_from_onnx

        if self._refs is None:
            ref = session_from_onnx(self.reference, source=self.source, options=_quiet_options())
            self._names = [o.name for o in ref.get_outputs()]
            self._refs = [run_session(ref, f, source=self.source) for f in self.feeds]
            self.reference = b""  # its outputs are all that is needed from here on (a 43 MB model is 43 MB here)
        return self._refs

    def __call__(self, candidate: onnx.ModelProto) -> str | None:
        from ..core.compare import outputs_match
        from ..runtimes.ort import run_session, session_from_onnx

        self.reference_outputs()
        assert self._refs is not None
        try:
            sess = session_from_onnx(candidate.SerializeToString(), source="the simplified model",
                                     options=_quiet_options())
            outs = [run_session(sess, f, source="the simplified model") for f in self.feeds]
        except EdgevisError as e:  # ORT refusing the result is a rejection
            return first_line(e, 300)
        # every feed's outputs side by side: one comparison over all inputs
        r = outputs_match(self._names, [_joined([o[k] for o in self._refs]) for k in range(len(self._names))],
                          [_joined([o[k] for o in outs]) for k in range(len(self._names))])
        self.last = {**r, "inputs": sum(int(next(iter(f.values())).shape[0]) if f else 1 for f in self.feeds)}
        return None if r["passed"] else f"{r['reason']} from the input model"


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    """One output of every feed as one array: joined along the batch axis; a scalar output, or one whose shape
    differs between feeds beyond the batch, flattened first (still compared value by value)."""
    arrays = [np.asarray(a) for a in arrays]
    if all(a.ndim for a in arrays) and len({a.shape[1:] for a in arrays}) == 1:
        return np.concatenate(arrays)
    return np.concatenate([a.ravel() for a in arrays])


def _quiet_options():  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.log_severity_level = 3
    return o


def simplify_file(src: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, *,
                  tools: Sequence[str] = TOOLS, log: Callable[[str], None] = lambda _: None) -> SimplifyFileResult:
    """Simplify the ONNX file ``src`` into ``out`` (default ``NAME.sim.onnx``), checked on ONNX Runtime.

    The output lands (atomically, with a JSON sidecar) only once the simplified model matches
    the input on ONNX Runtime: a tool whose result does not is rejected and the next one tried.
    """
    from ..core.errors import OutputError
    from ..core.files import atomic_outputs, sha256_file, write_derived_sidecar
    from ..core.types import derived_path, sidecar_path

    src = Path(src)
    out_path = Path(out) if out is not None else derived_path(src, "sim")
    if out_path.resolve() == src.resolve():
        raise EdgevisError(f"the output {out_path} is the input file; choose another --output")
    model, _ = normalize_model(load_onnx(src))  # known ORT crashers respelled (see core.normalize)
    gate = OrtGate(model, [random_feed(model, seed=k, source=src) for k in range(2)], source=str(src))
    gate.reference_outputs()  # the input must run before any tool is tried
    log("simplifying")
    result = simplify_model(model, tools=tools, accept=gate)
    check = gate.last or {"passed": True, "exact": True, "reason": "model left unchanged"}
    warnings = []
    if result.tool == "none":
        warnings.append(f"{src.name} was left unchanged: {result.reason}")
    set_metadata(result.model, {META_SIMPLIFY: {**result.summary(), "source_sha256": sha256_file(src)}})
    # the model and its sidecar land together; the same model, rewritten, inherits all its source's sidecar
    # says (preprocessing, provenance)
    with atomic_outputs(out_path, sidecar_path(out_path)) as (tmp, tmp_side):
        try:
            onnx.save_model(result.model, str(tmp))
        except (ValueError, OSError) as e:  # protobuf's size limit, a full disk
            raise OutputError(f"cannot write {out_path}: {first_line(e)}") from None
        write_derived_sidecar(out_path, src, {"simplify": {**result.summary(), "check": check}}, inherit=None,
                              data=tmp, to=tmp_side)
    return SimplifyFileResult(out_path, src, result, check, warnings)



def simplify_traced(model: onnx.ModelProto, x, notes: list[str]):  # type: ignore[no-untyped-def]
    """The exporter's ``simplifier``: ``model`` simplified and checked on ORT against itself on ``x``,
    with the summary; on failure the traced model and a note (the exporter's torch parity check
    covers the written file either way)."""
    gate = OrtGate(model, [{model.graph.input[0].name: x}])
    gate.reference_outputs()  # first, so its session is gone before the tools and the candidate's session run
    try:
        res = simplify_model(model, accept=gate)
    except SimplifyError as e:
        notes.append(f"graph left unsimplified: {e}")
        return model, None
    return res.model, res.summary()
