"""The emitted C (``edgevis codegen``) against ONNX Runtime: one thread, batch 1, interleaved rounds.

    python benchmarks/integer_only_c.py [--models NAME ...] [--rounds 7] [--work DIR] [--json-out FILE]

Per model at 224 (random weights unless a package ships them: speed does not depend on them): export FP32,
write INT8 (``quantize_int8_file``) and integer-only (``quantize_integer_only_file``) from it, emit C and
compile it with ``-O3 -march=native`` into a shared library loaded in this process, then

* prove the C logits equal ONNX Runtime's on the integer-only file, bit for bit (photos and a random input);
* time the C model, ORT integer-only, ORT FP32 and ORT INT8, one intra-op thread each, interleaved rounds
  (``edgevis.runtimes.latency.interleaved_latency``): ratios against the C model;
* say where the C time goes: each step timed through the ``NAME_STEP_HOOK`` the emitted code calls (its fastest
  of 15 runs: robust to preemption on a loaded machine), summed
  per kernel (``conv_1x1``, ``conv_im2col``, ``conv_dw``, ``conv_generic``, ``matmul_const``, ``matmul_dynamic``,
  fused element-wise loops ``ew32`` (every op in int32: the value ranges allow it) and ``ew`` (some op in int64),
  ``reduce``, data movement ``move``).

The load average (``os.getloadavg``) is printed beside each model's numbers: on a shared machine only the
same-process ratios mean something.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

MODELS = ["lsnet_t", "deit_tiny_patch16_224", "efficientnet_lite0"]
BUILTIN = {"efficientnet_lite0": "builtin"}

PROFILER = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <time.h>
static double ev_t0, ev_acc[4096];
static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }
void ev_prof_start(void) { ev_t0 = now(); }
void ev_prof_step(int i) { double t = now(); ev_acc[i] += t - ev_t0; ev_t0 = t; }
double ev_prof_get(int i) { return ev_acc[i]; }
void ev_prof_reset(void) { for (int i = 0; i < 4096; i++) ev_acc[i] = 0; }
"""


class CModel:
    """The compiled C model behind ``run(None, feed)``, like an ORT session (float input: quantized by
    ``NAME_input.c``, then ``NAME_run``)."""

    def __init__(self, lib, so: Path) -> None:  # type: ignore[no-untyped-def]
        self.dll = ctypes.CDLL(str(so))
        self.name = lib.name
        self.q = np.zeros(int(np.prod(lib.input_shape)), np.int8)
        self.logits = np.zeros(lib.classes, np.int32)
        self.arena = np.zeros(lib.arena_bytes + 64, np.uint8)
        off = (-self.arena.ctypes.data) % 64
        self.arena_ptr = ctypes.c_void_p(self.arena.ctypes.data + off)
        self._quant = getattr(self.dll, f"{lib.name}_quantize_input")
        self._run = getattr(self.dll, f"{lib.name}_run")

    def run(self, _outputs, feed: dict[str, np.ndarray]) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
        x = np.ascontiguousarray(next(iter(feed.values())), np.float32)
        self._quant(ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(self.q.ctypes.data))
        rc = self._run(ctypes.c_void_p(self.q.ctypes.data), ctypes.c_void_p(self.logits.ctypes.data), self.arena_ptr)
        assert rc == 0
        return [self.logits.copy()]


def compile_so(lib, out: Path, profile: bool = False) -> Path:  # type: ignore[no-untyped-def]
    """The model at -O3 -march=native as a shared library; the weights (data only) compiled once, reused."""
    import hashlib

    def fresh(built: Path, src: Path) -> bool:  # built from this very source (a marker holds its sha256)
        mark = built.with_name(built.name + ".sha")
        sha = hashlib.sha256(src.read_bytes()).hexdigest()
        return built.is_file() and mark.is_file() and mark.read_text() == sha

    def mark(built: Path, src: Path) -> None:  # only after a build that succeeded
        built.with_name(built.name + ".sha").write_text(hashlib.sha256(src.read_bytes()).hexdigest())

    so = out / (f"{lib.name}{'_prof' if profile else ''}.so")
    wobj = out / f"{lib.name}_weights.o"
    if not fresh(wobj, lib.files["weights"]):
        subprocess.run(["gcc", "-O0", "-fPIC", "-c", str(lib.files["weights"]), "-o", str(wobj)], check=True)
        mark(wobj, lib.files["weights"])
    if fresh(so, lib.files["model"]):
        return so
    srcs = [str(lib.files[k]) for k in ("model", "input")]
    extra: list[str] = []
    if profile:
        p = out / "prof.c"
        p.write_text(PROFILER)
        srcs.append(str(p))
        p.with_name("prof.h").write_text("void ev_prof_step(int i);\n")
        extra = [f"-D{lib.name.upper()}_STEP_HOOK(i,k)=ev_prof_step(i)", "-include", str(p.with_name("prof.h"))]
    cmd = ["gcc", "-O3", "-march=native", "-ffp-contract=off", "-std=c99", "-shared", "-fPIC", *extra, "-o", str(so),
           *srcs, str(wobj)]
    subprocess.run(cmd, check=True)
    mark(so, lib.files["model"])
    return so


def bench_model(name: str, work: Path, rounds: int) -> dict[str, Any]:
    from edgevis.codegen import emit_c
    from edgevis.data.preprocess import preprocess
    from edgevis.data.samples import builtin_photos
    from edgevis.exporters.onnx import ExportConfig, export_onnx
    from edgevis.quant.int8 import Int8Config, quantize_int8_file
    from edgevis.quant.integer_only import IntegerOnlyConfig, quantize_integer_only_file
    from edgevis.runtimes.latency import cpu_session, interleaved_latency
    from edgevis.runtimes.predict import recorded_preprocess

    out = work / name
    t = time.perf_counter()
    fp32 = out / f"{name}.fp32.onnx"
    if not fp32.is_file():  # a --work folder from an earlier run is reused (quantizing at 224 takes minutes)
        fp32 = export_onnx(name, out, weights=BUILTIN.get(name), config=ExportConfig()).artifact.path
    io_path, i8_path = out / f"{name}.integer_only.onnx", out / f"{name}.int8.onnx"
    if not io_path.with_name(io_path.name + ".json").is_file():
        io_path = quantize_integer_only_file(fp32, IntegerOnlyConfig(calib_count=16, threads=1)).path
    if not i8_path.with_name(i8_path.name + ".json").is_file():
        i8_path = quantize_int8_file(fp32, Int8Config(calib_count=16, threads=1)).path
    lib = emit_c(io_path, out / "c")
    so = compile_so(lib, out / "c")
    prep_s = time.perf_counter() - t
    c = CModel(lib, so)
    spec, _ = recorded_preprocess(io_path)
    xs = [preprocess(img, spec)[None] for _, img in builtin_photos()[:2]]
    xs.append(np.random.default_rng(0).standard_normal(xs[0].shape).astype(np.float32))
    sess_io = cpu_session(str(io_path), 1)
    # the bit-exact proof at 224: ORT's int32 logits (before DequantizeLinear) against the C logits
    ort_int = _int_logits_session(io_path)
    exact = all(np.array_equal(c.run(None, {"x": x})[0], ort_int.run(None, {ort_int.get_inputs()[0].name: x})[1]
                               .reshape(-1)) for x in xs)
    sessions = {"c": c, "ort_integer_only": sess_io, "ort_fp32": cpu_session(str(fp32), 1),
                "ort_int8": cpu_session(str(i8_path), 1)}
    feed = {sess_io.get_inputs()[0].name: xs[0]}
    lat = interleaved_latency(sessions, feed, rounds=rounds, iters=3, warmup=2)
    res: dict[str, Any] = {"model": name, "prepare_seconds": prep_s, "bit_exact_vs_ort_integer_only": exact,
                           "arena_bytes": lib.arena_bytes, "intermediate_bytes": lib.intermediate_bytes,
                           "weight_bytes": lib.weight_bytes, "steps": lib.steps,
                           "p50_ms": {k: v.p50_ms for k, v in lat.items()},
                           "c_speedup_over": {k: lat[k].p50_ms / lat["c"].p50_ms for k in lat if k != "c"},
                           }
    res["load_average"] = [round(v, 2) for v in os.getloadavg()]
    print(f"{name}: C {res['p50_ms']['c']:.2f} ms, speedups {res['c_speedup_over']} (load {res['load_average']})",
          flush=True)
    res["time_by_step_kind"] = _profile(lib, out / "c", xs[0])
    return res


def _int_logits_session(path: Path):  # type: ignore[no-untyped-def]
    import onnx
    from onnx import TensorProto, helper

    from edgevis.runtimes.latency import cpu_session

    m = onnx.load(str(path))
    l32 = next(n for n in m.graph.node if n.op_type == "DequantizeLinear").input[0]
    m.graph.output.append(helper.make_tensor_value_info(l32, TensorProto.INT32, None))
    return cpu_session(m.SerializeToString(), 1)


def _profile(lib, out: Path, x: np.ndarray, iters: int = 15) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Each step's fastest time over ``iters`` runs, summed per kind: on a loaded machine a step the scheduler
    preempted in one run is timed in another."""
    import re

    so = compile_so(lib, out, profile=True)
    c = CModel(lib, so)
    start, get = c.dll.ev_prof_start, c.dll.ev_prof_get
    get.restype = ctypes.c_double
    c.run(None, {"x": x})
    kinds = re.findall(r'_STEP_HOOK\((\d+), "(\w+)"\)', lib.files["model"].read_text())
    best: dict[int, float] = {}
    for _ in range(iters):
        c.dll.ev_prof_reset()
        start()
        c.run(None, {"x": x})
        for i, _k in kinds:
            best[int(i)] = min(best.get(int(i), float("inf")), get(int(i)))
    by: dict[str, float] = {}
    for i, k in kinds:
        by[k] = by.get(k, 0.0) + best[int(i)] * 1e3
    total = sum(by.values())
    return {k: round(v / total, 3) for k, v in sorted(by.items(), key=lambda kv: -kv[1])} | {"total_ms": round(total, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--json-out", type=Path, default=None)
    a = ap.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="edgevis_c_bench_"))
    results = []
    for m in a.models:
        r = bench_model(m, work, a.rounds)
        results.append(r)
        p = r["p50_ms"]
        print(f"{m}: C {p['c']:.2f} ms | ORT integer-only {p['ort_integer_only']:.2f} ms "
              f"({r['c_speedup_over']['ort_integer_only']:.1f}x) | ORT FP32 {p['ort_fp32']:.2f} ms "
              f"({r['c_speedup_over']['ort_fp32']:.2f}x) | ORT INT8 {p['ort_int8']:.2f} ms "
              f"({r['c_speedup_over']['ort_int8']:.2f}x) | bit-exact {r['bit_exact_vs_ort_integer_only']} | "
              f"arena {r['arena_bytes'] / 1e6:.2f} MB of {r['intermediate_bytes'] / 1e6:.1f} MB | load "
              f"{r['load_average']}", flush=True)
        print(f"  where the C time goes: {r['time_by_step_kind']}", flush=True)
    if a.json_out:
        a.json_out.write_text(json.dumps(results, indent=2))
    sys.exit(0 if all(r["bit_exact_vs_ort_integer_only"] for r in results) else 1)


if __name__ == "__main__":
    main()
