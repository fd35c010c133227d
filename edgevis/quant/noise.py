"""Timing decisions that rise above the machine's noise.

The placement search asks "is this model faster than that one here?" many times. One
pair of p50s on a shared, frequency-scaled machine answers that by chance (the same
model kept normalization in float in 2 of 4 runs). Here every candidate is timed with
the current best in the same interleaved rounds; each round gives one ratio
``best / candidate`` per candidate, and a verdict is only given when the mean log
ratio is farther from 0 than its spread (a 99.9 % Student-t half-width over the
rounds, so it shrinks as rounds are added): "faster" when the gain exceeds the spread
and a minimum gain that matters, "slower" when the gain plus the spread is below zero. Undecided candidates get more rounds, up to a cap; what is
still undecided then keeps the default.

The clock is injected (``RoundTimer``), so the decision logic is tested with a
deterministic timer and the real one is ONNX Runtime sessions run in turn (or, for the openvino
target, models compiled by OpenVINO: ``session_round_timer`` with quant/openvino.py's ``OvTiming``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Protocol, Sequence

import numpy as np

FASTER, SLOWER, UNDECIDED = "faster", "slower", "undecided"
BEST = "__best__"
# Student's t, one-sided 99.9 % quantile, for 1..30 degrees of freedom (the last serves beyond)
_T999 = (318.309, 22.327, 10.215, 7.173, 5.893, 5.208, 4.785, 4.501, 4.297, 4.144, 4.025, 3.930, 3.852, 3.787,
         3.733, 3.686, 3.646, 3.610, 3.579, 3.552, 3.527, 3.505, 3.485, 3.467, 3.450, 3.435, 3.421, 3.408, 3.396,
         3.385)


class RoundTimer(Protocol):
    """``timer(models)`` prepares the models (by name) and returns ``more(n, names)``, which runs ``n`` more
    interleaved rounds of the models named (a subset: the candidates still undecided, and the best) and
    returns, for each of them, one time (ms) per round."""

    def __call__(self, models: Mapping[str, bytes]) -> Callable[[int, Sequence[str]], dict[str, list[float]]]: ...


@dataclass(frozen=True)
class Verdict:
    gain: float  # geometric mean over rounds of best/candidate - 1 (> 0: the candidate is faster)
    spread: float  # half-width of the gain's 99.9 % uncertainty (Student t on the per-round log ratios)
    rounds: int
    best_ms: float  # median round time of the current best and of the candidate
    cand_ms: float
    verdict: str  # faster | slower | undecided

    def to_dict(self) -> dict[str, float | int | str]:
        return {"gain": round(self.gain, 4), "spread": round(self.spread, 4), "rounds": self.rounds,
                "int8_ms": round(self.best_ms, 3), "float_ms": round(self.cand_ms, 3), "verdict": self.verdict}


def judge(best: list[float], cand: list[float], min_gain: float) -> Verdict:
    """The verdict on ``cand`` against ``best`` from their per-round times (same rounds, same order)."""
    b, c = np.asarray(best, np.float64), np.asarray(cand, np.float64)
    logs = np.log(b / c)  # per-round log speed ratio: symmetric, and a relative difference for small values
    n = len(logs)
    gain = math.expm1(float(logs.mean()))
    sd = float(logs.std(ddof=1)) if n > 1 else math.inf
    # half-width of a one-sided 99.9 % Student-t interval on the mean log ratio: the 0.1 % level leaves room
    # for looking again after more rounds and for judging several candidates at once
    spread = _T999[min(n - 1, len(_T999)) - 1] * sd / math.sqrt(n) if n > 1 else math.inf
    bm, cm = float(np.median(b)), float(np.median(c))
    if gain - spread > 0 and gain >= min_gain and cm < bm:  # faster beyond the noise, and by enough to matter
        v = FASTER
    elif gain + spread < 0:
        v = SLOWER
    else:
        v = UNDECIDED
    return Verdict(gain, spread, n, bm, cm, v)


def compare_all(timer: RoundTimer, best: bytes, candidates: Mapping[str, bytes], *, min_gain: float,
                min_rounds: int = 5, max_rounds: int = 15, step: int = 3, at_once: int = 3) -> dict[str, Verdict]:
    """Time ``best`` and the candidates in interleaved rounds, adding rounds (of ``best`` and the candidates
    still undecided, paired round by round) while any is undecided, up to ``max_rounds``; the verdict on
    each candidate against ``best``.

    At most ``at_once`` candidates are loaded beside ``best`` at a time: every candidate is judged against
    ``best`` in the rounds it ran in, so splitting them changes no verdict's pairing, and nine ORT sessions
    of a 500-node model held together were the INT8 job's memory peak (+480 MB on lsnet_t)."""
    names = list(candidates)
    verdicts: dict[str, Verdict] = {}
    for i in range(0, len(names), max(1, at_once)):
        chunk = names[i:i + max(1, at_once)]
        verdicts.update(_compare_chunk(timer, best, {k: candidates[k] for k in chunk}, min_gain, min_rounds,
                                       max_rounds, step))
    return verdicts


def _compare_chunk(timer: RoundTimer, best: bytes, candidates: Mapping[str, bytes], min_gain: float,
                   min_rounds: int, max_rounds: int, step: int) -> dict[str, Verdict]:
    more = timer({BEST: best, **candidates})
    times: dict[str, list[float]] = {k: [] for k in candidates}
    verdicts: dict[str, Verdict] = {}
    todo, n = list(candidates), min_rounds
    while todo:
        new = more(n, todo)
        base = new[BEST]
        for k in todo:
            times[k].extend(new[k])
            # each candidate is judged on the rounds it ran in, against best's times in those same rounds
            times.setdefault(f"{BEST}/{k}", []).extend(base)
            verdicts[k] = judge(times[f"{BEST}/{k}"], times[k], min_gain)
        todo = [k for k in todo if verdicts[k].verdict == UNDECIDED and verdicts[k].rounds < max_rounds]
        n = min(step, max_rounds - max((verdicts[k].rounds for k in todo), default=0))
    return verdicts


def ort_round_timer(threads: int | None, input_name: str, x: np.ndarray, *, iters: int = 1,
                    warmup: int = 2) -> RoundTimer:
    """The real clock: one ONNX Runtime CPU session per model (see :func:`session_round_timer`), one run per
    model per round. Keeping the fastest of 2 runs did not narrow the per-round log ratios on lsnet_t (their
    standard deviation was 0.06-0.10 with 2 runs, 0.03-0.08 with 1, over 15 rounds on an idle 2-core Xeon) and
    doubled the search's timing (issue 18): a round's pairing, not its repeats, is what cancels the drift."""
    from ..runtimes.latency import cpu_session

    return session_round_timer(lambda b: cpu_session(b, threads), input_name, x, iters=iters, warmup=warmup)


def session_round_timer(open_session: Callable[[bytes], object], input_name: str, x: np.ndarray, *,
                        iters: int = 2, warmup: int = 2) -> RoundTimer:
    """A clock on any runtime: ``open_session(model bytes)`` gives something with ORT's ``run(None, feed)``
    (an ORT session, an OpenVINO compiled model: quant/openvino.py). Each round runs every model ``iters``
    times in turn (order reversed every other round) and keeps its fastest run, the least disturbed by
    other work."""

    held: dict[str, object] = {}  # the best's blob and its session, from the last prepare

    def prepare(models: Mapping[str, bytes]) -> Callable[[int, Sequence[str]], dict[str, list[float]]]:
        # the best comes back for every chunk of candidates (compare_all): its session, warm, is reused
        # (an INT8 session costs ~0.3 s to create; three per pass on lsnet_t). Sessions are opened one after
        # another: side by side (ORT builds them without the GIL) saved ~0.15 s a chunk on lsnet_t but took the
        # quantize step's peak from 506 to 724 MB, over the main job's 600 MB (issue 18)
        again = held.get("blob") is models.get(BEST) and BEST in models
        if not again:
            held.clear()  # a new best: the old one's session goes before the new sessions are made
        sessions = {k: held["session"] if again and k == BEST else open_session(b) for k, b in models.items()}
        held.update(blob=models.get(BEST), session=sessions.get(BEST))
        feed = {input_name: x}
        for k, s in sessions.items():
            for _ in range(0 if again and k == BEST else warmup):
                s.run(None, feed)  # type: ignore[attr-defined]
        parity = [0]

        def more(n: int, which: Sequence[str]) -> dict[str, list[float]]:
            names = [BEST, *which]
            out: dict[str, list[float]] = {k: [] for k in names}
            for _ in range(n):
                order = names if parity[0] % 2 == 0 else names[::-1]
                parity[0] += 1
                for k in order:
                    run = sessions[k].run  # type: ignore[attr-defined]
                    best = float("inf")
                    for _ in range(iters):
                        t0 = time.perf_counter()
                        run(None, feed)
                        best = min(best, time.perf_counter() - t0)
                    out[k].append(best * 1e3)
            return out

        return more

    return prepare
