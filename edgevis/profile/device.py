"""What a measurement ran on: CPU, GPU and driver, board, OS, library versions.

Every profile carries this so two numbers are never compared without knowing they
came from different machines or runtime versions. Everything is read from the
system (``/proc/cpuinfo``, the device tree, NVML) and left ``None`` when unknown,
never guessed.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

VERSIONED = ("edgevis", "onnxruntime", "onnxruntime-gpu", "onnx", "numpy", "tensorrt", "cuda-python", "nvidia-ml-py",
             "openvino")


def cpu_info(root: str | os.PathLike[str] = "/") -> dict[str, Any]:
    model = None
    cores: set[tuple[str, str]] = set()
    phys = core = None
    try:
        text = (Path(root) / "proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = (s.strip() for s in line.partition(":"))
        if key in ("model name", "Model name", "cpu model") and model is None and value:
            model = value
        elif key == "physical id":
            phys = value
        elif key == "core id":
            core = value
        elif not line.strip():
            if core is not None:
                cores.add((phys or "0", core))
            phys = core = None
    if core is not None:
        cores.add((phys or "0", core))
    if model is None:  # ARM kernels often print no model name; platform.processor() may still know
        model = platform.processor() or platform.machine() or None
    return {"model": model, "arch": platform.machine(), "logical_cores": os.cpu_count(),
            "physical_cores": len(cores) or None}


def board_info(root: str | os.PathLike[str] = "/") -> dict[str, str | None]:
    """Jetson (or other device-tree board) model and L4T release, where the files exist."""
    r = Path(root)
    info: dict[str, str | None] = {"board": None, "l4t": None}
    try:
        info["board"] = (r / "proc/device-tree/model").read_bytes().rstrip(b"\0").decode(errors="replace").strip()
    except OSError:
        pass
    try:
        info["l4t"] = (r / "etc/nv_tegra_release").read_text(errors="replace").splitlines()[0].lstrip("# ").strip()
    except (OSError, IndexError):
        pass
    return info


def gpu_info() -> list[dict[str, Any]] | None:
    """NVIDIA GPUs through NVML (nvidia-ml-py), or None where NVML is absent (CPU hosts, Jetson)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound / DriverNotLoaded: no NVIDIA driver here
        return None
    from .energy.nvml import as_text

    try:
        driver = as_text(pynvml.nvmlSystemGetDriverVersion())
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            gpus.append({"index": i, "name": as_text(pynvml.nvmlDeviceGetName(h)), "driver": driver,
                         "memory_total_mb": pynvml.nvmlDeviceGetMemoryInfo(h).total / 2**20})
        return gpus
    except Exception:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def versions() -> dict[str, str]:
    out = {}
    for dist in VERSIONED:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def device_info(*, gpu: bool = True) -> dict[str, Any]:
    return {"cpu": cpu_info(), "gpu": gpu_info() if gpu else None, **board_info(),
            "os": platform.platform(), "python": platform.python_version(), "versions": versions()}
