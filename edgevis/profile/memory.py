"""Peak resident memory of this process over a span (model load and the timed run).

Linux keeps the high-water mark of a process's resident set (``VmHWM``) and lets the
process reset it to the current RSS by writing ``5`` to ``/proc/self/clear_refs``
(Linux >= 4.0). Resetting it just before the model is loaded makes the peak belong to
this span, not to whatever the process did before (importing torch, an earlier
model). Where the reset is not possible the figure is the peak since the process
started, and ``method`` says so: no number is passed off as something it is not.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROC_STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(key: str) -> int | None:
    try:
        for line in PROC_STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return kb / 1024 if kb is not None else None


def _lifetime_peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


@dataclass
class PeakRss:
    """``with PeakRss() as m: ...`` then ``m.to_dict()``: RSS before, peak during, added."""

    rss_before_mb: float | None = None
    peak_rss_mb: float | None = None
    method: str = ""
    gpu_mb: float | None = None
    gpu_method: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __enter__(self) -> "PeakRss":
        self.rss_before_mb = rss_mb()
        try:
            CLEAR_REFS.write_text("5")
            self._reset = _status_kb("VmHWM") is not None
        except OSError:
            self._reset = False
        self.method = ("VmHWM, reset with /proc/self/clear_refs before loading" if self._reset
                       else "ru_maxrss: peak since the process started (the high-water mark could not be reset)")
        return self

    def __exit__(self, *exc: object) -> None:
        kb = _status_kb("VmHWM") if self._reset else None
        self.peak_rss_mb = kb / 1024 if kb is not None else _lifetime_peak_mb()

    def to_dict(self) -> dict[str, Any]:
        added = (self.peak_rss_mb - self.rss_before_mb
                 if self.peak_rss_mb is not None and self.rss_before_mb is not None else None)
        return {"peak_rss_mb": self.peak_rss_mb, "rss_before_mb": self.rss_before_mb, "added_mb": added,
                "method": self.method, "gpu_mb": self.gpu_mb, "gpu_method": self.gpu_method, **self.extra}
