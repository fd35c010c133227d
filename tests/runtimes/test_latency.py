"""runtimes/latency: the speed-up's interval from paired rounds (the number the export's latency line qualifies)."""

import numpy as np
import pytest

from edgevis.runtimes.latency import Latency, interleaved_latency, speedup_interval


def _lat(rounds):
    a = np.asarray(rounds, float)
    return Latency(float(np.median(a)), float(np.percentile(a, 90)), float(a.mean()), len(a), tuple(rounds))


def test_a_constant_ratio_has_no_width():
    lo, hi = speedup_interval(_lat([10.0, 12.0, 11.0]), _lat([5.0, 6.0, 5.5]))
    assert lo == pytest.approx(2.0) and hi == pytest.approx(2.0)


def test_interval_is_students_on_the_mean_log_ratio():
    # per-round ratios 2, 2.5, 2, 2.5: mean log 0.8047, sd 0.1288, t(3) = 3.182 -> exp(0.8047 -+ 0.2050), by hand
    lo, hi = speedup_interval(_lat([10.0] * 4), _lat([5.0, 4.0, 5.0, 4.0]))
    assert lo == pytest.approx(1.8217, abs=1e-3) and hi == pytest.approx(2.7448, abs=1e-3)


def test_too_few_rounds_give_no_interval():
    assert speedup_interval(_lat([10.0, 11.0]), _lat([5.0, 6.0])) is None
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


def test_interleaved_latency_records_each_rounds_median():
    t = interleaved_latency({"slow": _Sleeper(0.004), "fast": _Sleeper(0.001)}, {}, rounds=5, iters=3, warmup=1)
    assert len(t["slow"].rounds_ms) == len(t["fast"].rounds_ms) == 5
    assert all(r > 0 for r in t["slow"].rounds_ms + t["fast"].rounds_ms)
    lo, hi = speedup_interval(t["slow"], t["fast"])
    assert 0 < lo <= hi  # no wall-clock assertion: the two are only paired
