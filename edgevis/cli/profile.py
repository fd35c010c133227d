"""``edgevis profile``: latency, throughput, memory, energy and per-layer time of one model file on this device."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .common import command_line, out, print_json, progress_bar, user_errors, warn


@user_errors
def profile(
    model_file: Path = typer.Argument(..., help="An ONNX file (ONNX Runtime) or a TensorRT engine (.engine/.plan/.trt)."),
    runtime: str = typer.Option("auto", "--runtime", metavar="[auto|ort|trt|openvino]", help="ort, trt or openvino (default: from the file: .engine/.plan/.trt -> trt, .blob -> openvino)."),
    precision_hint: str = typer.Option("auto", "--precision-hint", metavar="[auto|f32|bf16]", help="openvino: the inference precision asked for (auto: OpenVINO's default, bf16 on CPUs that have it); the one that ran is printed."),
    device: str = typer.Option("cpu", "--device", metavar="[cpu|cuda|tensorrt]", help="ONNX Runtime: cpu, cuda or tensorrt (execution providers)."),
    providers: Optional[str] = typer.Option(None, "--providers", help="ONNX Runtime providers in order, e.g. "
                                                                      "CUDAExecutionProvider,CPUExecutionProvider."),
    warmup: int = typer.Option(10, "--warmup", help="Untimed iterations before the timed ones."),
    iters: Optional[int] = typer.Option(None, "--iters", help="Timed iterations (default: --duration)."),
    duration: Optional[float] = typer.Option(
        None, "--duration", help="Seconds of timed iterations, at least 10 of them (default 3)."),
    batch: str = typer.Option("1", "--batch", help="Batch sizes to profile, e.g. 1,8 (needs a dynamic batch)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="ONNX Runtime intra-op threads (default: ORT's)."),
    include_io: bool = typer.Option(
        False, "--include-io", help="Time input generation and host/device copies too (default: inference only)."),
    energy: str = typer.Option("auto", "--energy", metavar="[auto|nvml|jetson|rapl|none]", help="auto, nvml, jetson, rapl or none."),
    idle: float = typer.Option(1.0, "--idle", help="Seconds of idle power measured before each timed run."),
    per_layer: bool = typer.Option(False, "--per-layer", help="Also time every layer (a separate, profiled pass)."),
    per_layer_runs: int = typer.Option(20, "--per-layer-runs", help="Runs averaged by --per-layer."),
    tolerance: float = typer.Option(
        2.0, "--tolerance", help="Warn when the mean latency is known less precisely than this, in percent (95 percent confidence)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write report.json, report.md and report.html here."),
    wide: bool = typer.Option(False, "--wide", help="Every latency column (default: the main ones, within 100 "
                                                    "terminal columns; --json has all)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and warnings."),
) -> None:
    """Measure one model file on this device: latency percentiles, throughput, peak memory, energy per
    inference (where a sensor exists) and, with --per-layer, where the time goes."""
    from ..pipeline.profiling import profile_with_report
    from ..profile.profiler import ProfileConfig, parse_batches
    from ..runtimes.ort import parse_providers

    config = ProfileConfig(runtime=runtime, device=device, providers=parse_providers(providers) or None,
                           warmup=warmup, iters=iters, duration_s=duration, batches=parse_batches(batch),
                           threads=threads, include_io=include_io, energy=energy, idle_s=idle, per_layer=per_layer,
                           per_layer_runs=per_layer_runs, tolerance=tolerance / 100, precision_hint=precision_hint)
    show = not quiet and not as_json
    with progress_bar(show) as progress:
        run = profile_with_report(model_file, config, report_dir=report, progress=progress, invocation=command_line())
    for w in run.warnings:
        warn(w)
    if as_json:
        print_json(run.to_dict())
    elif not quiet:
        print_profile(run.result.to_dict(), wide=wide)
        if run.report_files:
            out.print(f"report: {escape(str(run.report_files['html']))}")


def _runtime_name(result: dict[str, Any]) -> str:
    from ..pipeline.profiling import runtime_name

    return runtime_name(result)


def latency_table(result: dict[str, Any], wide: bool = False) -> Table:
    """The latency table: units said once (ms in the title, MiB and img/s in the headers), three significant
    digits, so that the default columns fit 100 terminal columns with every number on one line; ``wide`` adds
    p95, min and max. GPU memory only where a run measured it."""
    from ..report.table import sig

    runs = result["runs"]
    keys = ("p50", "p90", "p95", "p99", "min", "max") if wide else ("p50", "p90", "p99")
    gpu = any((r["memory"] or {}).get("gpu_mb") is not None for r in runs)
    table = Table(title="latency (ms, warm-up excluded)")
    for c in ("batch", "iters", *keys, "mean ± std", "CV", "through-\nput img/s", "peak RSS\nMiB (+model)",
              *(["GPU\nMiB"] if gpu else [])):
        table.add_column(c, justify="right", overflow="fold")  # numbers are never cut
    for r in runs:
        s, mem = r["latency_ms"], r["memory"] or {}
        rss = "—" if mem.get("peak_rss_mb") is None else sig(mem["peak_rss_mb"], 4 if mem["peak_rss_mb"] >= 1000 else 3)
        if mem.get("added_mb") is not None and mem.get("peak_rss_mb") is not None:
            rss += f" (+{sig(mem['added_mb'])})"
        table.add_row(str(r["batch"]), str(r["iterations"]), *(sig(s[k]) for k in keys),
                      f"{sig(s['mean'])} ± {sig(s['std'], 2)}", f"{s['cv']:.1%}" if s["cv"] is not None else "—",
                      sig(r["throughput_ips"]), rss,
                      *([("—" if mem.get("gpu_mb") is None else sig(mem["gpu_mb"]))] if gpu else []))
    return table


def print_profile(result: dict[str, Any], wide: bool = False) -> None:
    m, d = result["model"], result["device"]
    cpu = d["cpu"]
    gpus = ", ".join(f"{g['name']} (driver {g['driver']})" for g in d.get("gpu") or [])
    out.print(f"[bold]{escape(m['path'])}[/] ({m['precision']}, {m['file_bytes'] / 2**20:.1f} MiB) on "
              f"{escape(_runtime_name(result))}")
    out.print(f"device: {escape(str(cpu['model']))}, {cpu['logical_cores']} logical cores"
              + (f"; {escape(gpus)}" if gpus else "") + (f"; {escape(d['board'])}" if d.get("board") else "")
              + f"; threads {result['settings']['threads'] or ('ORT' if m['runtime'] == 'ort' else 'runtime') + ' default'}"
              + ("; input generation and copies timed" if result["settings"]["include_io"] else ""))
    out.print(latency_table(result, wide=wide))
    for r in result["runs"]:
        e = r["energy"]
        if not e.get("available"):
            out.print(f"energy, batch {r['batch']}: unavailable ({escape(e['reason'])})")
            continue
        per = (f"{e['j_per_inference'] * 1e3:.2f} mJ/inference above idle, {e['inferences_per_j']:.1f} inferences/J"
               if e.get("inferences_per_j") else "not distinguishable from idle")
        out.print(f"energy, batch {r['batch']}: {per}; {e['avg_power_w']:.2f} W average, {e['idle_w']:.2f} W idle "
                  f"({escape(e['sensor'])}; {e['samples']} samples over {e['window_s']:.2f} s)")
    for r in result["runs"]:
        pl = r.get("per_layer")
        if not pl:
            continue
        t = Table(title=f"per-layer time, batch {r['batch']} ({pl['source']}, mean of {pl['runs']} profiled runs, "
                        "which run slower than timed ones; "
                        f"layers {pl['total_ms']:.3f} ms" + (f" of {pl['run_ms']:.3f} ms per run" if "run_ms" in pl else "")
                        + ")")
        for c in ("op type", "nodes", "ms", "share"):
            t.add_column(c, justify="right" if c != "op type" else "left", overflow="fold")
        for row in pl["by_op"][:12]:
            t.add_row(escape(row["op"]), str(row["nodes"]), f"{row['ms']:.3f}", f"{row['share']:.1%}")
        out.print(t)
        t = Table(title=f"slowest nodes, batch {r['batch']}")
        for c in ("node", "op", "ms", "share"):
            t.add_column(c, justify="right" if c in ("ms", "share") else "left", overflow="fold")
        for row in pl["by_node"][:10]:
            t.add_row(escape(row["node"]), escape(row["op"]), f"{row['ms']:.3f}", f"{row['share']:.1%}")
        out.print(t)
