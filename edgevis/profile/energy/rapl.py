"""x86 CPU package energy from RAPL, through the powercap sysfs interface.

``/sys/class/powercap/intel-rapl:N`` is one top-level zone per CPU package
(``name`` "package-N"; AMD Zen registers the same way), sometimes beside a
"psys" zone (the whole platform, packages included). Subzones
``intel-rapl:N:M`` ("core", "uncore", "dram") are parts of their package, and
``intel-rapl-mmio:N`` is the same package read through MMIO: adding any of them
to the packages would count energy twice, so the total is the packages alone
(psys only where there is no package zone).

``energy_uj`` is a cumulative counter that wraps to zero after
``max_energy_range_uj``: the meter keeps each zone's last raw value and adds the
range whenever the value goes down, which is exact as long as the meter is read
at least once per wrap (minutes at full load; the sampler reads it every few ms).
Since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694,
"PLATYPUS"); that is reported, with the fix, instead of failing later.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from . import sysfs
from .base import Unavailable

POWERCAP = "/sys/class/powercap"
UPDATE_S = 0.001  # RAPL energy status registers update about every millisecond
ROOT_ONLY = ("{path} is readable by root only (Linux 5.10+ restricts RAPL energy_uj, CVE-2020-8694 'PLATYPUS'): "
             "run as root, or grant read access with `sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj` "
             "(until reboot; a udev rule or sysfs.conf entry makes it permanent)")


class Zone:
    """One powercap zone's counter, unwrapped."""

    def __init__(self, path: Path, name: str, max_range_uj: int) -> None:
        self.path, self.name, self.max_range_uj = path, name, max_range_uj
        self._last_raw: int | None = None
        self._wraps_uj = 0

    def read_uj(self) -> int:
        raw = sysfs.read_int(self.path / "energy_uj")
        if self._last_raw is not None and raw < self._last_raw:
            self._wraps_uj += self.max_range_uj
        self._last_raw = raw
        return raw + self._wraps_uj


class RaplMeter:
    """Joules used by the CPU packages since the meter was opened (not thread-safe: the Sampler serializes reads)."""

    name = "rapl"
    kind = "energy"
    min_window_s = 20 * UPDATE_S

    def __init__(self, zones: list[Zone], all_rails: list[str] | None = None) -> None:
        if not zones:
            raise ValueError("a RaplMeter needs at least one zone")
        self._zones = zones
        self.rails = [z.name for z in zones]
        self.all_rails = list(all_rails) if all_rails is not None else list(self.rails)
        self.sensor = f"RAPL {', '.join(self.rails)}"
        self._base_uj = sum(z.read_uj() for z in zones)

    def read(self) -> float:
        return (sum(z.read_uj() for z in self._zones) - self._base_uj) / 1e6

    def close(self) -> None:
        pass


def _index(path: Path) -> tuple[int, ...]:
    return tuple(int(x) for x in path.name.split(":")[1:])


def _zone_dirs(root: str | os.PathLike[str]) -> tuple[list[Path], list[Path]]:
    """(top-level zones, subzones) of the intel-rapl control type, in index order."""
    base = sysfs.under(root, POWERCAP)
    top = sorted((p for p in base.glob("intel-rapl:*") if re.fullmatch(r"intel-rapl:\d+", p.name)), key=_index)
    sub = sorted((p for p in base.glob("intel-rapl:*") if re.fullmatch(r"intel-rapl:\d+(:\d+)+", p.name)),
                 key=_index)
    return top, sub


def _name(path: Path) -> str:
    try:
        return sysfs.read_text(path / "name") or path.name
    except OSError:
        return path.name


def open_rapl(root: str | os.PathLike[str] = "/") -> RaplMeter | Unavailable:
    top, sub = _zone_dirs(root)
    if not top:
        return Unavailable(f"no RAPL zones under {sysfs.shown(root, POWERCAP)}")
    named = [(p, _name(p)) for p in top]
    packages = [(p, n) for p, n in named if n.startswith("package")]
    psys = [(p, n) for p, n in named if n == "psys"]
    chosen = packages or psys or named
    all_rails = [n for _, n in named] + [f"{_name(p)} ({p.name})" for p in sub]
    zones = []
    for path, name in chosen:
        shown = sysfs.shown(root, f"{POWERCAP}/{path.name}")
        try:
            max_range = sysfs.read_int(path / "max_energy_range_uj")
            zone = Zone(path, name, max_range)
            zone.read_uj()
        except PermissionError as e:
            return Unavailable(ROOT_ONLY.format(path=e.filename or f"{shown}/energy_uj"))
        except (OSError, ValueError) as e:
            return Unavailable(f"cannot read RAPL zone {shown} ({name}): {e}")
        zones.append(zone)
    return RaplMeter(zones, all_rails)
