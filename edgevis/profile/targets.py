"""What the profiler times: one model on one runtime, with its inputs staged beforehand.

A target separates the work a deployed application repeats per frame from the work it
does once. ``run()`` is one inference on inputs already where the runtime wants them
(host memory for ORT's CPU provider, device memory bound through IO binding for CUDA /
TensorRT, staged device buffers for a TensorRT engine), and waits for it to finish.
``run_io()`` adds what ``--include-io`` asks for: a fresh input made on the host,
copied in, and the outputs copied back.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..core.errors import EdgevisError

ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
             "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int32)": np.int32,
             "tensor(int64)": np.int64, "tensor(bool)": np.bool_}


def resolve_shape(name: str, shape: Sequence[Any], batch: int, limits: tuple[int, int] | None = None) -> list[int]:
    """The input shape for ``batch``: a symbolic first dimension takes it, a fixed one must equal it."""
    dims = list(shape)
    if not dims:
        return []
    first = dims[0]
    if isinstance(first, int) and first > 0:
        if first != batch:
            raise EdgevisError(f"input {name} has a fixed batch of {first}; batch {batch} needs a model exported "
                               f"with --dynamic-batch (or --batch {batch})")
    elif limits is not None and not limits[0] <= batch <= limits[1]:
        raise EdgevisError(f"batch {batch} is outside the engine's optimization profile for {name} "
                           f"({limits[0]}..{limits[1]}); rebuild with --min-shape/--max-shape")
    rest = dims[1:]
    for d in rest:
        if not (isinstance(d, int) and d > 0):
            raise EdgevisError(f"input {name} has a symbolic dimension {d!r} besides the batch; profiling needs "
                               "fixed sizes (export with --input-size)")
    from ..core.onnxfile import MAX_FEED_ELEMENTS

    size = batch
    for d in rest:
        size *= d
    if size > MAX_FEED_ELEMENTS:  # refused before numpy is asked for the array (a 2^31-element input: 48 GiB)
        raise EdgevisError(f"input {name} has shape {[batch, *rest]}: {size} elements, too many for a test input "
                           f"(at most {MAX_FEED_ELEMENTS})")
    return [batch, *rest]


class _Staged:
    """What both targets share: the input shapes and types of the prepared batch, and fresh inputs for them."""

    _shapes: dict[str, list[int]]
    _types: dict[str, Any]
    _rng: np.random.Generator

    def _new_feed(self) -> dict[str, np.ndarray]:
        from ..core.onnxfile import random_array

        return {n: random_array(s, self._types[n], self._rng) for n, s in self._shapes.items()}


class OrtTarget(_Staged):
    runtime = "ort"

    def __init__(self, path: Path, providers: Sequence[str], threads: int | None = None) -> None:
        from ..runtimes.ort import session_from_onnx

        self.path, self.threads = path, threads
        self.session = session_from_onnx(path, providers=list(providers), threads=threads)
        self.providers = list(self.session.get_providers())
        self.device = "cpu" if self.providers[0] == "CPUExecutionProvider" else "cuda"
        self._binding = None

    def input_shapes(self, batch: int) -> dict[str, list[int]]:
        return {i.name: resolve_shape(i.name, i.shape, batch) for i in self.session.get_inputs()}

    def prepare(self, batch: int, seed: int = 0) -> dict[str, list[int]]:
        self._rng = np.random.default_rng(seed)
        self._shapes = shapes = self.input_shapes(batch)
        self._types = {i.name: ORT_TYPES.get(i.type, np.float32) for i in self.session.get_inputs()}
        self.feed = self._new_feed()
        if self.device != "cpu":
            # inputs live on the GPU and outputs stay there: the timed run holds no host copies
            import onnxruntime as ort

            b = self.session.io_binding()
            self._device_inputs = {n: ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0) for n, x in self.feed.items()}
            for n, v in self._device_inputs.items():
                b.bind_ortvalue_input(n, v)
            for o in self.session.get_outputs():
                b.bind_output(o.name, "cuda", 0)
            self._binding = b
        from ..runtimes.ort import ort_errors

        with ort_errors(self.path, "run"):  # a graph ORT loads but cannot run fails here, in one line, untimed
            self.run()
        return shapes

    def run(self) -> None:
        if self._binding is not None:
            self.session.run_with_iobinding(self._binding)
            self._binding.synchronize_outputs()
        else:
            self.session.run(None, self.feed)

    def run_io(self) -> None:
        from ..runtimes.ort import run_session

        run_session(self.session, self._new_feed(), source=self.path)

    def gpu_memory(self) -> tuple[float | None, str]:
        return None, "not reported by ONNX Runtime"

    def per_layer(self, runs: int, warmup: int) -> dict[str, Any]:
        from ..runtimes.ort import session_from_onnx
        from .layers import ort_per_layer

        with tempfile.TemporaryDirectory(prefix="edgevis-profile-") as work:
            sess = session_from_onnx(self.path, providers=self.providers, threads=self.threads,
                                     profile_prefix=os.path.join(work, "ort"))
            from ..runtimes.ort import run_session

            for _ in range(warmup + runs):
                run_session(sess, self.feed, source=self.path)
            with open(sess.end_profiling()) as f:
                events = json.load(f)
            del sess
        return ort_per_layer(events, skip=warmup)

    def close(self) -> None:
        self._binding = None
        self.session = None


class TrtTarget(_Staged):
    runtime = "trt"

    def __init__(self, path: Path) -> None:
        from ..runtimes.trt import TrtRunner

        self.path = path
        self.runner = TrtRunner(path).open()
        self.providers = ["TensorRT"]
        self.device = "cuda"
        self.warnings = list(self.runner.warnings)

    def input_shapes(self, batch: int) -> dict[str, list[int]]:
        e = self.runner.engine
        out = {}
        for n in self.runner.inputs:
            shape = list(e.get_tensor_shape(n))
            limits = None
            if shape and shape[0] < 0:
                mn, _, mx = e.get_tensor_profile_shape(n, 0)
                limits = (int(mn[0]), int(mx[0]))
            out[n] = resolve_shape(n, [d if d >= 0 else None for d in shape], batch, limits)
        return out

    def prepare(self, batch: int, seed: int = 0) -> dict[str, list[int]]:
        from ..runtimes.trt import import_tensorrt

        trt = import_tensorrt()
        self._rng = np.random.default_rng(seed)
        self._shapes = self.input_shapes(batch)
        e = self.runner.engine
        self._types = {n: trt.nptype(e.get_tensor_dtype(n)) for n in self.runner.inputs}
        self.runner.stage(self._new_feed())
        return self._shapes

    def run(self) -> None:
        self.runner.execute()

    def run_io(self) -> None:
        self.runner.infer_all(self._new_feed())

    def gpu_memory(self) -> tuple[float | None, str]:
        return self.runner.device_memory_mb(), "TensorRT execution-context memory + I/O buffers (weights excluded)"

    def per_layer(self, runs: int, warmup: int) -> dict[str, Any]:
        from ..runtimes.trt import import_tensorrt
        from .layers import per_layer_table, trt_layer_profiler, trt_layer_types

        trt = import_tensorrt()
        # the profiler stays attached to the context: the profiler runs this pass after all timed ones
        ctx = self.runner.context
        profiler = trt_layer_profiler(trt)
        ctx.profiler = profiler
        for _ in range(warmup + runs):
            self.runner.execute()
        types = trt_layer_types(self.runner.engine, trt)
        return per_layer_table(profiler.times, types, skip=warmup, source="TensorRT IProfiler")

    def close(self) -> None:
        self.runner.close()


class OvTarget(_Staged):
    """OpenVINO on the CPU: an ONNX file compiled here, or a compiled blob from ``build --runtime openvino``.
    ``precision`` is what the compiled model says it runs (f32, bf16, int8), read back, never assumed."""

    runtime = "openvino"

    def __init__(self, path: Path, threads: int | None = None, precision_hint: str = "auto") -> None:
        from ..runtimes.openvino import OvConfig, OvRunner

        self.path = path
        self.runner = OvRunner(path, OvConfig(precision=precision_hint, threads=threads)).open()
        self.precision = self.runner.precision
        self.providers = [f"OpenVINO CPU ({self.precision['label']})"]
        self.device = "cpu"

    def input_shapes(self, batch: int) -> dict[str, list[int]]:
        return {n: resolve_shape(n, s, batch) for n, s in self.runner.input_shapes().items()}

    def prepare(self, batch: int, seed: int = 0) -> dict[str, list[int]]:
        self._rng = np.random.default_rng(seed)
        self._shapes = self.input_shapes(batch)
        self._types = self.runner.input_types()
        self.feed = self._new_feed()
        self.run()  # a model OpenVINO compiles but cannot run fails here, in one line, untimed
        return self._shapes

    def run(self) -> None:
        self.runner.run(None, self.feed)

    def run_io(self) -> None:
        self.runner.run(None, self._new_feed())

    def gpu_memory(self) -> tuple[float | None, str]:
        return None, "CPU only"

    def per_layer(self, runs: int, warmup: int) -> dict[str, Any]:
        import time

        from ..runtimes.openvino import OvRunner
        from .layers import ov_per_layer

        # a compiled model of its own with PERF_COUNT on, same precision hint and threads: counting slows runs
        # down, and the timed model must not carry it
        counted = OvRunner(self.path, replace(self.runner.config, perf_count=True)).open()
        try:
            infos, run_ms = [], []
            for _ in range(warmup + runs):
                t0 = time.perf_counter()
                counted.run(None, self.feed)
                run_ms.append((time.perf_counter() - t0) * 1e3)
                infos.append(counted.request.get_profiling_info())
        finally:
            counted.close()
        return ov_per_layer(infos, run_ms, skip=warmup)

    def close(self) -> None:
        self.runner.close()


def open_target(path: Path, runtime: str, *, providers: Sequence[str], threads: int | None,  # type: ignore[no-untyped-def]
                precision_hint: str = "auto"):
    if runtime == "openvino":
        return OvTarget(path, threads, precision_hint)
    return TrtTarget(path) if runtime == "trt" else OrtTarget(path, providers, threads)
