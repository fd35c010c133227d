"""What every energy sensor looks like, and the one integral they all share.

Sensors come in two kinds. Some keep a cumulative energy counter (NVML on Volta
and newer, RAPL): the energy of a window is the counter at its end minus the
counter at its start, and nothing in between matters. Others only tell the
power right now (the INA3221 rails of a Jetson, NVML on older GPUs): the energy
is the integral of a sampled power trace. Either way the window the profiler
timed rarely starts or ends on a sample, so both are interpolated linearly at
the window's edges - exact for a counter that grows linearly between its reads,
and for power that is piecewise linear between samples. Nothing is estimated
beyond that: a trace that does not reach both edges of the window is an error,
not a guess.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Protocol, Sequence

KINDS = ("energy", "power")


class Meter(Protocol):
    """A sensor opened for reading; :func:`open_meter` returns one of these or :class:`Unavailable`."""

    name: str  # "nvml" | "jetson" | "rapl"
    kind: str  # "energy": read() is a cumulative, unwrapped joule counter; "power": read() is watts now
    sensor: str  # what is read, in words: "INA3221 rail VDD_IN (hwmon, JetPack 5/6)"
    rails: list[str]  # the rails / domains that make up the total
    min_window_s: float  # shortest window worth integrating (update granularity x ~20)

    def read(self) -> float: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Unavailable:
    """No sensor to measure with, and why - returned instead of a meter, never an estimate."""

    reason: str

    def __str__(self) -> str:
        return f"energy: unavailable ({self.reason})"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown meter kind {kind!r}; expected one of {', '.join(KINDS)}")


def _value_at(ts: Sequence[float], vs: Sequence[float], t: float) -> float:
    """The trace linearly interpolated at ``t`` (which lies within [ts[0], ts[-1]])."""
    i = bisect_left(ts, t)
    if ts[i] == t:
        return vs[i]
    t_a, t_b, v_a, v_b = ts[i - 1], ts[i], vs[i - 1], vs[i]
    return v_a + (v_b - v_a) * (t - t_a) / (t_b - t_a)


def integrate(trace: Sequence[tuple[float, float]], kind: str, t0: float, t1: float) -> float:
    """Joules over ``[t0, t1]`` from ``(time, value)`` samples of a ``kind`` meter.

    ``"power"``: trapezoids over the samples inside the window, with the power
    interpolated linearly at ``t0`` and ``t1``. ``"energy"``: the counter
    interpolated at ``t1`` minus the counter interpolated at ``t0``. The trace
    must hold a sample at or before ``t0`` and one at or after ``t1``.
    """
    _check_kind(kind)
    if t1 < t0:
        raise ValueError(f"window ends before it starts ({t0} > {t1})")
    points = sorted(trace)
    if not points or points[0][0] > t0 or points[-1][0] < t1:
        have = f"[{points[0][0]}, {points[-1][0]}]" if points else "nothing"
        raise ValueError(f"the trace covers {have}, not the whole window [{t0}, {t1}]")
    ts = [p[0] for p in points]
    vs = [p[1] for p in points]
    if kind == "energy":
        return _value_at(ts, vs, t1) - _value_at(ts, vs, t0)
    inside = range(bisect_right(ts, t0), bisect_left(ts, t1))
    knots = [(t0, _value_at(ts, vs, t0))] + [points[i] for i in inside] + [(t1, _value_at(ts, vs, t1))]
    return sum((tb - ta) * (va + vb) / 2.0 for (ta, va), (tb, vb) in zip(knots, knots[1:]))
