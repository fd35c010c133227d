"""``edgevis.profile(path, ...)``: the profiler as a function returning a typed result."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .profiler import ProfileConfig, Progress


@dataclass(frozen=True)
class ProfileResult:
    """One ``edgevis.profile`` result (the README's ``profile --json`` object), with accessors for the
    figures a script wants most; ``to_dict()`` is the whole record, as ``--json`` prints it."""

    data: dict[str, Any] = field(repr=False)

    @property
    def path(self) -> str:
        return str(self.data["model"]["path"])

    @property
    def precision(self) -> str:
        return str(self.data["model"]["precision"])

    @property
    def batches(self) -> list[int]:
        return [int(r["batch"]) for r in self.data["runs"]]

    def run(self, batch: int | None = None) -> dict[str, Any]:
        """The record of one batch size (the first one measured when ``batch`` is None)."""
        runs = self.data["runs"]
        if batch is None:
            return runs[0]
        for r in runs:
            if r["batch"] == batch:
                return r
        raise KeyError(f"batch {batch} was not profiled (batches: {self.batches})")

    def latency_ms(self, stat: str = "p50", batch: int | None = None) -> float:
        return float(self.run(batch)["latency_ms"][stat])

    def throughput(self, batch: int | None = None) -> float:
        return float(self.run(batch)["throughput_ips"])

    @property
    def warnings(self) -> list[str]:
        return list(self.data["warnings"])

    def to_dict(self) -> dict[str, Any]:
        return self.data


def profile(path: str | os.PathLike[str], config: ProfileConfig | None = None, *, progress: Progress | None = None,
            **options: Any) -> ProfileResult:
    """Profile one model file (ONNX on ONNX Runtime, or a TensorRT engine): latency percentiles,
    throughput, memory, energy where a sensor exists. ``options`` are :class:`ProfileConfig` fields
    (``iters=200, batches=(1, 8)``), for a config built in place."""
    from .profiler import profile_file

    if config is not None and options:
        raise TypeError("pass either config or ProfileConfig fields, not both")
    return ProfileResult(profile_file(path, config or ProfileConfig(**options), progress=progress))
