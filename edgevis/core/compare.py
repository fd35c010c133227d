"""Numbers that say how close two sets of outputs are (numpy only)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class Closeness:
    max_abs_diff: float
    mean_abs_diff: float
    cosine_min: float
    cosine_mean: float
    ref_max_abs: float
    top1_agreement: float
    samples: int

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def compare_outputs(ref: np.ndarray, out: np.ndarray) -> Closeness:
    """Compare (N, ...) outputs row by row; cosine per sample, over its flattened values."""
    if ref.shape != out.shape:
        raise ValueError(f"shape mismatch: {ref.shape} vs {out.shape}")
    r = ref.reshape(ref.shape[0], -1).astype(np.float64)
    o = out.reshape(out.shape[0], -1).astype(np.float64)
    diff = np.abs(r - o)
    denom = np.linalg.norm(r, axis=1) * np.linalg.norm(o, axis=1)
    cos = np.where(denom > 0, (r * o).sum(axis=1) / np.maximum(denom, 1e-300), (diff.max(axis=1) == 0).astype(float))
    top1 = float((r.argmax(axis=1) == o.argmax(axis=1)).mean()) if r.shape[1] > 1 else 1.0
    return Closeness(
        max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()),
        cosine_min=float(cos.min()), cosine_mean=float(cos.mean()),
        ref_max_abs=float(np.abs(r).max()), top1_agreement=top1, samples=int(r.shape[0]),
    )


def outputs_match(names: Sequence[str], refs: Sequence[np.ndarray], outs: Sequence[np.ndarray], *,
                  atol: float = 1e-4, rtol: float = 1e-4, min_cosine: float = 0.99999) -> dict[str, Any]:
    """Whether every output in ``outs`` matches ``refs`` (a model rewritten, not re-quantized):
    max|diff| <= atol + rtol * max|ref| and row cosine >= ``min_cosine``, per output."""
    res: dict[str, Any] = {"passed": True, "max_abs_diff": 0.0, "cosine_min": 1.0, "exact": True}
    for name, x, y in zip(names, refs, outs):
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape:
            return {**res, "passed": False, "exact": False, "reason": f"output {name} changed shape from {x.shape} to {y.shape}"}
        rows = x.shape[0] if x.ndim and x.shape[0] else 1
        c = compare_outputs(x.reshape(rows, -1).astype(np.float64), y.reshape(rows, -1).astype(np.float64))
        res["exact"] = res["exact"] and bool(np.array_equal(x, y))
        res["max_abs_diff"] = max(res["max_abs_diff"], c.max_abs_diff)
        res["cosine_min"] = min(res["cosine_min"], c.cosine_min)
        limit = atol + rtol * c.ref_max_abs
        if res["passed"] and not (c.max_abs_diff <= limit and c.cosine_min >= min_cosine):
            res["passed"] = False
            res["reason"] = (f"output {name} differs: max|diff| {c.max_abs_diff:.3g} (limit {limit:.3g}), "
                             f"worst cosine {c.cosine_min:.6f}")
    return res


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion (sound at 0 %, 100 % and small n, unlike p ± 1.96·se)."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))
