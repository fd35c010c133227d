"""Latency statistics from timed iterations, and whether they are precise enough to trust.

A deployment engineer compares these numbers across models and precisions, so each
result says how well it is known: the coefficient of variation of the samples, and
the 95 % confidence half-width of the mean relative to the mean. When that half-width
is wider than the tolerance asked for, the result carries a warning with the number
of iterations that would have been needed, instead of quietly printing a figure with
more digits than it deserves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

PERCENTILES = (50, 90, 95, 99)
Z95 = 1.959963984540054  # two-sided 95 % normal quantile
NOISY_CV = 0.10  # above this the machine is visibly noisy whatever the iteration count


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds over the timed iterations (warm-up excluded)."""

    min: float
    mean: float
    std: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    samples: int

    @property
    def cv(self) -> float:
        """Coefficient of variation: std / mean."""
        return self.std / self.mean if self.mean > 0 else float("inf")

    @property
    def mean_ci95(self) -> float:
        """95 % confidence half-width of the mean, relative to the mean."""
        return Z95 * self.cv / math.sqrt(self.samples) if self.samples > 1 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        finite = (lambda v: v if math.isfinite(v) else None)  # JSON has no infinity: unknown is null
        return {"min": self.min, "mean": self.mean, "std": self.std, "p50": self.p50, "p90": self.p90,
                "p95": self.p95, "p99": self.p99, "max": self.max, "cv": finite(self.cv),
                "mean_ci95_rel": finite(self.mean_ci95), "samples": self.samples}


def latency_stats(samples_ms: Sequence[float]) -> LatencyStats:
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no timed iterations")
    p50, p90, p95, p99 = (float(v) for v in np.percentile(a, PERCENTILES))
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return LatencyStats(float(a.min()), float(a.mean()), std, p50, p90, p95, p99, float(a.max()), int(a.size))


def iterations_needed(stats: LatencyStats, tolerance: float) -> int:
    """Iterations for the mean's 95 % half-width to reach ``tolerance`` at this CV."""
    return math.ceil((Z95 * stats.cv / tolerance) ** 2)


def noise_warnings(stats: LatencyStats, tolerance: float) -> list[str]:
    """Warnings when the measurement is not as precise as ``tolerance`` (relative, e.g. 0.02)."""
    out = []
    if stats.samples < 2:
        out.append("one timed run: its spread, and so its precision, cannot be known; use --iters 10 or more")
    elif stats.mean_ci95 > tolerance:
        out.append(
            f"too noisy for ±{tolerance:.1%}: CV {stats.cv:.1%} over {stats.samples} iterations gives the mean "
            f"only to ±{stats.mean_ci95:.1%} (95 % confidence); about {iterations_needed(stats, tolerance)} "
            "iterations, or a quieter machine, would be needed")
    elif stats.cv > NOISY_CV:
        out.append(f"the machine is noisy: CV {stats.cv:.1%} (more than {NOISY_CV:.0%}); percentiles beyond p90 "
                   "mostly measure interference")
    return out
