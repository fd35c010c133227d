"""Integer-only models on CPU: latency next to FP32 and standard INT8, fidelity, exactness, kernel error.

    python benchmarks/integer_only.py [--models NAME ...] [--threads 2] [--rounds 9] [--work DIR]
                                      [--no-trained] [--quick] [--json-out FILE]

Per model: export FP32 at 224 (builtin ImageNet weights where a package ships them, else
random), write edgevis INT8 (``quantize_int8_file``) and integer-only
(``quantize_integer_only_file``) from the same file, time the three interleaved on ONNX
Runtime CPU, and record the integer-only checks (float-free proof, bit-exact inputs).
Fidelity needs trained weights: EfficientNet-Lite0 on the bundled photos; LSNet-T and
DeiT-Tiny trained here on scikit-learn's digits at 64 px (checkpoints cached in --work),
integer-only and INT8 both measured on the 359 test digits. Last, each integer kernel's
error against the float function next to I-ViT's approximations (its published
equations: log2(e) as 1 + 1/2 - 1/16, ``2**f ~ 1 + f/2``, GELU as ``x sigmoid(1.702 x)``,
Newton square root from 2**16 for 10 steps) evaluated in float64, i.e. before any of its
own rounding: a lower bound on its error.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

DEFAULT_MODELS = ["lsnet_t", "deit_tiny_patch16_224", "efficientnet_lite0", "swin_tiny_patch4_window7_224",
                  "deit_small_patch16_224"]
TRAINED = {"lsnet_t": (10, 2e-3), "deit_tiny_patch16_224": (8, 5e-4)}  # digits (epochs, lr), as benchmarks/int8_cpu.py
DIGITS = 64
Json = dict[str, Any]


def quantize_both(fp32: Path, calib: Path | None, held: Path | None, threads: int) -> tuple[Json, Json]:
    from edgevis.quant.int8 import Int8Config, quantize_int8_file
    from edgevis.quant.integer_only import IntegerOnlyConfig, quantize_integer_only_file

    t = time.perf_counter()
    io = quantize_integer_only_file(fp32, IntegerOnlyConfig(calib_dir=calib, holdout_dir=held, threads=threads))
    io_s = time.perf_counter() - t
    t = time.perf_counter()
    i8 = quantize_int8_file(fp32, Int8Config(calib_dir=calib, holdout_dir=held, threads=threads))
    i8_s = time.perf_counter() - t
    st = io.settings
    return ({"path": str(io.path), "seconds": io_s, "fidelity": io.fidelity, "act_bits": st["act_bits"],
             "float_free": st["check"]["integer_only"], "bit_exact": st["bit_exact"], "onnx_nodes": st["onnx_nodes"],
             "kernels": st["kernels"], "warnings": io.warnings},
            {"path": str(i8.path), "seconds": i8_s, "fidelity": i8.fidelity})


def latency3(paths: dict[str, str], threads: int, rounds: int, shape: list[int]) -> Json:
    from edgevis.runtimes.latency import cpu_session, interleaved_latency

    sessions = {k: cpu_session(v, threads) for k, v in paths.items()}
    name = next(iter(sessions.values())).get_inputs()[0].name
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    lat = interleaved_latency(sessions, {name: x}, rounds=rounds, iters=3)
    return {k: v.to_dict() for k, v in lat.items()}


def digits_model(name: str, work: Path, threads: int, say: Callable[[str], None]) -> Json:
    from edgevis.catalog.training import train_digits
    from edgevis.data.digits import write_digits_folder
    from edgevis.exporters.onnx import ExportConfig
    from edgevis.pipeline import export_fp32

    epochs, lr = TRAINED[name]
    ckpt = work / "checkpoints" / f"{name}-digits{DIGITS}-e{epochs}-lr{lr:g}-s0.pth"
    if not ckpt.exists():
        say(f"training {name} on digits ({epochs} epochs), cached in {ckpt.parent}")
        train_digits(name, ckpt, epochs=epochs, input_size=DIGITS, lr=lr, threads=threads)
    calib = write_digits_folder(work / "digits" / "train128", "train", size=DIGITS, limit=128)
    test = write_digits_folder(work / "digits" / "test", "test", size=DIGITS)
    fp32 = export_fp32(name, work / name / "digits", weights=ckpt,
                       config=ExportConfig(input_size=(DIGITS, DIGITS), num_classes=10)).artifact.path
    say(f"{name} (digits-trained): integer-only and INT8, fidelity on the test split")
    io, i8 = quantize_both(fp32, calib, test, threads)
    lat = latency3({"fp32": str(fp32), "int8": i8["path"], "integer_only": io["path"]}, threads, 5, [1, 3, DIGITS, DIGITS])
    return {"data": f"digits-trained {DIGITS}px, held-out test split", "integer_only": io, "int8": i8, "latency_at_64": lat}


def bench_model(name: str, args: argparse.Namespace, work: Path, say: Callable[[str], None]) -> Json:
    from edgevis.catalog.registry import has_builtin_weights
    from edgevis.pipeline import export_fp32

    real = has_builtin_weights(name)
    say(f"[bold]{name}[/]: FP32 224 ({'builtin ImageNet' if real else 'random'} weights)")
    fp32 = export_fp32(name, work / name, weights="builtin" if real else None).artifact.path
    io, i8 = quantize_both(fp32, None, None, args.threads)
    say(f"{name}: timing FP32 / INT8 / integer-only interleaved")
    lat = latency3({"fp32": str(fp32), "int8": i8["path"], "integer_only": io["path"]}, args.threads, args.rounds,
                   [1, 3, 224, 224])
    row: Json = {"model": name, "weights": "builtin ImageNet" if real else "random-init", "latency": lat,
                 "integer_only": io, "int8": i8}
    if real:
        row["fidelity"] = {"data": "ImageNet 224px / held-out bundled photos", "integer_only": io["fidelity"],
                           "int8": i8["fidelity"]}
    elif args.trained and name in TRAINED:
        row["fidelity"] = digits_model(name, work, args.threads, say)
    else:
        row["fidelity"] = {"data": "n/a (random weights: outputs near-constant, agreement meaningless)"}
    return row


# ---- kernel error: ours against float, next to I-ViT's approximations -------------------------

def kernel_errors() -> Json:
    from edgevis.quant.ivit.arith import isqrt
    from edgevis.quant.ivit.kernels import (SIGMOID_P, Gelu, Shiftmax, float_gelu, float_softmax)

    rng = np.random.default_rng(0)
    out: Json = {}
    # softmax over rows of 197 logits at scale 1e-3 (|x| <= 32.8)
    s = 1e-3
    x = rng.integers(-32767, 32768, (64, 197)).astype(np.int64)
    ref = float_softmax(x * s)
    ours = Shiftmax.for_scale(s, 32767, 197).ref(x) / 255

    def ivit_exp(v):  # v <= 0 real; I-ViT: p = v*(1 + 1/2 - 1/16), 2**p with 2**f ~ 1 + f/2 on f in (-1, 0]
        p = v * (1 + 0.5 - 0.0625)
        q = np.floor(p)
        f = p - q  # [0, 1): 2**f ~ 1 + f/2 on the shifted interval is the same line
        return (1 + f / 2) * 2.0 ** q

    e = ivit_exp(x * s - (x * s).max(-1, keepdims=True))
    ivit = e / e.sum(-1, keepdims=True)
    out["softmax_max_abs"] = {"edgevis": float(np.abs(ours - ref).max()), "ivit_equations": float(np.abs(ivit - ref).max()),
                              "note": "edgevis includes its 8-bit output rounding (0.5/255 = 0.00196)"}
    # GELU at scale 5e-4 (|x| <= 16.4)
    s = 5e-4
    x = rng.integers(-32767, 32768, 20000).astype(np.int64)
    ref = float_gelu(x * s)
    ours = Gelu.for_scale(s, 32767).ref(x) * s / 2.0 ** SIGMOID_P
    v = 1.702 * x * s
    m = np.maximum(v, 0)
    ivit = x * s * ivit_exp(v - m) / (ivit_exp(v - m) + ivit_exp(-m))
    out["gelu_max_abs"] = {"edgevis": float(np.abs(ours - ref).max()), "ivit_equations": float(np.abs(ivit - ref).max())}
    # integer square root over every variance up to 2**20
    n = np.arange(1 << 20, dtype=np.int64)
    true = np.floor(np.sqrt(n.astype(np.float64)))
    ours = isqrt(n)
    xk = np.full_like(n, 1 << 16)
    for _ in range(10):
        xk = (xk + n // xk) // 2
    out["isqrt_n_below_2^20"] = {"edgevis_wrong": int(np.sum(ours != true)), "ivit_newton_wrong": int(np.sum(xk != true)),
                                 "ivit_at_10000": int(xk[10000])}
    return out


def report(rows: list[Json], kern: Json, console) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    t = Table(title="integer-only on ONNX Runtime CPU (p50 latency, batch 1)")
    for c in ("model", "FP32 ms", "INT8 ms", "integer-only ms", "int-only / FP32", "bits", "float-free", "bit-exact",
              "nodes", "convert s"):
        t.add_column(c, justify="right")
    for r in rows:
        lat, io = r["latency"], r["integer_only"]
        f, q, i = (lat[k]["p50_ms"] for k in ("fp32", "int8", "integer_only"))
        t.add_row(r["model"], f"{f:.2f}", f"{q:.2f}", f"{i:.2f}", f"{f / i:.2f}x", str(io["act_bits"]),
                  "yes" if io["float_free"] else "NO", f"{io['bit_exact']['bit_exact']} ({io['bit_exact']['inputs']})",
                  str(io["onnx_nodes"]), f"{io['seconds']:.0f}")
    console.print(t)
    t = Table(title="fidelity against FP32 (held-out images)")
    for c in ("model", "data", "integer-only top-1 / cos / SQNR", "INT8 top-1 / cos / SQNR", "images"):
        t.add_column(c)
    for r in rows:
        fd = r["fidelity"]
        if "integer_only" not in fd:
            t.add_row(r["model"], fd["data"], "-", "-", "-")
            continue
        a, b = fd["integer_only"], fd["int8"]
        a, b = a.get("fidelity", a), b.get("fidelity", b)
        fmt = lambda d: f"{d['top1_agreement']:.1%} / {d['cosine_mean']:.4f} / {d['sqnr_db']:.1f} dB"  # noqa: E731
        t.add_row(r["model"], fd["data"], fmt(a), fmt(b), str(a["images"]))
    console.print(t)
    console.print("kernel error against float (max |error|):")
    for k, v in kern.items():
        console.print(f"  {k}: {v}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--work", type=Path, help="exports and trained checkpoints (cached); default: a temp dir")
    ap.add_argument("--no-trained", dest="trained", action="store_false")
    ap.add_argument("--quick", action="store_true", help="lsnet_t only, no training")
    ap.add_argument("--json-out", type=Path, default=Path(__file__).parent / "results" / "integer_only.json")
    args = ap.parse_args(argv)
    from rich.console import Console

    console = Console(stderr=True)
    models = args.models or (["lsnet_t"] if args.quick else DEFAULT_MODELS)
    if args.quick:
        args.trained, args.rounds = False, 3
    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="edgevis-io-bench-")
        args.work = Path(tmp.name)
    rows = [bench_model(m, args, args.work, console.print) for m in models]
    kern = kernel_errors()
    report(rows, kern, console)
    import onnxruntime

    result = {"machine": {"platform": platform.platform(), "python": sys.version.split()[0],
                          "onnxruntime": onnxruntime.__version__, "threads": args.threads},
              "rows": rows, "kernel_error": kern}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    console.print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
