"""A background thread that reads a meter on a fixed period, with timestamps.

The profiler times its window with ``time.perf_counter()``; the samples carry
the same clock, so the window can be cut out of the trace exactly. ``mark()``
takes a reading synchronously, so the window's edges are themselves samples
and a counter never has to be extrapolated. One lock serializes every read:
the sampling thread and ``mark()`` share one meter, and sysfs / NVML handles
are not promised to be safe to read from two threads at once.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from ...core.errors import first_line
from .base import Meter, integrate


class Sampler:
    """Collect ``(perf_counter time, value)`` readings of ``meter`` every ``period_s`` while entered."""

    def __init__(self, meter: Meter, period_s: float = 0.02) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s must be positive, not {period_s}")
        self.meter = meter
        self.period_s = float(period_s)
        self._trace: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: str | None = None

    def _sample(self) -> float:
        with self._lock:
            before = time.perf_counter()
            value = float(self.meter.read())
            # a read can take a while (NVML, several sysfs files): stamp it at its middle
            t = (before + time.perf_counter()) / 2.0
            self._trace.append((t, value))
        return t

    def _run(self) -> None:
        start = time.perf_counter()
        k = 1
        while not self._stop.wait(max(0.0, start + k * self.period_s - time.perf_counter())):
            try:
                self._sample()
            except Exception as e:  # a sensor that stops answering ends sampling, not the run
                self._error = f"{type(e).__name__}: {first_line(e)}"
                return
            # after a stall (suspended process, slow read) resume on the grid instead of bursting
            k = max(k + 1, int((time.perf_counter() - start) / self.period_s) + 1)

    def __enter__(self) -> "Sampler":
        if self._thread is not None:
            raise RuntimeError("this Sampler is already running")
        self._stop.clear()
        self._sample()  # the trace starts before anything the caller does
        self._thread = threading.Thread(target=self._run, name="edgevis-energy-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def mark(self) -> float:
        """Read the meter now, add the reading to the trace and return its time (``time.perf_counter()``)."""
        return self._sample()

    @property
    def trace(self) -> list[tuple[float, float]]:
        """A copy of the readings so far, sorted by time."""
        with self._lock:
            return sorted(self._trace)

    @property
    def error(self) -> str | None:
        """Why background sampling stopped early (the meter raised), or None."""
        return self._error


def idle_power(meter: Meter, seconds: float = 1.0, period_s: float = 0.02) -> float:
    """Average watts drawn over ``seconds`` of doing nothing, measured with ``meter``."""
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, not {seconds}")
    with Sampler(meter, period_s) as sampler:
        t0 = sampler.mark()
        time.sleep(seconds)
        t1 = sampler.mark()
        trace = sampler.trace
    return integrate(trace, meter.kind, t0, t1) / (t1 - t0)
