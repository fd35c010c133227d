"""``edgevis sweep``: models × precisions × boards, on a Ray cluster or here, into one report."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .common import err, out, print_json, user_errors, warn


@user_errors
def sweep(
    models: Optional[str] = typer.Option(None, "--models", "-m", help="Catalog names, comma separated; NAME@SIZE "
                                                                      "(e.g. lsnet_t@160) sets one model's input size."),
    precisions: Optional[str] = typer.Option(None, "--precisions", help="fp32, int8, integer-only (fp32 is the "
                                                                        "baseline). Default: fp32,int8."),
    devices: Optional[str] = typer.Option(None, "--devices", "-d", help="Boards, comma separated: each is the Ray "
                                                                        "resource board:NAME of a node."),
    sweep_file: Optional[Path] = typer.Option(None, "--file", "-f", help="A TOML sweep file (the options given "
                                                                         "here win over it)."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="local (this machine, serially, no Ray), auto, "
                                                                  "ray://HOST:PORT or HOST:PORT. Default: local."),
    weights: Optional[str] = typer.Option(None, "--weights", "-w", help="Checkpoint for every model, or 'builtin'."),
    input_size: Optional[tuple[int, int]] = typer.Option(None, "--input-size", help="Input height and width."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Calibration images (default: bundled photos)."),
    holdout: Optional[Path] = typer.Option(None, "--holdout", help="Held-out images for fidelity (sent to boards)."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Where the head writes (and reuses) "
                                                                              "the model files. Default: edgevis_out."),
    report: Optional[Path] = typer.Option(None, "--report", help="Report folder (cells/ and report.*). "
                                                                 "Default: edgevis_sweep."),
    runtime: Optional[str] = typer.Option(None, "--runtime", metavar="[ort|trt]", help="ort or trt/tensorrt (engines are built on each board)."),
    device: Optional[str] = typer.Option(None, "--device", metavar="[cpu|cuda|tensorrt]", help="ONNX Runtime on the boards: cpu, cuda, tensorrt."),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="Untimed iterations before the timed ones."),
    iters: Optional[int] = typer.Option(None, "--iters", help="Timed iterations per cell (default: --duration)."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Seconds of timed iterations per cell."),
    rounds: Optional[int] = typer.Option(None, "--rounds", help="Profile each cell in this many rounds, each in a "
                                                                "fresh process (default 3)."),
    energy: Optional[str] = typer.Option(None, "--energy", metavar="[auto|nvml|jetson|rapl|none]", help="auto, nvml, jetson, rapl or none."),
    retries: Optional[int] = typer.Option(None, "--retries", help="Ray retries of a cell whose worker or node died."),
    cell_timeout: Optional[float] = typer.Option(None, "--cell-timeout", help="Seconds a cell may run (default 1800)."),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Keep finished cells whose files, images and "
                                                                   "settings match."),
    as_json: bool = typer.Option(False, "--json", help="Print the result and report as one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and warnings."),
) -> None:
    """Measure every model at every precision on every board: export and quantize once here, send the files to
    the boards, build, check fidelity and profile there; one report. Exit code 4: some cells failed (the
    report says which and why; a rerun measures only those)."""
    from ..core.errors import EdgevisError
    from ..farm import PARTIAL_EXIT, SweepConfig, load_sweep_file, parse_devices, parse_models
    from ..farm import sweep as run_sweep
    from ..pipeline.benching import parse_precisions
    from ..profile.profiler import ProfileConfig

    prof: dict[str, Any] = {k: v for k, v in (("runtime", runtime), ("device", device), ("warmup", warmup),
                                              ("iters", iters), ("duration_s", duration), ("energy", energy))
                            if v is not None}
    over: dict[str, Any] = {
        "precisions": parse_precisions(precisions) if precisions else None,
        "devices": parse_devices(devices) if devices else None, "cluster": cluster, "calib_dir": calib,
        "holdout_dir": holdout, "output_dir": output_dir, "report_dir": report, "rounds": rounds,
        "retries": retries, "cell_timeout_s": cell_timeout, "resume": resume}
    size = tuple(input_size) if input_size else None
    if sweep_file is not None:
        from dataclasses import replace

        config = load_sweep_file(sweep_file, **over)
        if models:
            config = replace(config, models=parse_models(models, weights, size))  # type: ignore[arg-type]
        if prof:
            config = replace(config, profile=replace(config.profile, **prof))
    else:
        if not models:
            raise EdgevisError("name the models (--models lsnet_t,...) or give a sweep file (--file sweep.toml)")
        kw = {k: v for k, v in over.items() if v is not None}
        config = SweepConfig(models=parse_models(models, weights, size),  # type: ignore[arg-type]
                             profile=ProfileConfig(**{"runtime": "ort", **prof}), **kw)
    show = not quiet and not as_json

    def log(msg: str) -> None:
        if show:
            err.print(escape(msg), highlight=False)

    result = run_sweep(config, log=log)
    for w in result.warnings:
        warn(w)
    if as_json:
        print_json(result.to_dict())
    elif not quiet:
        print_summary(result)
    if result.exit_code:
        err.print(f"[bold yellow]partial:[/] {len(result.failed)} of {len(result.cells)} cells not measured; "
                  f"see {escape(str(result.report_files['html']))}; rerun to measure only those "
                  f"(exit code {PARTIAL_EXIT})", highlight=False)
        raise typer.Exit(code=result.exit_code)


def print_summary(result: Any) -> None:
    doc = result.report
    table = Table(title=escape(doc["title"]))
    for h in ("Model", "Precision", *doc["matrix"]["boards"]):
        table.add_column(escape(h), justify="left")
    for m in doc["matrix"]["models"]:
        for p in doc["matrix"]["precisions"]:
            row = [m, p]
            for b in doc["matrix"]["boards"]:
                c = next(c for c in doc["cells"] if (c["model"], c["precision"], c["board"]) == (m, p, b))
                if c["status"] == "done":
                    text = f"{c['profile']['runs'][0]['latency_ms']['p50']:.3g} ms"
                    if c.get("fidelity"):
                        text += f", top-1 {100 * c['fidelity']['top1_agreement']:.1f} %"
                else:
                    text = f"{c['status']}: {c.get('reason')}"
                row.append(text)
            table.add_row(*(escape(x) for x in row))
    out.print(table)
    out.print(f"ran {len(result.ran)}, kept {len(result.kept)}, not measured {len(result.failed)}")
    out.print(f"report: {escape(str(result.report_files['html']))}")
