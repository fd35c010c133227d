"""NVIDIA desktop / datacenter GPU energy through NVML (the ``pynvml`` module of nvidia-ml-py).

Volta and newer keep a total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``,
millijoules since the driver loaded): the window's energy is a difference of two
reads, whatever the power did in between. Where the counter is not supported,
``nvmlDeviceGetPowerUsage`` (milliwatts) is sampled and integrated instead - and
on Ampere and newer (except GA100) that reading is itself a 1-second average, so
only windows much longer than a second mean anything; the sensor text and
``min_window_s`` say so. NVML is imported only when asked for, so edgevis runs
without it, and NVML does not exist on Jetson (use the INA3221 rails there).

NVML numbers GPUs in PCI bus order, which is CUDA's order only with
``CUDA_DEVICE_ORDER=PCI_BUS_ID``.
"""

from __future__ import annotations

from typing import Any

from ...core.errors import first_line
from .base import Unavailable

ENERGY_UPDATE_S = 0.05  # assumed counter update period (observed ~10 ms on some boards; slower on others)
POWER_AVERAGE_S = 1.0  # nvmlDeviceGetPowerUsage averages over 1 s on Ampere and newer
JETSON_NOTE = "; NVML does not work on Jetson: use --energy jetson (the INA3221 rails)"
INSTALL = "pip install nvidia-ml-py, or the edgevis[tensorrt] extra"


def as_text(value: Any) -> str:
    """NVML strings: bytes in older nvidia-ml-py releases, str in newer ones."""
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class NvmlMeter:
    """One GPU's energy counter (kind "energy") or power reading (kind "power")."""

    name = "nvml"

    def __init__(self, nvml: Any, handle: Any, index: int, gpu_name: str, kind: str, why_power: str = "") -> None:
        self._nvml, self._handle, self._closed = nvml, handle, False
        self.kind = kind
        self.rails = [f"GPU {index}"]
        if kind == "energy":
            self.sensor = f"NVML total-energy counter, GPU {index} ({gpu_name})"
            self.min_window_s = 20 * ENERGY_UPDATE_S
            self._base_mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
        else:
            self.sensor = (f"NVML power readings, GPU {index} ({gpu_name}); no total-energy counter ({why_power}); "
                           f"a {POWER_AVERAGE_S:g}-s average on Ampere and newer")
            self.min_window_s = 20 * POWER_AVERAGE_S

    def read(self) -> float:
        if self.kind == "energy":
            return (int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)) - self._base_mj) / 1e3
        return int(self._nvml.nvmlDeviceGetPowerUsage(self._handle)) / 1e3

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _shutdown(self._nvml)


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except nvml.NVMLError:
        pass


def open_nvml(index: int = 0, *, on_jetson: bool = False) -> NvmlMeter | Unavailable:
    note = JETSON_NOTE if on_jetson else ""
    try:
        import pynvml as nvml
    except ImportError:
        return Unavailable(f"nvidia-ml-py is not installed ({INSTALL}){note}")
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as e:
        return Unavailable(f"NVML could not start: {first_line(e)}{note}")
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        gpu_name = as_text(nvml.nvmlDeviceGetName(handle))
    except nvml.NVMLError as e:
        _shutdown(nvml)
        return Unavailable(f"NVML has no GPU {index}: {first_line(e)}")
    try:
        return NvmlMeter(nvml, handle, index, gpu_name, "energy")
    except nvml.NVMLError as e:  # NotSupported before Volta; NoPermission in some VMs
        counter_error = first_line(e)
    try:
        nvml.nvmlDeviceGetPowerUsage(handle)
    except nvml.NVMLError as e:
        _shutdown(nvml)
        return Unavailable(f"NVML reads neither energy ({counter_error}) nor power ({first_line(e)}) "
                           f"on GPU {index} ({gpu_name})")
    return NvmlMeter(nvml, handle, index, gpu_name, "power", why_power=counter_error)
