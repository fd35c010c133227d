"""Latency of several ONNX models measured side by side on ONNX Runtime.

The machines this runs on are noisy (shared cores, frequency scaling), so models
are never timed one after the other: every round runs each model a few times in
turn, and the comparison is made on statistics over the same rounds. Ratios
taken this way are stable where absolute numbers drift.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p90_ms: float
    mean_ms: float
    samples: int
    # the median of each round's runs, in round order: what :func:`speedup_interval` pairs across models
    rounds_ms: tuple[float, ...] = field(default=(), compare=False, repr=False)

    def to_dict(self) -> dict[str, float]:
        return {"p50_ms": self.p50_ms, "p90_ms": self.p90_ms, "mean_ms": self.mean_ms, "samples": self.samples}


def cpu_session(model: bytes | str, threads: int | None = None, source: str = "the model"):  # type: ignore[no-untyped-def]
    """A CPU ``InferenceSession`` from a path or serialized bytes, with ``threads`` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    # Spinning threads of one session steal the cores of the next one timed right after it,
    # which penalised whichever model ran in the middle of a round by 15-35 %.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    from .ort import ort_errors

    # edgevis's own derived graphs, made from a file that passed session_from_onnx: the boundary for ORT's
    # errors, without parsing and normalizing the bytes again on every one of the placement search's sessions
    with ort_errors(model if isinstance(model, str) else source):
        return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def interleaved_latency(
    sessions: Mapping[str, object],
    feed: Mapping[str, np.ndarray],
    *,
    rounds: int = 7,
    iters: int = 5,
    warmup: int = 3,
) -> dict[str, Latency]:
    """Time each session on ``feed``: ``rounds`` rounds, each running every session ``iters`` times in turn."""
    for s in sessions.values():
        for _ in range(warmup):
            s.run(None, feed)  # type: ignore[attr-defined]
    times: dict[str, list[float]] = {k: [] for k in sessions}
    per_round: dict[str, list[float]] = {k: [] for k in sessions}
    names = list(sessions)
    for r in range(rounds):
        # alternate the order each round so neither model always runs right after the other
        for k in names if r % 2 == 0 else reversed(names):
            run = sessions[k].run  # type: ignore[attr-defined]
            these = []
            for _ in range(iters):
                t0 = time.perf_counter()
                run(None, feed)
                these.append(time.perf_counter() - t0)
            times[k].extend(these)
            per_round[k].append(float(np.median(these)) * 1e3)
    out = {}
    for k, ts in times.items():
        a = np.asarray(ts) * 1e3
        out[k] = Latency(float(np.percentile(a, 50)), float(np.percentile(a, 90)), float(a.mean()), int(a.size),
                         tuple(per_round[k]))
    return out


# Student's t, two-sided 95 % quantile, for 1..30 degrees of freedom; beyond, the first Cornish-Fisher term
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def _t975(df: int) -> float:
    z = 1.959964
    return _T975[df - 1] if df <= len(_T975) else z + (z ** 3 + z) / (4 * df)


def speedup_interval(base: Latency, other: Latency) -> tuple[float, float] | None:
    """A 95 % interval on how many times faster ``other`` is than ``base``, from their rounds paired (both timed
    in the same :func:`interleaved_latency` rounds): each round gives one ratio, the interval is Student's on the
    mean log ratio. One p50 ratio is one draw on a noisy machine; this says how far it can be trusted. None
    with fewer than 3 paired rounds."""
    n = min(len(base.rounds_ms), len(other.rounds_ms))
    if n < 3:
        return None
    logs = np.log(np.asarray(base.rounds_ms[:n]) / np.asarray(other.rounds_ms[:n]))
    half = _t975(n - 1) * float(logs.std(ddof=1)) / math.sqrt(n)
    mid = float(logs.mean())
    return math.exp(mid - half), math.exp(mid + half)


def speedup(base: Latency, other: Latency) -> float:
    """How many times faster ``other`` is than ``base`` (p50 over p50)."""
    return base.p50_ms / other.p50_ms
