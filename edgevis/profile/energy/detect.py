"""Pick the energy sensor for this machine, or say precisely why there is none.

``auto`` tries the sensors in the order that measures the most relevant thing:
a Jetson's INA3221 rails (the whole module; NVML does not exist there), then
NVML when the runtime runs on an NVIDIA GPU (the GPU board), then RAPL (the CPU
packages). A sensor that is absent is not an error - the profile reports
"energy: unavailable (reason)" - but a misspelled choice is.
"""

from __future__ import annotations

import os

from ...core.errors import EdgevisError
from .base import Meter, Unavailable
from .jetson import looks_like_jetson, open_jetson
from .nvml import open_nvml
from .rapl import open_rapl

CHOICES = ("auto", "nvml", "jetson", "rapl", "none")


def open_meter(choice: str = "auto", *, root: str | os.PathLike[str] = "/", gpu: bool = False,
               gpu_index: int = 0) -> Meter | Unavailable:
    """A meter for ``choice`` (auto|nvml|jetson|rapl|none), or :class:`Unavailable` with the reason.

    ``root`` is the filesystem root sysfs is looked up under (tests pass a fixture tree);
    ``gpu`` says the runtime runs on an NVIDIA GPU, which is when ``auto`` tries NVML.
    """
    if choice not in CHOICES:
        raise EdgevisError(f"unknown energy meter {choice!r}; choose one of: {', '.join(CHOICES)}")
    if choice == "none":
        return Unavailable("disabled with --energy none")
    if choice == "jetson":
        return open_jetson(root)
    if choice == "rapl":
        return open_rapl(root)
    if choice == "nvml":
        return open_nvml(gpu_index, on_jetson=looks_like_jetson(root))
    reasons = []
    found = open_jetson(root)
    if not isinstance(found, Unavailable):
        return found
    reasons.append(found.reason)
    if gpu:
        found = open_nvml(gpu_index, on_jetson=looks_like_jetson(root))
        if not isinstance(found, Unavailable):
            return found
        reasons.append(found.reason)
    else:
        reasons.append("NVML not tried (the runtime does not run on an NVIDIA GPU)")
    found = open_rapl(root)
    if not isinstance(found, Unavailable):
        return found
    reasons.append(found.reason)
    return Unavailable("; ".join(reasons))
