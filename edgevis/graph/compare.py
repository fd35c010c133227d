"""Two model files, the same inputs: where do they diverge? (FP32 vs INT8, ONNX vs ORT-optimized, ONNX vs
a TensorRT engine built from it: outputs only.)

Per output: max absolute and relative difference, cosine, top-1 agreement. With
``per_layer``, every float tensor that both graphs produce under the same name (ORT's
quantizer and optimizer keep the float tensors' names) is made an output of both, and
the tensors are walked in the first graph's topological order: the first ones beyond
tolerance are where the two files part ways.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import EdgevisError
from ..core.names import is_engine

# per-layer: at most this many shared tensors are exposed (a graph has hundreds; all are compared)
MAX_TENSORS = 4000


@dataclass(frozen=True)
class Tolerance:
    atol: float = 1e-4
    rtol: float = 1e-3

    def exceeded(self, ref: np.ndarray, out: np.ndarray) -> bool:
        return bool(np.any(np.abs(ref - out) > self.atol + self.rtol * np.abs(ref)))


def _stats(ref: np.ndarray, out: np.ndarray) -> dict[str, Any]:
    r, o = ref.astype(np.float64).ravel(), out.astype(np.float64).ravel()
    diff = np.abs(r - o)
    denom = float(np.linalg.norm(r) * np.linalg.norm(o))
    scale = float(np.max(np.abs(r))) if r.size else 0.0
    return {"shape": list(ref.shape), "max_abs_diff": float(diff.max()) if diff.size else 0.0,
            "max_rel_diff": float(diff.max() / scale) if diff.size and scale > 0 else 0.0,
            # identical tensors are 1.0 exactly (r·r / |r|² rounds to 1.0000000000000002 for some r), never above
            "cosine": 1.0 if np.array_equal(r, o) else float(np.clip(r @ o / denom, -1.0, 1.0)) if denom > 0 else 0.0}


def inputs_for(model_file: str | os.PathLike[str], *, images: str | os.PathLike[str] | None, random: int,
               seed: int = 0) -> tuple[str, np.ndarray]:
    """(source label, a batch of inputs): preprocessed images (the file's record) or random normals."""
    from ..core.onnxfile import load_onnx, static_batch

    model = load_onnx(model_file, check=False)
    name = model.graph.input[0].name
    if images is not None:
        from ..data.images import iter_image_files, load_image
        from ..data.preprocess import preprocess
        from ..runtimes.predict import recorded_preprocess

        spec, _ = recorded_preprocess(model_file, model)
        files = sorted(iter_image_files(images))[: max(random, 1)]
        if not files:
            raise EdgevisError(f"no images in {images}")
        return f"{len(files)} images from {images}", np.stack([preprocess(load_image(f), spec) for f in files])
    dims = [d.dim_value if d.HasField("dim_value") else None for d in model.graph.input[0].type.tensor_type.shape.dim]
    if any(d is None for d in dims[1:]):
        raise EdgevisError(f"{model_file}: input {name!r} has a symbolic size beyond the batch; use --inputs DIR")
    n = static_batch(model) if dims and dims[0] else random
    x = np.random.default_rng(seed).standard_normal([n, *dims[1:]]).astype(np.float32)
    return f"{n} random normal input(s), seed {seed}", x


def _shared_float_tensors(a: Any, b: Any) -> list[str]:
    """Names of float tensors produced by nodes of both graphs, in ``a``'s topological order."""
    from onnx import TensorProto, shape_inference

    def float_names(m: Any) -> dict[str, None]:
        try:
            inferred = shape_inference.infer_shapes(m, strict_mode=False)
        except Exception:  # noqa: BLE001 - inference is a help here, never required
            inferred = m
        types = {v.name: v.type.tensor_type.elem_type for v in
                 list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input)}
        out: dict[str, None] = {}
        for n in m.graph.node:
            for t in n.output:
                if t and types.get(t, TensorProto.FLOAT) == TensorProto.FLOAT:
                    out[t] = None
        return out

    fa, fb = float_names(a), float_names(b)
    return [t for t in fa if t in fb][:MAX_TENSORS]


def _as_consumed(m: Any) -> dict[str, str]:
    """tensor -> the tensor its consumers actually read, where it goes through QuantizeLinear ->
    DequantizeLinear (a Q/DQ graph computes on DQ(Q(t)); ORT's quantizer may also drop a ReLU whose
    clamp the quantization range performs, leaving the name on the pre-activation value)."""
    q_of = {n.input[0]: n.output[0] for n in m.graph.node if n.op_type == "QuantizeLinear"}
    dq_of = {n.input[0]: n.output[0] for n in m.graph.node if n.op_type == "DequantizeLinear"}
    return {t: dq_of[q] for t, q in q_of.items() if q in dq_of}


def _with_outputs(m: Any, names: list[str]) -> bytes:
    from onnx import TensorProto, helper

    m2 = type(m)()
    m2.CopyFrom(m)
    have = {o.name for o in m2.graph.output}
    for t in names:
        if t not in have:
            m2.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    return m2.SerializeToString()


def compare_files(a: str | os.PathLike[str], b: str | os.PathLike[str], *, images: str | os.PathLike[str] | None = None,
                  random: int = 4, tolerance: Tolerance = Tolerance(), per_layer: bool = False,
                  first: int = 5) -> dict[str, Any]:
    """Run the same inputs through ``a`` and ``b``; compare the outputs (and, with ``per_layer``, every shared
    tensor, as the nodes that consume it see it: after its Q/DQ pair where it has one)."""
    from ..core.onnxfile import load_onnx
    from ..runtimes.ort import run_session, session_from_onnx

    if is_engine(a):
        raise EdgevisError(f"give the ONNX file first and the engine second ({a} is a TensorRT engine): the inputs "
                           "and their preprocessing come from the first file")
    if is_engine(b):
        return _compare_with_engine(a, b, images=images, random=random, tolerance=tolerance, per_layer=per_layer)
    ma, mb = load_onnx(a), load_onnx(b)
    if [i.name for i in ma.graph.input] != [i.name for i in mb.graph.input]:
        raise EdgevisError(f"{a} and {b} take different inputs ({[i.name for i in ma.graph.input]} vs "
                           f"{[i.name for i in mb.graph.input]}); compare files of one model")
    source, x = inputs_for(a, images=images, random=random)
    name = ma.graph.input[0].name
    outs_a, outs_b = [o.name for o in ma.graph.output], [o.name for o in mb.graph.output]
    shared = [o for o in outs_a if o in outs_b]
    if not shared:
        raise EdgevisError(f"{a} and {b} share no output name ({outs_a} vs {outs_b})")
    layers = _shared_float_tensors(ma, mb) if per_layer else []
    layer_names = [t for t in layers if t not in shared]
    seen_a, seen_b = _as_consumed(ma), _as_consumed(mb)
    names_a = [seen_a.get(t, t) for t in layer_names]
    names_b = [seen_b.get(t, t) for t in layer_names]
    sa = session_from_onnx(_with_outputs(ma, names_a), source=str(a))
    sb = session_from_onnx(_with_outputs(mb, names_b), source=str(b))
    fetch, fetch_b = shared + names_a, shared + names_b
    batch = _fixed_batch(ma)
    ra: list[list[np.ndarray]] = []
    rb: list[list[np.ndarray]] = []
    for i in range(0, len(x), batch or len(x)):
        xb = x[i:i + (batch or len(x))]
        if batch and len(xb) < batch:
            break
        ra.append(run_session(sa, {name: xb}, fetch, source=str(a)))
        rb.append(run_session(sb, {name: xb}, fetch_b, source=str(b)))
    if not ra:
        raise EdgevisError(f"fewer inputs than {a}'s fixed batch of {batch}")
    got_a = [np.concatenate([r[k] for r in ra]) for k in range(len(fetch))]
    got_b = [np.concatenate([r[k] for r in rb]) for k in range(len(fetch))]
    result = _result(a, b, source, tolerance, shared, got_a, got_b)
    if per_layer:
        diverging = []
        for k, t in enumerate(layer_names, start=len(shared)):
            if got_a[k].shape != got_b[k].shape:
                continue
            if tolerance.exceeded(got_a[k], got_b[k]):
                diverging.append({"tensor": t, **_stats(got_a[k], got_b[k])})
                if len(diverging) >= first:
                    break
        result["per_layer"] = {"tensors_compared": len(layer_names), "order": f"topological order of {Path(a).name}",
                               "first_diverging": diverging}
    return result


def _result(a: Any, b: Any, source: str, tolerance: Tolerance, shared: list[str], got_a: list[np.ndarray],
            got_b: list[np.ndarray]) -> dict[str, Any]:
    outputs = []
    for k, o in enumerate(shared):
        s = _stats(got_a[k], got_b[k])
        if got_a[k].ndim == 2:
            s["top1_agreement"] = float(np.mean(np.argmax(got_a[k], 1) == np.argmax(got_b[k], 1)))
        s["within_tolerance"] = not tolerance.exceeded(got_a[k], got_b[k])
        outputs.append({"name": o, **s})
    return {"schema": "edgevis.compare", "schema_version": 1, "a": str(a), "b": str(b),
            "inputs": source, "tolerance": {"atol": tolerance.atol, "rtol": tolerance.rtol},
            "outputs": outputs, "match": all(o["within_tolerance"] for o in outputs)}


def _compare_with_engine(a: str | os.PathLike[str], b: str | os.PathLike[str], *, images: Any, random: int,
                         tolerance: Tolerance, per_layer: bool) -> dict[str, Any]:
    """ONNX (on ONNX Runtime's CPU provider) against a TensorRT engine built from it: outputs only."""
    from ..core.onnxfile import load_onnx
    from ..runtimes.ort import run_session, session_from_onnx
    from ..runtimes.trt import TrtRunner

    if per_layer:
        raise EdgevisError(f"--per-layer compares two ONNX files: a TensorRT engine ({b}) exposes only its outputs; "
                           "compare the ONNX files it was built from")
    ma = load_onnx(a)
    source, x = inputs_for(a, images=images, random=random)
    name = ma.graph.input[0].name
    sa = session_from_onnx(ma.SerializeToString(), source=str(a))
    batch = _fixed_batch(ma) or 1  # one input at a time unless A fixes its batch: every engine profile takes it
    with TrtRunner(b) as runner:
        if runner.inputs != [name]:
            raise EdgevisError(f"{b} takes {runner.inputs}, {a} takes [{name!r}]: compare an engine with the ONNX "
                               "file it was built from")
        shared = [o.name for o in ma.graph.output if o.name in runner.outputs]
        if not shared:
            raise EdgevisError(f"{a} and {b} share no output name ({[o.name for o in ma.graph.output]} vs "
                               f"{runner.outputs})")
        ra: list[list[np.ndarray]] = []
        rb: list[list[np.ndarray]] = []
        for i in range(0, len(x) - batch + 1, batch):
            xb = x[i:i + batch]
            ra.append(run_session(sa, {name: xb}, shared, source=str(a)))
            got = runner.infer_all({name: xb})
            rb.append([got[o].astype(np.float32) for o in shared])
        warnings = list(runner.warnings)
    if not ra:
        raise EdgevisError(f"fewer inputs than {a}'s fixed batch of {batch}")
    result = _result(a, b, source, tolerance, shared, [np.concatenate([r[k] for r in ra]) for k in range(len(shared))],
                     [np.concatenate([r[k] for r in rb]) for k in range(len(shared))])
    return {**result, "runtimes": {"a": "onnxruntime-cpu", "b": "tensorrt"}, "warnings": warnings}


def _fixed_batch(m: Any) -> int | None:
    d = m.graph.input[0].type.tensor_type.shape.dim
    return int(d[0].dim_value) if d and d[0].HasField("dim_value") else None
