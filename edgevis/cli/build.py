"""``edgevis build``: the thing that runs on the device - an ONNX Runtime session or a TensorRT engine."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import out, print_json, spinner, user_errors, warn


@user_errors
def build(
    model_file: Path = typer.Argument(..., help="An ONNX file (from `edgevis export`)."),
    runtime: str = typer.Option(..., "--runtime", "-r", metavar="[ort|trt|openvino]", help="ort (ONNX Runtime), trt/tensorrt (TensorRT engine) or openvino (compiled OpenVINO CPU model)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write (default: beside the model)."),
    device: str = typer.Option("cpu", "--device", metavar="[cpu|cuda|tensorrt]", help="ort: cpu, cuda or tensorrt (TensorRT execution provider)."),
    providers: Optional[str] = typer.Option(
        None, "--providers", help="ort: comma-separated execution providers, in order (overrides --device)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="ort, openvino: intra-op threads."),
    precision_hint: str = typer.Option("auto", "--precision-hint", metavar="[auto|f32|bf16]", help="openvino: the inference precision asked for (auto: OpenVINO's default, bf16 on CPUs that have it); the one that ran is recorded and printed."),
    optimization: str = typer.Option("all", "--optimization", metavar="[disable|basic|extended|all]", help="ort: disable, basic, extended or all."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="ort with TensorRT EP: engine cache directory."),
    fp16: bool = typer.Option(False, "--fp16", help="ort with TensorRT EP: allow FP16 kernels."),
    precision: str = typer.Option("auto", "--precision", metavar="[auto|fp32|fp16|int8]", help="trt: auto (int8 for a Q/DQ model, else fp32), fp32, "
                                                              "fp16 or int8."),
    min_shape: Optional[str] = typer.Option(None, "--min-shape", help="trt: NAME:1x3x224x224[,NAME2:...]."),
    opt_shape: Optional[str] = typer.Option(None, "--opt-shape", help="trt: shapes the engine is tuned for."),
    max_shape: Optional[str] = typer.Option(None, "--max-shape", help="trt: largest shapes the engine takes."),
    workspace: Optional[float] = typer.Option(None, "--workspace", help="trt: builder workspace limit in GiB."),
    timing_cache: Optional[Path] = typer.Option(None, "--timing-cache", help="trt: timing cache file, read and updated."),
    dla: Optional[int] = typer.Option(None, "--dla", help="trt: DLA core to build for (Jetson), GPU fallback on."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and warnings."),
) -> None:
    """Build what runs on the device: an ONNX Runtime session saved for a fast start (which provider runs each
    node, CPU fallbacks named), or a TensorRT engine with a sidecar that refuses mismatched TensorRT/GPU."""
    from ..core.errors import EdgevisError

    ort_only = {"--device": device != "cpu", "--providers": providers, "--threads": threads,
                "--optimization": optimization != "all", "--cache-dir": cache_dir, "--fp16": fp16}
    trt_only = {"--precision": precision != "auto", "--min-shape": min_shape, "--opt-shape": opt_shape,
                "--max-shape": max_shape, "--workspace": workspace, "--timing-cache": timing_cache,
                "--dla": dla is not None}
    from ..core.names import as_runtime

    runtime = as_runtime(runtime)
    if runtime not in ("ort", "trt", "openvino"):
        raise EdgevisError(f"unknown --runtime {runtime!r}; use ort, trt (tensorrt) or openvino")
    if precision_hint != "auto" and runtime != "openvino":
        raise EdgevisError(f"--precision-hint does not apply to --runtime {runtime}")
    if runtime == "openvino":
        wrong = [k for k, v in {**ort_only, **trt_only}.items() if v and k != "--threads"]
    else:
        wrong = [k for k, v in (trt_only if runtime == "ort" else ort_only).items() if v]
    if wrong:
        raise EdgevisError(f"{', '.join(wrong)} do(es) not apply to --runtime {runtime}")
    show = not quiet and not as_json
    from ..pipeline.building import build as run_build

    if runtime == "ort":
        from ..runtimes.ort import parse_providers
        from ..runtimes.ort_build import OrtBuildConfig

        cfg = OrtBuildConfig(device=device, providers=parse_providers(providers),
                             threads=threads, optimization=optimization, cache_dir=cache_dir, trt_fp16=fp16)
        _report(spinner("building the ONNX Runtime session...", show), lambda: run_build(model_file, "ort", cfg, output),
                as_json, show, _print_ort)
        return
    if runtime == "openvino":
        from ..runtimes.openvino import OvConfig

        cfg_o = OvConfig(precision=precision_hint, threads=threads)
        _report(spinner("compiling with OpenVINO...", show), lambda: run_build(model_file, "openvino", cfg_o, output),
                as_json, show, _print_openvino)
        return
    from ..runtimes.trt import TrtBuildConfig, parse_shapes

    cfg_t = TrtBuildConfig(precision=precision, min_shapes=parse_shapes(min_shape), opt_shapes=parse_shapes(opt_shape),
                           max_shapes=parse_shapes(max_shape), workspace_gib=workspace, timing_cache=timing_cache,
                           dla_core=dla)
    _report(spinner("building the TensorRT engine...", show), lambda: run_build(model_file, "trt", cfg_t, output),
            as_json, show, _print_trt)


def _report(status, job, as_json: bool, show: bool, printer) -> None:  # type: ignore[no-untyped-def]
    """Run the build under the spinner, then warnings on stderr and the result as JSON or a report."""
    with status:
        result = job()
    for w in result.warnings:
        warn(w)
    if as_json:
        print_json(result.to_dict())
    elif show:
        printer(result)


def _print_trt(t) -> None:  # type: ignore[no-untyped-def]
    s = t.sidecar
    out.print(f"[bold green]wrote[/] {t.path}  ({t.path.stat().st_size / 1e6:.1f} MB, {s['precision']}, "
                  f"TensorRT {s['tensorrt']}, {s['gpu']['name']} compute {s['gpu']['compute_capability']}, "
                  f"built in {s['build_seconds']} s)")
    out.print(f"  {s['typing']}; sidecar {t.path}.json")


def _print_openvino(b) -> None:  # type: ignore[no-untyped-def]
    s, c = b.sidecar, b.check
    out.print(f"[bold green]wrote[/] {b.path}  ({b.path.stat().st_size / 1e6:.1f} MB, OpenVINO {s['openvino']}, "
              f"{s['cpu']['name']}, compiled in {s['compile_seconds']} s)")
    out.print(f"  precision that runs: {b.precision['label']} (hint asked: {s['precision_hint']}); outputs against "
              f"ONNX Runtime on the source: max|diff| {c['max_abs_diff']:.2g}, cosine {c['cosine_min']:.6f}; "
              f"sidecar {b.path}.json")


def _print_ort(r) -> None:  # type: ignore[no-untyped-def]
    from rich.table import Table

    table = Table(title=f"{r.source.name} on ONNX Runtime: which provider runs each node")
    for c in ("provider", "nodes", "ops"):
        table.add_column(c)
    for p, v in r.placement.items():
        table.add_row(p, str(v["nodes"]), ", ".join(f"{op} {n}" for op, n in v["ops"].items()))
    out.print(table)
    st = r.start_seconds
    if r.path is not None:
        out.print(f"[bold green]wrote[/] {r.path}  (optimized graph for {r.providers[0]}; session start "
                  f"{st['source']:.2f} s from the source, {st['optimized']:.2f} s from this file; outputs "
                  f"{'identical' if r.check['max_abs_diff'] == 0 else 'max|diff| %.2g' % r.check['max_abs_diff']})")
    if r.cache_dir is not None:
        out.print(f"  TensorRT engine cache: {r.cache_dir}")

