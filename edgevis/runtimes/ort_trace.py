"""ONNX Runtime's profiling trace, read: which provider ran which node, and for how long.

The trace is written by ``SessionOptions.enable_profiling``; ``"cat": "Node"`` events
``<node>_kernel_time`` carry ``dur`` (µs) and ``args.op_name`` / ``args.provider``.
The ORT build uses it for provider placement, the profiler for per-layer time.
"""

from __future__ import annotations

from typing import Any, Iterable


def ort_node_events(events: Iterable[dict[str, Any]]) -> list[tuple[str, str, str, float]]:
    """(node, op type, provider, µs) of every executed node, in trace order."""
    out = []
    for e in events:
        name = str(e.get("name", ""))
        if e.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        args = e.get("args") or {}
        out.append((name[: -len("_kernel_time")], str(args.get("op_name") or "?"),
                    str(args.get("provider") or "unknown"), float(e.get("dur", 0))))
    return out


def node_placement(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Provider -> node count and op histogram, from ORT's profiling trace."""
    seen = {node: (provider, op) for node, op, provider, _ in ort_node_events(events)}
    out: dict[str, dict[str, Any]] = {}
    for provider, op in seen.values():
        slot = out.setdefault(provider, {"nodes": 0, "ops": {}})
        slot["nodes"] += 1
        slot["ops"][op] = slot["ops"].get(op, 0) + 1
    for slot in out.values():
        slot["ops"] = dict(sorted(slot["ops"].items(), key=lambda kv: -kv[1]))
    return out
