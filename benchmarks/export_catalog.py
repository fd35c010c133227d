"""Export every catalog model (or the ones named) and measure, in one process:
parity of the ONNX file against torch, and batch-1 latency of ONNX Runtime
relative to torch eager (a ratio, both measured here and now).

    python benchmarks/export_catalog.py [NAME ...] [--family F ...] [--iters 30] [--threads 2] [--out DIR]

The registry test exports only the fixtures, the first catalog models and the smallest
variant of each family; this script exports the others too (all of them by default,
or every size of the families named with ``--family``, e.g. ``--family convnext caformer``).

With ``efficientnet_lite0`` and its packaged ImageNet weights it also writes the
INT8 model and reports INT8 fidelity and latency against FP32.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch


def median_ms(fn, iters: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def main() -> None:
    from edgevis.catalog import create_model, list_models
    from edgevis.catalog.registry import has_builtin_weights
    from edgevis.exporters.onnx import ExportConfig, export_onnx
    from edgevis.runtimes.ort import OrtRunner

    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--family", nargs="+", default=[], help="every registered size of these families")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = args.out or tempfile.mkdtemp(prefix="edgevis-bench-")
    from edgevis.catalog import model_info

    names = list(args.names) + [n for n in list_models() if model_info(n).family in args.family and n not in args.names]
    names = names or ([] if args.family else list_models())
    print(f"{'model':32} {'weights':8} {'export s':>8} {'max|diff|':>10} {'cos min':>10} "
          f"{'torch ms':>9} {'ORT ms':>8} {'torch/ORT':>9}")
    for name in names:
        weights = "builtin" if has_builtin_weights(name) else None
        model = create_model(name, weights=weights, deploy=True)
        t = time.perf_counter()
        res = export_onnx(name, out, model=model)
        export_s = time.perf_counter() - t
        h, w = model.edgevis_info.input_size
        x = np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32)
        xt = torch.from_numpy(x)
        with torch.no_grad():
            torch_ms = median_ms(lambda: model(xt), args.iters)
        with OrtRunner(res.artifact.path, threads=args.threads) as r:
            ort_ms = median_ms(lambda: r.infer(x), args.iters)
        p = res.parity
        print(f"{name:32} {'real' if weights else 'random':8} {export_s:8.1f} {p.max_abs_diff:10.2e} "
              f"{p.cosine_min:10.7f} {torch_ms:9.2f} {ort_ms:8.2f} {torch_ms / ort_ms:9.2f}")
        if weights and name == "efficientnet_lite0":
            from edgevis.quant.int8 import quantize_int8_file

            q = quantize_int8_file(res.artifact.path)
            with OrtRunner(q.path, threads=args.threads) as r:
                int8_ms = median_ms(lambda: r.infer(x), args.iters)
            f = q.fidelity
            print(f"  int8: top-1 agreement {f['top1_agreement']:.1%}, top-5 overlap {f['top5_overlap']:.1%}, "
                  f"cosine mean {f['cosine_mean']:.4f} (worst {f['cosine_min']:.4f}), SQNR {f['sqnr_db']:.1f} dB "
                  f"on {f['images']} held-out images; latency {int8_ms:.2f} ms vs FP32 {ort_ms:.2f} ms "
                  f"= {ort_ms / int8_ms:.2f}x")
    print(f"files in {out}")


if __name__ == "__main__":
    main()
