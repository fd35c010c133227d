"""Latency of several ONNX models measured side by side on ONNX Runtime.

The machines this runs on are noisy (shared cores, frequency scaling), so models
are never timed one after the other: every round runs each model a few times in
turn, and the comparison is made on statistics over the same rounds. Ratios
taken this way are stable where absolute numbers drift.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p90_ms: float
    mean_ms: float
    samples: int

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
    names = list(sessions)
    for r in range(rounds):
        # alternate the order each round so neither model always runs right after the other
        for k in names if r % 2 == 0 else reversed(names):
            run = sessions[k].run  # type: ignore[attr-defined]
            for _ in range(iters):
                t0 = time.perf_counter()
                run(None, feed)
                times[k].append(time.perf_counter() - t0)
    out = {}
    for k, ts in times.items():
        a = np.asarray(ts) * 1e3
        out[k] = Latency(float(np.percentile(a, 50)), float(np.percentile(a, 90)), float(a.mean()), int(a.size))
    return out


def speedup(base: Latency, other: Latency) -> float:
    """How many times faster ``other`` is than ``base`` (p50 over p50)."""
    return base.p50_ms / other.p50_ms
