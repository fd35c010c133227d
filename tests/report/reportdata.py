"""Report dicts with realistic values, built the way the profiler and bench build them.

Latency statistics are computed from the samples, throughput from the wall time and
energy from power and window, so every number in a report agrees with the others.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgevis.report import new_report

NO_ENERGY = "no INA3221 rails under /sys/bus/i2c/drivers/ina3221; no RAPL zones under /sys/class/powercap"

DEVICE = {"cpu": {"model": "AMD EPYC 7B13", "logical_cores": 2, "physical_cores": 1}, "gpu": None,
          "board": None, "os": "Linux-6.1.0-18-cloud-amd64-x86_64-with-glibc2.36", "python": "3.11.7",
          "versions": {"edgevis": "0.1.0", "onnxruntime": "1.23.2", "numpy": "2.3.1"}}

# label: (p50 ms, file bytes, average package power W, per-layer ops or None)
VARIANTS: dict[str, tuple[float, int, float, list[tuple[str, int, float]] | None]] = {
    "fp32": (10.9, 46_300_000, 27.2, [("Conv", 40, 5.1), ("MatMul", 24, 2.2), ("Add", 30, 0.9), ("Mul", 18, 0.7),
                                      ("Softmax", 6, 0.6), ("Transpose", 12, 0.5), ("Reshape", 20, 0.3),
                                      ("GlobalAveragePool", 1, 0.2), ("Gemm", 1, 0.1), ("Sigmoid", 8, 0.1)]),
    "int8": (4.8, 12_100_000, 24.0, [("QLinearConv", 40, 2.0), ("QuantizeLinear", 52, 0.8),
                                     ("DequantizeLinear", 52, 0.7), ("MatMulInteger", 24, 0.6), ("Add", 30, 0.4)]),
    "integer_only": (6.3, 12_400_000, 23.1, None),
}

FIDELITY = {"int8": (0.905, 0.89, 0.988, 0.95, 16.2), "integer_only": (0.857, 0.84, 0.979, 0.91, 13.4)}


def latency_stats(s: np.ndarray) -> dict[str, float]:
    q = {f"p{k}": float(np.percentile(s, k)) for k in (50, 90, 95, 99)}
    return {"min": float(s.min()), "mean": float(s.mean()), "std": float(s.std()), **q, "max": float(s.max()),
            "cv": float(s.std() / s.mean())}


def make_run(label: str, *, seed: int, energy: bool, batch: int = 1, iters: int = 200) -> dict[str, Any]:
    p50, nbytes, watts, ops = VARIANTS[label]
    rng = np.random.default_rng(seed)
    s = p50 * batch ** 0.8 * np.exp(rng.normal(0.0, 0.04, iters))
    s[rng.choice(iters, 5, replace=False)] *= 1.3  # the tail a shared machine gives
    wall = float(s.sum()) / 1e3 * 1.01
    run: dict[str, Any] = {
        "batch": batch, "input_shapes": {"input": [batch, 3, 224, 224]}, "latency_ms": latency_stats(s),
        "samples_ms": [float(v) for v in s], "iterations": iters, "wall_s": wall,
        "throughput_ips": batch * iters / wall,
        "memory": {"peak_rss_mb": 250.0 + nbytes / 1e6 * 1.3, "rss_before_mb": 250.0, "added_mb": nbytes / 1e6 * 1.3,
                   "method": "VmHWM after clear_refs", "gpu_mb": None, "file_mb": nbytes / 1e6},
        "energy": {"available": False, "reason": NO_ENERGY},
        "per_layer": None, "warnings": [],
    }
    if energy:
        idle, e_j = 8.0, watts * wall
        net = e_j - idle * wall
        run["energy"] = {"available": True, "meter": "rapl", "sensor": "RAPL package-0", "rails": ["package-0"],
                         "window_s": wall, "inferences": iters, "energy_j": e_j, "idle_w": idle, "avg_power_w": watts,
                         "net_energy_j": net, "j_per_inference": net / iters, "gross_j_per_inference": e_j / iters,
                         "inferences_per_j": iters / net, "samples": int(wall * 50), "warnings": []}
    if ops is not None:
        total = sum(ms for _, _, ms in ops)
        run["per_layer"] = {"source": "onnxruntime profiler", "runs": 20, "total_ms": total,
                            "by_op": [{"op": op, "nodes": n, "ms": ms, "share": ms / total} for op, n, ms in ops],
                            "by_node": [{"node": f"/stage0/{ops[0][0].lower()}", "op": ops[0][0], "ms": ops[0][2] / 4,
                                         "share": ops[0][2] / 4 / total, "provider": "CPUExecutionProvider"}]}
    return run


def make_entry(label: str, *, seed: int, energy: bool, batches: tuple[int, ...] = (1,)) -> dict[str, Any]:
    precision = label.replace("_", "-")
    fid = FIDELITY.get(label)
    fidelity = None if fid is None else {
        "reference": "fp32", "images": 42, "source": "scikit-image sample photos", "top1_agreement": fid[0],
        "top5_overlap": fid[1], "cosine_mean": fid[2], "cosine_min": fid[3], "sqnr_db": fid[4]}
    return {"label": label, "precision": precision, "file": f"edgevis_out/lsnet_t.{label}.onnx", "fidelity": fidelity,
            "profile": {"schema": "edgevis.profile", "schema_version": 1,
                        "model": {"path": f"edgevis_out/lsnet_t.{label}.onnx", "file_bytes": VARIANTS[label][1],
                                  "precision": precision, "runtime": "ort", "providers": ["CPUExecutionProvider"]},
                        "settings": {"warmup": 10, "iters": 200, "duration_s": None, "threads": None,
                                     "include_io": False, "energy": "auto"},
                        "runs": [make_run(label, seed=seed + b, energy=energy, batch=b) for b in batches],
                        "warnings": []}}


def make_report(*, energy: bool, labels: tuple[str, ...] = ("fp32", "int8", "integer_only"),
                baseline: str | None = "fp32", title: str = "lsnet_t on ONNX Runtime (CPU)") -> dict[str, Any]:
    entries = [make_entry(label, seed=10 * i, energy=energy) for i, label in enumerate(labels)]
    return new_report("bench", title, DEVICE, entries, model="lsnet_t", baseline=baseline)
