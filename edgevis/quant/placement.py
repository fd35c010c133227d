"""Which ops run in int8: chosen by timing on the target and by measured accuracy.

Latency: starting from "everything ORT can quantize", each group of ops (data
movement, elementwise, activations, pooling, normalization, depthwise convs,
matmuls, convs) is taken back to float in turn, and the change is kept when the
model gets faster, timed side by side with the current best. Accuracy: ops are
ranked by the error their quantized inputs add (``sensitivity.py``) and the most
damaging are kept in float, doubling the count, until the outputs on the
calibration images meet the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import onnx

from ..core.compare import Closeness, compare_outputs
from ..runtimes.latency import Latency, cpu_session, interleaved_latency
from .noise import FASTER, UNDECIDED, RoundTimer, Verdict, compare_all, ort_round_timer
from .qdq_graph import FEEDER_REASON, GROUPS, float_feeders, keep_float, node_group, quantized_nodes
from .sensitivity import Sensitivity

# a placement change must win by this much to count: below it, the machine's noise decides
MIN_GAIN = 0.03


@dataclass
class Placement:
    """Nodes kept in float (name -> reason) and the model that results."""

    kept: dict[str, str]
    model: onnx.ModelProto
    blob: bytes = b""

    def __post_init__(self) -> None:
        if not self.blob:
            self.blob = self.model.SerializeToString()


@dataclass
class AccuracyTarget:
    min_agreement: float | None = None
    min_cosine: float | None = None

    def met(self, c: Closeness) -> bool:
        return ((self.min_agreement is None or c.top1_agreement >= self.min_agreement)
                and (self.min_cosine is None or c.cosine_mean >= self.min_cosine))

    @property
    def active(self) -> bool:
        return self.min_agreement is not None or self.min_cosine is not None

    def describe(self) -> str:
        parts = []
        if self.min_agreement is not None:
            parts.append(f"top-1 agreement >= {self.min_agreement:g}")
        if self.min_cosine is not None:
            parts.append(f"mean cosine >= {self.min_cosine:g}")
        return " and ".join(parts)


@dataclass
class Searcher:
    base: onnx.ModelProto  # everything quantized (minus what the target/user excluded)
    float_model: onnx.ModelProto  # what the quantizer was given
    fp32_blob: bytes | str  # the FP32 model, serialized or its file (ORT sessions take either)
    input_name: str
    timing_input: np.ndarray
    eval_x: np.ndarray  # calibration images used to check accuracy
    eval_ref: np.ndarray  # FP32 outputs on eval_x
    threads: int | None = None
    log: Callable[[str], None] = lambda s: None
    steps: list[dict[str, Any]] = field(default_factory=list)
    round_timer: RoundTimer | None = None  # the latency search's clock (default: ORT sessions, noise.ort_round_timer)
    latency_summary: dict[str, Any] = field(default_factory=dict)
    # the target's runtime: model bytes -> something with ORT's run(None, feed) (default: an ORT CPU session;
    # the openvino target: quant/openvino.OvTiming.open), for time(); and where timings are taken, for the record
    open_session: Callable[[bytes], Any] | None = None
    timed_on: dict[str, Any] = field(default_factory=lambda: {"runtime": "onnxruntime", "device": "CPU"})
    # the target's own layout of every placement (the openvino target: quant/openvino.openvino_layout), and the
    # ops that layout runs on int8 data (default: ORT's layout as the quantizer wrote it)
    layout: Callable[[onnx.ModelProto], onnx.ModelProto] | None = None
    int8_nodes: Callable[[onnx.ModelProto], list[onnx.NodeProto]] = quantized_nodes

    def placement(self, kept: dict[str, str]) -> Placement:
        """The model with ``kept`` in float, and with it the data movement that only they read
        (``float_feeders``): a kept op reads float values, not an 8-bit round trip."""
        kept = dict(kept)
        kept.update(dict.fromkeys(float_feeders(self.base, kept), FEEDER_REASON))
        model = keep_float(self.base, self.float_model, kept) if kept else self.base
        return Placement(kept, self.layout(model) if self.layout else model)

    def clock(self) -> RoundTimer:
        """The latency search's clock: ``round_timer``, else ORT sessions (``noise.ort_round_timer``)."""
        return self.round_timer or ort_round_timer(self.threads, self.input_name, self.timing_input)

    def judge_against(self, best: bytes, other: bytes) -> Verdict:
        """``noise.compare_all``'s verdict on ``other`` against ``best`` on the latency search's clock: paired
        rounds added until the difference is beyond their spread, or the cap."""
        return compare_all(self.clock(), best, {"other": other}, min_gain=0.0)["other"]

    def time(self, models: dict[str, bytes], rounds: int = 5, iters: int = 4) -> dict[str, Latency]:
        open_session = self.open_session or (lambda b: cpu_session(b, self.threads))
        sessions = {k: open_session(b) for k, b in models.items()}
        return interleaved_latency(sessions, {self.input_name: self.timing_input}, rounds=rounds, iters=iters)

    def closeness(self, p: Placement) -> Closeness:
        got = self.outputs(p)
        return compare_outputs(self.eval_ref[:len(got)], got)

    def outputs(self, p: Placement, n: int | None = None) -> np.ndarray:
        sess = cpu_session(p.blob, self.threads)
        batch = self.timing_input.shape[0]
        x = self.eval_x if n is None else self.eval_x[:n]
        return np.concatenate([sess.run(None, {self.input_name: x[i:i + batch]})[0]
                               for i in range(0, len(x) - batch + 1, batch)])

    def op_sensitivity(self, start: Placement, images: int = 16, regions: int = 48) -> list[Sensitivity]:
        """Rank int8 ops by the output error each one adds: the share of the model's output error
        (squared, relative to FP32, on calibration images) that goes away when that op alone runs in float.

        Large graphs are first cut into ``regions`` runs of consecutive ops; only the ops of
        the regions that matter are then measured one by one, which bounds the cost.
        """
        ref = self.eval_ref[:images]
        ref_power = float(np.sum(ref.astype(np.float64) ** 2)) or 1.0

        def error(p: Placement) -> float:
            out = self.outputs(p, images)
            return float(np.sum((out.astype(np.float64) - ref[:len(out)]) ** 2)) / ref_power

        base_err = error(start)
        nodes = [n for n in self.int8_nodes(start.model) if n.name not in start.kept]
        if base_err <= 0 or not nodes:
            return []

        def gain(names: Sequence[str]) -> float:
            return (base_err - error(self.placement({**start.kept, **dict.fromkeys(names, "")}))) / base_err

        if len(nodes) > regions:
            size = -(-len(nodes) // regions)
            chunks = [nodes[i:i + size] for i in range(0, len(nodes), size)]
            scored = sorted(((gain([n.name for n in c]), c) for c in chunks), key=lambda t: -t[0])
            nodes = [n for g, c in scored[: max(1, regions // size)] if g > 0 for n in c]
        ranked = [Sensitivity(n.name, n.op_type, node_group(n), gain([n.name])) for n in nodes]
        ranked.sort(key=lambda s: -s.error_share)
        return [s for s in ranked if s.error_share > 0]

    def latency_search(self, start: Placement, max_passes: int = 3) -> Placement:
        """Take groups of ops back to float while that makes the model measurably faster here.

        Each pass times every group's candidate (the current best with that group in float)
        beside the current best in the same interleaved rounds (``noise.compare_all``) and
        takes the candidate that wins by the most, if any wins beyond the rounds' spread.
        The next pass re-times, against the new best, only the groups that also won: the
        data movement left between float ops follows them by itself (``float_feeders``).
        What stays undecided within the noise keeps the default (int8), and the summary
        says so.
        """
        timer = self.clock()
        best = start
        todo = list(GROUPS)
        undecided: set[str] = set()
        spreads: list[float] = []
        for k in range(max_passes):
            cands: dict[str, dict[str, str]] = {}  # group -> the kept set with it in float
            sizes: dict[str, int] = {}
            in_int8 = self.int8_nodes(best.model)
            for g in todo:
                names = [n.name for n in in_int8 if node_group(n) == g and n.name not in best.kept]
                if names:
                    cands[g] = {**best.kept, **{n: f"latency ({g} slower in int8 here)" for n in names}}
                    sizes[g] = len(names)
            if not cands:
                break
            # a candidate is built and serialized when its chunk of compare_all is timed, and dropped after it:
            # all of them at once were 130 MB on lsnet_t (the convs-in-float one is an FP32-sized model)
            blobs = _Built(list(cands), lambda g: self.placement(cands[g]).blob)
            verdicts = compare_all(timer, best.blob, blobs, min_gain=MIN_GAIN)
            winners = sorted((g for g, v in verdicts.items() if v.verdict == FASTER), key=lambda g: -verdicts[g].gain)
            for g, v in verdicts.items():
                spreads.append(v.spread)
                self.steps.append({"search": "latency", "pass": k + 1, "group": g,
                                   "nodes": sizes[g],
                                   **v.to_dict(), "kept_float": bool(winners) and g == winners[0]})
                self.log(f"latency: {g} in float is {v.verdict} ({v.best_ms:.2f} -> {v.cand_ms:.2f} ms, "
                         f"gain {v.gain:+.1%} +/- {v.spread:.1%} over {v.rounds} rounds)")
            undecided = {g for g, v in verdicts.items() if v.verdict == UNDECIDED} | (undecided - set(verdicts))
            if not winners:
                break
            best = self.placement(cands[winners[0]])
            undecided.discard(winners[0])
            todo = winners[1:]
        taken = sorted({r.split("(")[1].split(" slower")[0] for r in best.kept.values() if r.startswith("latency (")})
        self.latency_summary = {
            "timed_on": self.timed_on,
            "kept_float_groups": taken,
            "undecided_groups": sorted(undecided),
            "max_spread": round(max(spreads), 4) if spreads else None,
            "min_gain": MIN_GAIN,
            "decision": ("; ".join(filter(None, [
                f"{', '.join(taken)} faster in float beyond the spread" if taken else "no group faster in float "
                "beyond the spread: the default placement is kept",
                f"{', '.join(sorted(undecided))} within the noise: kept in int8 (the default)" if undecided else ""]))),
        }
        return best

    def accuracy_search(self, start: Placement, ranked: Sequence[Sensitivity], target: AccuracyTarget,
                        guard_latency: bool = True) -> tuple[Placement, Closeness, bool]:
        """Keep the most damaging ops in float (1, 2, 4, ... of them, then bisect back to the fewest that
        suffice) until ``target`` holds, but never so many that the model gets slower than FP32."""
        reason = "accuracy (one of the int8 ops adding the most output error)"
        todo = [s.node for s in ranked if s.node not in start.kept]

        def with_first(m: int) -> Placement:
            return self.placement({**start.kept, **dict.fromkeys(todo[:m], reason)})

        def too_slow(p: Placement) -> bool:
            """Slower than FP32 (or, where the start already was, slower than the start)."""
            if not guard_latency:
                return False
            t = self.time({"fp32": self.fp32_blob, "start": start.blob, "int8": p.blob}, rounds=4, iters=3)
            if t["start"].p50_ms >= t["fp32"].p50_ms:
                return t["int8"].p50_ms > t["start"].p50_ms * (1 + MIN_GAIN)
            return t["int8"].p50_ms >= t["fp32"].p50_ms

        c = self.closeness(start)
        self.steps.append({"search": "accuracy", "kept_float": 0, **_brief(c)})
        if target.met(c) or not todo:
            return start, c, target.met(c)
        best, best_c, lo, m = start, c, 0, 1
        while True:
            m = min(m, len(todo))
            cand = with_first(m)
            cc = self.closeness(cand)
            slow = too_slow(cand)
            self.steps.append({"search": "accuracy", "kept_float": m, **_brief(cc), "slower_than_fp32": slow})
            self.log(f"accuracy: {m} op(s) in float -> top-1 {cc.top1_agreement:.3f}, cosine {cc.cosine_mean:.5f}"
                     + (" (slower than FP32: not taken)" if slow else ""))
            if slow:
                return best, best_c, False
            if target.met(cc):
                best, best_c = cand, cc
                break
            if _better(cc, best_c):  # never pay for float ops that did not help
                best, best_c = cand, cc
            lo = m
            if m == len(todo):
                return best, best_c, False
            m *= 2
        hi = m  # target holds with hi ops in float, not with lo: find the fewest that suffice
        while hi - lo > 1:
            mid = (lo + hi) // 2
            cand = with_first(mid)
            cc = self.closeness(cand)
            self.steps.append({"search": "accuracy", "kept_float": mid, **_brief(cc)})
            if target.met(cc):
                hi, best, best_c = mid, cand, cc
            else:
                lo = mid
        return best, best_c, True


class _Built(Mapping[str, bytes]):
    """A read-only mapping whose values are made on each lookup and not kept."""

    def __init__(self, keys: list[str], make: Callable[[str], bytes]) -> None:
        self._keys, self._make = keys, make

    def __getitem__(self, key: str) -> bytes:
        if key not in self._keys:
            raise KeyError(key)
        return self._make(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


def _better(a: Closeness, b: Closeness) -> bool:
    return (a.top1_agreement, a.cosine_mean) > (b.top1_agreement, b.cosine_mean)


def _brief(c: Closeness) -> dict[str, float]:
    return {"top1_agreement": round(c.top1_agreement, 4), "cosine_mean": round(c.cosine_mean, 6)}
