"""Latency of several ONNX models measured side by side on ONNX Runtime.

The machines this runs on are noisy (shared cores, frequency scaling), so models
are never timed one after the other: every round runs each model a few times in
turn, and the comparison is made on statistics over the same rounds. Ratios
taken this way are stable where absolute numbers drift.
"""

from __future__ import annotations

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
    # each round's run times (ms), in round order: what :func:`speedup_interval` pairs across models
    rounds_ms: tuple[tuple[float, ...], ...] = field(default=(), compare=False, repr=False)

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
    per_round: dict[str, list[tuple[float, ...]]] = {k: [] for k in sessions}
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
            per_round[k].append(tuple(t * 1e3 for t in these))
    out = {}
    for k, ts in times.items():
        a = np.asarray(ts) * 1e3
        out[k] = Latency(float(np.percentile(a, 50)), float(np.percentile(a, 90)), float(a.mean()), int(a.size),
                         tuple(per_round[k]))
    return out


def speedup_interval(base: Latency, other: Latency, resamples: int = 2000) -> tuple[float, float] | None:
    """A 95 % interval on :func:`speedup` (the ratio of the p50s) from the rounds both were timed in
    (:func:`interleaved_latency`): the rounds are resampled with replacement, the same rounds for both models
    (a round is one pairing under one state of the machine), and the p50 ratio of each resample taken; the
    interval is their 2.5th-97.5th percentile. It is an interval on the very figure printed beside it (a
    Student interval on per-round ratios was centred elsewhere and once left the printed 2.93x outside its
    1.52-2.60x, on a machine whose load changed mid-run). Seeded: the same times give the same interval. With
    only a few rounds it is narrower than the truth; None with fewer than 3."""
    n = min(len(base.rounds_ms), len(other.rounds_ms))
    if n < 3:
        return None
    rng = np.random.default_rng(0)
    picks = rng.integers(0, n, size=(resamples, n))
    b = [np.asarray(r) for r in base.rounds_ms[:n]]
    o = [np.asarray(r) for r in other.rounds_ms[:n]]
    ratios = np.array([np.median(np.concatenate([b[i] for i in pick])) / np.median(np.concatenate([o[i] for i in pick]))
                       for pick in picks])
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def speedup_record(base: Latency, other: Latency) -> dict[str, object]:
    """The speed-up as a job records it: ``speedup`` (p50 over p50), its 95 % interval ``speedup_ci95``
    (:func:`speedup_interval`, None with too few rounds) and the ``paired_rounds`` it came from."""
    ci = speedup_interval(base, other)
    return {"speedup": speedup(base, other), "speedup_ci95": [round(v, 4) for v in ci] if ci else None,
            "paired_rounds": min(len(base.rounds_ms), len(other.rounds_ms))}


def speedup(base: Latency, other: Latency) -> float:
    """How many times faster ``other`` is than ``base`` (p50 over p50)."""
    return base.p50_ms / other.p50_ms
