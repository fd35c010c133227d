"""Energy per inference, measured by a sensor - or reported as unavailable, never estimated.

A background :class:`Sampler` reads a meter (NVML, Jetson INA3221 rails, RAPL)
with ``time.perf_counter()`` timestamps; :func:`energy_over` integrates the
trace over exactly the window the profiler timed and subtracts the idle power
measured just before (:func:`idle_power`), keeping both numbers.

    meter = open_meter("auto", gpu=True)
    if isinstance(meter, Unavailable):
        print(meter)                       # energy: unavailable (reason)
    else:
        idle = idle_power(meter)
        with Sampler(meter) as s:
            t0 = s.mark(); run(); t1 = s.mark()
        result = energy_over(s.trace, meter, t0, t1, inferences=n, idle_w=idle)
        meter.close()
"""

from __future__ import annotations

from .base import Meter, Unavailable, integrate
from .detect import CHOICES, open_meter
from .result import EnergyResult, energy_over, unavailable_dict
from .sampler import Sampler, idle_power

__all__ = [
    "CHOICES", "EnergyResult", "Meter", "Sampler", "Unavailable", "energy_over", "idle_power", "integrate",
    "open_meter", "unavailable_dict",
]
