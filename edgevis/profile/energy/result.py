"""Energy of a timed window, gross and net of the idle draw, per inference.

A board draws power doing nothing; a model's energy per inference is what it
adds to that. The idle power is measured just before the window and kept
beside the gross integral, so a reader can see both numbers and how the net
one was made. When the load cannot be told apart from idle (net <= 0) there is
no per-inference figure at all, only a warning saying so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .base import Meter, integrate

INDISTINGUISHABLE = "the load is indistinguishable from idle (net energy <= 0): no per-inference figure"


@dataclass
class EnergyResult:
    meter: str
    sensor: str
    rails: list[str]
    window_s: float
    inferences: int  # images, i.e. batch x runs
    energy_j: float  # integral over the window (gross)
    idle_w: float  # idle power measured just before
    samples: int
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValueError(f"window_s must be positive, not {self.window_s}")
        if self.inferences <= 0:
            raise ValueError(f"inferences must be positive, not {self.inferences}")
        self.warnings = list(self.warnings)
        if self.net_energy_j <= 0 and INDISTINGUISHABLE not in self.warnings:
            self.warnings.append(INDISTINGUISHABLE)

    @property
    def avg_power_w(self) -> float:
        return self.energy_j / self.window_s

    @property
    def net_energy_j(self) -> float:
        return self.energy_j - self.idle_w * self.window_s

    @property
    def gross_j_per_inference(self) -> float:
        return self.energy_j / self.inferences

    @property
    def j_per_inference(self) -> float | None:
        """Net of idle; None when the net energy is not positive."""
        net = self.net_energy_j
        return net / self.inferences if net > 0 else None

    @property
    def inferences_per_j(self) -> float | None:
        jpi = self.j_per_inference
        return 1.0 / jpi if jpi else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "available": True, "meter": self.meter, "sensor": self.sensor, "rails": list(self.rails),
            "window_s": self.window_s, "inferences": self.inferences, "energy_j": self.energy_j,
            "idle_w": self.idle_w, "samples": self.samples, "warnings": list(self.warnings),
            "avg_power_w": self.avg_power_w, "net_energy_j": self.net_energy_j,
            "j_per_inference": self.j_per_inference, "gross_j_per_inference": self.gross_j_per_inference,
            "inferences_per_j": self.inferences_per_j,
        }


def energy_over(trace: Sequence[tuple[float, float]], meter: Meter, t0: float, t1: float, *,
                inferences: int, idle_w: float) -> EnergyResult:
    """Integrate ``trace`` over the timed window ``[t0, t1]`` into an :class:`EnergyResult`."""
    energy = integrate(trace, meter.kind, t0, t1)
    window = t1 - t0
    inside = sum(1 for t, _ in trace if t0 <= t <= t1)
    warnings: list[str] = []
    if window < meter.min_window_s:
        warnings.append(f"the window ({window:.3g} s) is shorter than {meter.min_window_s:.3g} s, the shortest "
                        f"{meter.sensor} resolves well: run more iterations")
    if meter.kind == "power" and inside < 3:
        warnings.append(f"only {inside} power sample(s) fell inside the window: the integral rests on "
                        "interpolation between few readings; run more iterations or sample faster")
    return EnergyResult(meter=meter.name, sensor=meter.sensor, rails=list(meter.rails), window_s=window,
                        inferences=int(inferences), energy_j=energy, idle_w=float(idle_w), samples=inside,
                        warnings=warnings)


def unavailable_dict(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}
