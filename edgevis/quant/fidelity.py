"""FP32 vs quantized on held-out images: the numbers that say what quantization cost."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..core.compare import compare_outputs, wilson_interval
from ..core.errors import EdgevisError
from ..core.types import Preprocess
from ..runtimes.ort import OrtRunner
from .calibration import ImageSource


def sqnr_db(ref: np.ndarray, out: np.ndarray) -> float:
    noise = float(np.sum((ref.astype(np.float64) - out) ** 2))
    signal = float(np.sum(ref.astype(np.float64) ** 2))
    return float("inf") if noise == 0 else float(10.0 * np.log10(max(signal, 1e-300) / noise))


def top5_overlap(ref: np.ndarray, out: np.ndarray) -> float:
    k = min(5, ref.shape[1])
    a = np.argsort(-ref, axis=1)[:, :k]
    b = np.argsort(-out, axis=1)[:, :k]
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b)]))


@dataclass
class QuantizedFile:
    """What ``quantize_int8_file`` and ``quantize_integer_only_file`` return: the file written, its fidelity
    against FP32 on held-out images, the settings it records, and the warnings for the user."""

    path: Path
    fidelity: dict[str, Any]
    settings: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def write_checked(model, out_path: Path, src: Path, held: ImageSource, spec: Preprocess,  # type: ignore[no-untyped-def]
                  log: Callable[[str], None], prov: dict[str, Any] | None = None,
                  extra: dict[str, Any] | None = None,
                  on_target: Callable[[Path], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Save a quantized ``model`` at ``out_path``, measuring its fidelity against ``src`` on the held-out
    images before the file lands; return the fidelity report (with ``extra`` added). With ``prov`` its
    sidecar is written too, and the two land together (both to temporary names, then renamed)."""
    import json

    import onnx

    from ..core.files import atomic_output, atomic_outputs, sha256_file
    from ..core.types import sidecar_path

    if prov is None:
        with atomic_output(out_path) as tmp:
            onnx.save_model(model, str(tmp))
            log("measuring fidelity on held-out images")
            return {**fidelity_report(src, tmp, held, spec), **(extra or {}),
                    **({"on_target": on_target(tmp)} if on_target else {})}
    with atomic_outputs(out_path, sidecar_path(out_path)) as (tmp, tmp_side):
        onnx.save_model(model, str(tmp))
        log("measuring fidelity on held-out images")
        fid = {**fidelity_report(src, tmp, held, spec), **(extra or {}),
               **({"on_target": on_target(tmp)} if on_target else {})}  # measured where it runs (openvino)
        record = {"preprocess": spec.to_dict(), **prov, "sha256": sha256_file(tmp), "fidelity": fid}
        tmp_side.write_text(json.dumps(record, indent=2) + "\n")
    return fid


def top1_agreement_ci95(ref: np.ndarray, out: np.ndarray) -> list[float]:
    """The 95 % Wilson interval of the share of rows whose top-1 class agrees (``ref`` and ``out``: class scores)."""
    return list(wilson_interval(int(np.sum(ref.argmax(axis=1) == out.argmax(axis=1))), len(ref)))


def fidelity_report(fp32_path: str | os.PathLike[str], q_path: str | os.PathLike[str], held: ImageSource,
                    spec: Preprocess) -> dict[str, Any]:
    # stream the images in small batches: only the logits are kept, so memory does not grow
    # with the size of a user's held-out folder. The two models run side by side, one intra-op thread each,
    # while this thread reads the next batch: 2 cores busy instead of one session's two threads waiting on
    # each other between small ops (the outputs are the same for any thread count)
    from concurrent.futures import ThreadPoolExecutor

    refs, outs = [], []
    arrays = held.arrays(spec)
    with ThreadPoolExecutor(2, thread_name_prefix="edgevis-fidelity") as pool:
        opening = [pool.submit(OrtRunner(p, threads=1).open) for p in (fp32_path, q_path)]
        r32, rq = (f.result() for f in opening)
        try:
            running = None
            while True:
                chunk = list(itertools.islice(arrays, 16))
                if running is not None:
                    refs.append(running[0].result())
                    outs.append(running[1].result())
                if not chunk:
                    break
                x = np.stack(chunk)
                running = (pool.submit(r32.infer_batched, x), pool.submit(rq.infer_batched, x))
        finally:
            r32.close()
            rq.close()
    if not refs:
        raise EdgevisError(f"no readable held-out image in {held.label}")
    ref, out = np.concatenate(refs), np.concatenate(outs)
    if ref.ndim != 2 or out.shape != ref.shape:  # what runs, not what the graph declares (they can differ)
        raise EdgevisError(f"{fp32_path} computes outputs of shape {tuple(ref.shape)} (its quantized copy "
                           f"{tuple(out.shape)}) for {len(ref)} images; fidelity needs class scores of shape "
                           "(batch, classes)")
    c = compare_outputs(ref, out)
    return {
        "images": int(len(ref)),
        "source": held.label,
        "top1_agreement": c.top1_agreement,
        # the 95 % Wilson interval of that share: 42 of 42 views still leaves 91.6-100 %; views of one photo are
        # correlated, so it is optimistic where the images are views (the bundled photos' are)
        "top1_agreement_ci95": top1_agreement_ci95(ref, out),
        "top5_overlap": top5_overlap(ref, out),
        "cosine_mean": c.cosine_mean,
        "cosine_min": c.cosine_min,
        "sqnr_db": sqnr_db(ref, out),
        "max_abs_diff": c.max_abs_diff,
    }
