"""Numbers that say how close two sets of outputs are (numpy only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

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
