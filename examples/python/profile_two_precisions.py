"""Profile two files of one model side by side: FP32 and INT8, in alternating rounds on this machine.

    python examples/python/profile_two_precisions.py edgevis_out/lsnet_t.fp32.onnx edgevis_out/lsnet_t.int8.onnx

Rounds alternate so that the machine's drift falls on both files alike; the samples of
each file are pooled before the percentiles are taken.
"""

import argparse

import numpy as np

import edgevis


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("baseline")
    ap.add_argument("candidate")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--iters", type=int, default=50)
    a = ap.parse_args()
    config = edgevis.ProfileConfig(iters=a.iters, warmup=5, energy="none")
    samples: dict[str, list[float]] = {a.baseline: [], a.candidate: []}
    for r in range(a.rounds):
        for path in ((a.baseline, a.candidate) if r % 2 == 0 else (a.candidate, a.baseline)):
            result = edgevis.profile(path, config)
            samples[path] += result.run()["samples_ms"]
    p50 = {k: float(np.median(v)) for k, v in samples.items()}
    for k, v in p50.items():
        print(f"{k}: p50 {v:.3f} ms over {len(samples[k])} runs")
    print(f"speedup (p50): {p50[a.baseline] / p50[a.candidate]:.2f}x")


if __name__ == "__main__":
    main()
