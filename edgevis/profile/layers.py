"""Per-layer time: ONNX Runtime's profiler trace, TensorRT's layer profiler and OpenVINO's PERF_COUNT, as one table.

Both runtimes report a duration per executed node (ORT: ``"cat": "Node"`` events
``<node>_kernel_time`` with ``dur`` in microseconds and ``args.op_name`` /
``args.provider``; TensorRT: ``IProfiler.report_layer_time(name, ms)`` after each
run). Here they become the same result: the mean time per run of every node and of
every op type, with its share of the total. Profiling slows a run down (ORT writes an
event per node, TensorRT synchronises after every layer), so this is always a pass of
its own after the latency measurement, never mixed into it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

from ..runtimes.ort_trace import ort_node_events

TOP_NODES = 100  # by_node keeps the slowest nodes; nodes_total says how many there were


def per_layer_table(times_ms: dict[str, list[float]], ops: dict[str, str], *, skip: int, source: str,
                    providers: dict[str, str] | None = None, run_ms: list[float] | None = None) -> dict[str, Any]:
    """Mean ms per run of each node (its first ``skip`` timings, the warm-up runs, dropped) and per op type."""
    node_ms: dict[str, float] = {}
    runs = 0
    for node, ts in times_ms.items():
        kept = ts[skip:]
        if kept:
            node_ms[node] = sum(kept) / len(kept)
            runs = max(runs, len(kept))
    total = sum(node_ms.values())
    by_op: dict[str, list[float]] = defaultdict(list)
    for node, ms in node_ms.items():
        by_op[ops.get(node, "?")].append(ms)
    share = (lambda ms: ms / total) if total > 0 else (lambda ms: 0.0)
    op_rows = sorted(({"op": op, "nodes": len(v), "ms": sum(v), "share": share(sum(v))} for op, v in by_op.items()),
                     key=lambda r: -r["ms"])
    node_rows = sorted(({"node": n, "op": ops.get(n, "?"), "ms": ms, "share": share(ms),
                         "provider": (providers or {}).get(n)} for n, ms in node_ms.items()), key=lambda r: -r["ms"])
    out: dict[str, Any] = {"source": source, "runs": runs, "total_ms": total, "nodes_total": len(node_ms),
                           "by_op": op_rows, "by_node": node_rows[:TOP_NODES]}
    kept_runs = (run_ms or [])[skip:]
    if kept_runs:
        # what the per-node durations do not cover: scheduling, copies between nodes, the run call itself
        out["run_ms"] = sum(kept_runs) / len(kept_runs)
        out["outside_layers_ms"] = out["run_ms"] - total
    return out


def ort_per_layer(events: list[dict[str, Any]], *, skip: int) -> dict[str, Any]:
    times: dict[str, list[float]] = defaultdict(list)
    ops: dict[str, str] = {}
    providers: dict[str, str] = {}
    for node, op, provider, us in ort_node_events(events):
        times[node].append(us / 1e3)
        ops[node], providers[node] = op, provider
    run_ms = [float(e.get("dur", 0)) / 1e3 for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"]
    return per_layer_table(times, ops, skip=skip, source="onnxruntime profiler", providers=providers, run_ms=run_ms)


def ov_per_layer(runs: list[list[Any]], run_ms: list[float], *, skip: int) -> dict[str, Any]:
    """OpenVINO's ``get_profiling_info()`` after each run (``PERF_COUNT`` on): one entry per node of the
    compiled graph, ``real_time`` for the nodes that executed; the node's kernel (``exec_type``, e.g.
    ``brgconv_avx512_amx_I8``) names the precision it ran in, so it fills the provider column."""
    times: dict[str, list[float]] = defaultdict(list)
    ops: dict[str, str] = {}
    kernels: dict[str, str] = {}
    for info in runs:
        for p in info:
            if str(p.status).endswith("EXECUTED"):
                times[p.node_name].append(p.real_time.total_seconds() * 1e3)
                ops[p.node_name], kernels[p.node_name] = p.node_type, p.exec_type
    return per_layer_table(times, ops, skip=skip, source="OpenVINO PERF_COUNT", providers=kernels, run_ms=run_ms)


def trt_layer_profiler(trt):  # type: ignore[no-untyped-def]
    """An ``IProfiler`` that keeps every layer time TensorRT reports (one call per layer per run)."""

    class LayerTimes(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.times: dict[str, list[float]] = defaultdict(list)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.times[layer_name].append(float(ms))

    return LayerTimes()


def trt_layer_types(engine, trt) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Layer name -> type from the engine inspector (needs ``profiling_verbosity`` DETAILED, as edgevis builds)."""
    import json

    try:
        info = json.loads(engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON))
    except Exception:  # an engine built without detailed verbosity gives names only
        return {}
    out = {}
    for layer in info.get("Layers", []):
        if isinstance(layer, dict) and "Name" in layer:
            out[str(layer["Name"])] = str(layer.get("LayerType", "?"))
    return out
