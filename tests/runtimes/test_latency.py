"""runtimes/latency: the speed-up's interval from paired rounds (the number the export's latency line qualifies)."""

import numpy as np
import pytest

from edgevis.runtimes.latency import Latency, interleaved_latency, speedup_interval


def _lat(rounds):
    """A Latency whose rounds are ``rounds`` (each a tuple of run times, ms), p50 over all of them."""
    a = np.concatenate([np.asarray(r, float) for r in rounds])
    return Latency(float(np.median(a)), float(np.percentile(a, 90)), float(a.mean()), len(a), tuple(rounds))


def test_a_constant_ratio_has_no_width():
    lo, hi = speedup_interval(_lat([(10.0, 10.2), (12.0, 12.4), (11.0, 11.6)]), _lat([(5.0, 5.1), (6.0, 6.2), (5.5, 5.8)]))
    assert lo == pytest.approx(2.0) and hi == pytest.approx(2.0)


def test_rounds_are_resampled_in_pairs():
    # the machine's speed changes threefold from round to round, the same for both models: resampled as pairs,
    # every resample's p50 ratio is exactly 2 (resampled apart, they would range over ~0.7-6)
    drift = [1.0, 3.0, 1.5, 2.5, 1.2, 2.0]
    lo, hi = speedup_interval(_lat([(10 * d,) * 3 for d in drift]), _lat([(5 * d,) * 3 for d in drift]))
    assert lo == pytest.approx(2.0) and hi == pytest.approx(2.0)


def test_interval_spans_what_the_rounds_allow():
    # FP32 10 ms in every round; INT8 5 ms in three rounds and 4 ms in three: a resample's pooled p50 ratio is
    # 2.0 (more 5 ms rounds drawn), 2.5 (more 4 ms rounds) or 10/4.5 (as many of each); each extreme is drawn
    # about a third of the time (22 of 64 draws each), so the 95 % interval is exactly [2.0, 2.5]
    lo, hi = speedup_interval(_lat([(10.0,) * 3] * 6), _lat([(5.0,) * 3] * 3 + [(4.0,) * 3] * 3))
    assert (lo, hi) == (pytest.approx(2.0), pytest.approx(2.5))


def test_too_few_rounds_give_no_interval():
    assert speedup_interval(_lat([(10.0,), (11.0,)]), _lat([(5.0,), (6.0,)])) is None
    assert speedup_interval(Latency(1.0, 1.0, 1.0, 5), Latency(1.0, 1.0, 1.0, 5)) is None  # no rounds recorded


class _Sleeper:
    """A session whose run takes a fixed time (the interval's pairing is what is tested, not a runtime)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self, names, feed):  # noqa: ARG002
        import time

        t = time.perf_counter()
        while time.perf_counter() - t < self.seconds:
            pass


def test_interleaved_latency_records_each_rounds_runs():
    t = interleaved_latency({"slow": _Sleeper(0.004), "fast": _Sleeper(0.001)}, {}, rounds=5, iters=3, warmup=1)
    assert len(t["slow"].rounds_ms) == len(t["fast"].rounds_ms) == 5
    assert all(len(r) == 3 and min(r) > 0 for r in t["slow"].rounds_ms + t["fast"].rounds_ms)
    lo, hi = speedup_interval(t["slow"], t["fast"])
    assert 0 < lo <= hi  # no wall-clock assertion: the two are only paired
