"""Jetson board power from the INA3221 monitors on the module, read from sysfs.

NVML does not work on Jetson; the rails do. Two kernel interfaces exist:

* JetPack 5/6: the mainline ``ina3221`` hwmon driver,
  ``/sys/bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmon*/`` with ``inN_label``,
  ``inN_input`` (bus voltage, mV) and ``currN_input`` (mA) for channels 1-3.
  The same directory holds channels that are not rails: ``in4-6_input`` (shunt
  voltages, uV, no label), ``in7_label`` "sum of shunt voltages" (uV, no current
  of its own) and ``curr4_input`` (sum of currents, no label). Unused channels are
  labelled "NC" (AGX Orin's second chip) or disabled and unreadable. A rail here
  is a labelled channel with both a voltage and a current; anything else is skipped.
* JetPack 4: NVIDIA's ``ina3221x`` IIO driver,
  ``/sys/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:device*/`` with ``rail_name_N``
  and ``in_powerN_input`` (mW) for channels 0-2.

The module's input rail (``VDD_IN`` on Orin Nano/NX and Xavier NX, ``POM_5V_IN``
on Nano) already includes every other rail, so it is the total when present;
boards without one (AGX Orin) are reported as the sum of their rails, and the
sensor text says so.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import sysfs
from .base import Unavailable

DRIVERS = "/sys/bus/i2c/drivers"
TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")
LAYOUTS = {"hwmon": "hwmon, JetPack 5/6", "iio": "IIO, JetPack 4"}
DEFAULT_UPDATE_S = 0.01  # assumed sensor update period where the driver does not publish one


@dataclass(frozen=True)
class Rail:
    name: str
    layout: str  # "hwmon": files = (mV, mA); "iio": files = (mW,)
    files: tuple[Path, ...]

    def watts(self) -> float:
        if self.layout == "hwmon":
            millivolts, milliamps = (sysfs.read_int(p) for p in self.files)
            return millivolts * milliamps / 1e6
        return sysfs.read_int(self.files[0]) / 1e3


def _channel(path: Path, pattern: str) -> int:
    m = re.fullmatch(pattern, path.name)
    return int(m.group(1)) if m else -1


def _not_a_rail(label: str) -> bool:
    return not label or label.upper() == "NC" or "sum of shunt" in label.lower()


def _label(path: Path, skipped: list[str]) -> str:
    try:
        return sysfs.read_text(path)
    except OSError as e:
        skipped.append(f"{path.name} ({type(e).__name__}: {e})")
        return ""


def _usable(rail: Rail, skipped: list[str]) -> bool:
    if not all(p.exists() for p in rail.files):
        return False  # e.g. a label with no current channel: not a rail
    try:
        rail.watts()
    except (OSError, ValueError) as e:  # disabled channels answer ENODATA
        skipped.append(f"{rail.name} ({type(e).__name__}: {e})")
        return False
    return True


# layout -> (driver, chip directories, channel label files, channel number in a label file's name,
#            the files a channel's power is read from)
SCHEMES = {
    "hwmon": ("ina3221", "*/hwmon/hwmon*", "in*_label", r"in(\d+)_label",
              lambda d, n: (d / f"in{n}_input", d / f"curr{n}_input")),
    "iio": ("ina3221x", "*/iio:device*", "rail_name_*", r"rail_name_(\d+)",
            lambda d, n: (d / f"in_power{n}_input",)),
}


def _rails(root: str | os.PathLike[str], layout: str, skipped: list[str]) -> tuple[list[Rail], list[Path]]:
    """The readable rails of every chip in ``layout``, and the chip directories."""
    driver, chips, labels, pattern, files = SCHEMES[layout]
    dirs = sorted(sysfs.under(root, f"{DRIVERS}/{driver}").glob(chips))
    rails = []
    for d in dirs:
        for label_file in sorted(d.glob(labels), key=lambda p: _channel(p, pattern)):
            n = _channel(label_file, pattern)
            label = _label(label_file, skipped)
            rail = Rail(label, layout, files(d, n))
            if n >= 0 and not _not_a_rail(label) and _usable(rail, skipped):
                rails.append(rail)
    return rails, dirs


def _update_s(dirs: list[Path]) -> float:
    """The slowest chip's full-conversion period (hwmon ``update_interval``, ms), else the assumed default."""
    periods = []
    for d in dirs:
        try:
            periods.append(sysfs.read_int(d / "update_interval") / 1e3)
        except (OSError, ValueError):
            pass
    return max(periods) if periods and max(periods) > 0 else DEFAULT_UPDATE_S


class JetsonMeter:
    """Watts now on the total rail (or the sum of rails) of a Jetson's INA3221 monitors."""

    name = "jetson"
    kind = "power"

    def __init__(self, rails: list[Rail], update_s: float = DEFAULT_UPDATE_S) -> None:
        if not rails:
            raise ValueError("a JetsonMeter needs at least one rail")
        total = next((r for want in TOTAL_RAILS for r in rails if r.name == want), None)
        self._used = [total] if total is not None else list(rails)
        self.rails = [r.name for r in self._used]
        self.all_rails = [r.name for r in rails]
        how = "; ".join(LAYOUTS[layout] for layout in sorted({r.layout for r in self._used}))
        if total is not None:
            self.sensor = f"INA3221 rail {total.name} ({how})"
        else:
            self.sensor = (f"INA3221 rails {' + '.join(self.rails)}, summed ({how}; "
                           f"no {' / '.join(TOTAL_RAILS)} total rail on this board)")
        self.min_window_s = 20 * update_s

    def read(self) -> float:
        return sum(r.watts() for r in self._used)

    def close(self) -> None:
        pass


def open_jetson(root: str | os.PathLike[str] = "/") -> JetsonMeter | Unavailable:
    skipped: list[str] = []
    rails, dirs = _rails(root, "hwmon", skipped)
    if not rails:  # JetPack 4's IIO driver publishes no update interval
        rails, dirs = _rails(root, "iio", skipped)[0], []
    if rails:
        return JetsonMeter(rails, _update_s(dirs))
    where = sysfs.shown(root, DRIVERS)
    if skipped:
        return Unavailable(f"INA3221 found under {where}, but no rail could be read: {', '.join(skipped)}")
    return Unavailable(f"no INA3221 rails under {where} (neither ina3221 hwmon, JetPack 5/6, nor ina3221x IIO, "
                       "JetPack 4)")


def looks_like_jetson(root: str | os.PathLike[str] = "/") -> bool:
    """An L4T release file or an INA3221 driver: enough to tell a user that NVML will not work here."""
    return (sysfs.under(root, "/etc/nv_tegra_release").exists()
            or any(sysfs.under(root, DRIVERS + d).is_dir() for d in ("/ina3221", "/ina3221x")))
