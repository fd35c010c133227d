"""INT8 on ONNX Runtime CPU: what each change to edgevis's INT8 path buys, as INT8/FP32 ratios.

    nice -n 10 python benchmarks/int8_ort_speed.py [--models NAME ...] [--size H] [--work DIR]
        [--rounds 9] [--repeat 3] [--calib-count 16] [--threads 2] [--no-profile] [--json-out FILE]

Per model (exported FP32 once into --work, reused after), in one process:

* variants, each quantized by ``quantize_int8_file`` from the same FP32 file and calibration images:
  ``before`` (no fusions, the kept-float chain left quantized: what edgevis did before issue 18),
  ``kept-float`` (the data movement that only float ops read goes back to float), ``fused``
  (+ GELU / Add+LayerNorm fused by ``graph/fusions.py``), all three with the latency search off so
  each change is measured alone; then ``searched`` (the default config: + the latency search),
  quantized --repeat times to show whether the search gives the same placement run after run;
* every model timed in the same interleaved rounds (``interleaved_latency``): ratios over FP32 and
  over FP32 with the same fusions (the honest baseline for ``fused`` and ``searched``), and the FP32
  file again in a session of its own, whose ratio to FP32 (ideally 1.00x) is the run's noise floor;
* per-layer time by op type (ORT's profiler), FP32-fused against the searched INT8 model.

Absolute times on a shared machine mean little: the load average is printed beside the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def export(name: str, size: int | None, work: Path) -> Path:
    from edgevis.exporters.onnx import ExportConfig
    from edgevis.pipeline.exporting import export_fp32

    out = work / f"{name}-{size or 'default'}"
    path = out / f"{name}.fp32.onnx"
    if not path.exists():
        cfg = ExportConfig(input_size=(size, size)) if size else ExportConfig()
        export_fp32(name, out, config=cfg)
    return path


def quantize(fp32: Path, tag: str, config: Any, feeders: bool = True) -> tuple[Path, dict[str, Any]]:
    """Quantize a copy of ``fp32`` into its own folder (the INT8 file lands beside its source)."""
    from edgevis.quant import placement
    from edgevis.quant.int8 import quantize_int8_file

    d = fp32.parent / tag
    d.mkdir(exist_ok=True)
    src = d / fp32.name
    shutil.copy(fp32, src)
    shutil.copy(fp32.with_name(fp32.name + ".json"), src.with_name(src.name + ".json"))
    real = placement.float_feeders
    if not feeders:  # what edgevis did before: only the op itself taken out of int8
        placement.float_feeders = lambda model, kept: []  # type: ignore[assignment]
    try:
        res = quantize_int8_file(src, config)
    finally:
        placement.float_feeders = real  # type: ignore[assignment]
    return res.path, res.settings


def by_op(path: Path | bytes, feed: dict[str, np.ndarray], threads: int, runs: int = 20) -> dict[str, float]:
    """Mean ms per run for each op type, from ORT's profiler."""
    import onnxruntime as ort

    from edgevis.profile.layers import ort_per_layer

    with tempfile.TemporaryDirectory() as tmp:
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        o.enable_profiling = True
        o.profile_file_prefix = str(Path(tmp) / "p")
        o.log_severity_level = 3
        s = ort.InferenceSession(path if isinstance(path, bytes) else str(path), o, providers=["CPUExecutionProvider"])
        for _ in range(runs + 3):
            s.run(None, feed)
        events = json.loads(Path(s.end_profiling()).read_text())
    table = ort_per_layer(events, skip=3)
    return {r["op"]: r["ms"] for r in table["by_op"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["lsnet_t", "deit_tiny_patch16_224"])
    ap.add_argument("--size", type=int, default=None, help="input size (default: each model's own)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "edgevis-int8-ort-speed")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--repeat", type=int, default=3, help="times the default (searched) quantization is run")
    ap.add_argument("--calib-count", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--json-out", type=Path)
    a = ap.parse_args()

    import onnx

    from edgevis.graph.fusions import fuse_for_ort
    from edgevis.quant.int8 import Int8Config
    from edgevis.runtimes.latency import cpu_session, interleaved_latency

    a.work.mkdir(parents=True, exist_ok=True)
    base = Int8Config(calib_count=a.calib_count, threads=a.threads)
    results: dict[str, Any] = {}
    print(f"start: {load()}", flush=True)
    for name in a.models:
        fp32 = export(name, a.size, a.work)
        model = onnx.load(str(fp32))
        fused, report = fuse_for_ort(model)
        # "fp32 again" is the same file in its own session: its ratio to "fp32" is the noise floor of this run
        blobs = {"fp32": fp32.read_bytes(), "fp32 again": fp32.read_bytes(), "fp32 fused": fused.SerializeToString()}
        del model, fused
        recipes: dict[str, Any] = {}
        variants = [("before", replace(base, fuse=False, latency_search=False), False),
                    ("kept-float", replace(base, fuse=False, latency_search=False), True),
                    ("fused", replace(base, latency_search=False), True)]
        variants += [(f"searched#{k + 1}", base, True) for k in range(a.repeat)]
        for tag, cfg, feeders in variants:
            path, settings = quantize(fp32, tag.replace("#", "-"), cfg, feeders)
            blobs[tag] = path.read_bytes()
            recipes[tag] = settings
            print(f"  {name} {tag}: quantized ({load()})", flush=True)
        sess = {k: cpu_session(b, a.threads) for k, b in blobs.items()}
        inp = sess["fp32"].get_inputs()[0]
        x = np.random.default_rng(0).normal(size=inp.shape).astype(np.float32)
        lat = interleaved_latency(sess, {inp.name: x}, rounds=a.rounds, iters=3)
        del sess
        rows = {}
        for k, v in lat.items():
            rows[k] = {"p50_ms": round(v.p50_ms, 3), "vs_fp32": round(lat["fp32"].p50_ms / v.p50_ms, 3),
                       "vs_fp32_fused": round(lat["fp32 fused"].p50_ms / v.p50_ms, 3)}
        placements = {k: {"kept_float": sorted({g["reason"].split(" (")[0] + (" " + g["reason"].split("(")[1].split(" slower")[0]
                                                 if g["reason"].startswith("latency") else "")
                                                 for g in r["kept_float"]}),
                          "decision": (r.get("latency_search") or {}).get("decision"),
                          "max_spread": (r.get("latency_search") or {}).get("max_spread")}
                      for k, r in recipes.items() if k.startswith("searched")}
        same = len({json.dumps(p["kept_float"]) for p in placements.values()}) == 1
        print(f"\n{name} ({fp32.name}, fusions: {report.fused or 'none'}) - {load()}")
        print(f"  {'variant':<14}{'p50 ms':>9}{'/ FP32':>9}{'/ FP32 fused':>14}")
        for k, r in rows.items():
            print(f"  {k:<14}{r['p50_ms']:>9.2f}{r['vs_fp32']:>8.2f}x{r['vs_fp32_fused']:>13.2f}x")
        print(f"  searched placement the same in all {a.repeat} runs: {same}")
        for k, p in placements.items():
            print(f"    {k}: {p['kept_float']}; {p['decision']} (max spread {p['max_spread']})")
        prof: dict[str, Any] = {}
        if not a.no_profile:
            f_ops = by_op(blobs["fp32 fused"], {inp.name: x}, a.threads)
            q_ops = by_op(blobs[f"searched#{a.repeat}" if a.repeat else "fused"], {inp.name: x}, a.threads)
            print(f"  per-layer by op type (ms per run; FP32 fused | INT8 searched) - {load()}")
            ops = sorted(set(f_ops) | set(q_ops), key=lambda o: -(q_ops.get(o, 0) + f_ops.get(o, 0)))
            for o in ops[:14]:
                print(f"    {o:<28}{f_ops.get(o, 0):>8.3f}{q_ops.get(o, 0):>9.3f}")
            print(f"    {'total':<28}{sum(f_ops.values()):>8.3f}{sum(q_ops.values()):>9.3f}")
            prof = {"fp32_fused": f_ops, "int8_searched": q_ops}
        results[name] = {"file": str(fp32), "fusions": report.to_dict(), "latency": rows,
                         "searched_placements": placements, "same_placement": same, "per_layer_by_op": prof,
                         "load_after": os.getloadavg()}
    print(f"\nend: {load()}")
    if a.json_out:
        a.json_out.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
