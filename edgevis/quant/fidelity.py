"""FP32 vs quantized on held-out images: the numbers that say what quantization cost."""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np

from ..core.compare import compare_outputs
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


def fidelity_report(fp32_path: str | os.PathLike[str], q_path: str | os.PathLike[str], held: ImageSource,
                    spec: Preprocess) -> dict[str, Any]:
    # stream the images in small batches: only the logits are kept, so memory does not grow
    # with the size of a user's held-out folder
    refs, outs = [], []
    arrays = held.arrays(spec)
    with OrtRunner(fp32_path) as r32, OrtRunner(q_path) as rq:
        while chunk := list(itertools.islice(arrays, 16)):
            x = np.stack(chunk)
            refs.append(r32.infer_batched(x))
            outs.append(rq.infer_batched(x))
    if not refs:
        raise EdgevisError(f"no readable held-out image in {held.label}")
    ref, out = np.concatenate(refs), np.concatenate(outs)
    c = compare_outputs(ref, out)
    return {
        "images": int(len(ref)),
        "source": held.label,
        "top1_agreement": c.top1_agreement,
        "top5_overlap": top5_overlap(ref, out),
        "cosine_mean": c.cosine_mean,
        "cosine_min": c.cosine_min,
        "sqnr_db": sqnr_db(ref, out),
        "max_abs_diff": c.max_abs_diff,
    }
