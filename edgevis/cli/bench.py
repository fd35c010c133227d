"""``edgevis bench``: every precision of one catalog model exported, checked and profiled, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .common import command_line, err, out, print_json, progress_bar, user_errors, warn


@user_errors
def bench(
    model: str = typer.Option(..., "--model", "-m", help="Catalog name (see `edgevis models`)."),
    precisions: str = typer.Option("fp32,int8", "--precisions", help="fp32, int8, integer-only, comma separated "
                                                                      "(fp32 is always the baseline)."),
    weights: Optional[str] = typer.Option(None, "--weights", "-w", help="Checkpoint, or 'builtin' (as export)."),
    input_size: Optional[tuple[int, int]] = typer.Option(None, "--input-size", help="Input height and width."),
    output_dir: Path = typer.Option(Path("edgevis_out"), "--output-dir", "-o",
                                    help="Where models are written (and reused from, when their sidecars match)."),
    reuse: bool = typer.Option(True, "--reuse/--no-reuse", help="Reuse matching files from --output-dir."),
    calib: Optional[Path] = typer.Option(None, "--calib", help="Calibration images (default: bundled photos)."),
    holdout: Optional[Path] = typer.Option(None, "--holdout", help="Images for the fidelity check."),
    val: Optional[Path] = typer.Option(None, "--val", help="Labelled images (one folder per class): top-1/top-5 "
                                                           "accuracy of every precision, beside agreement with FP32."),
    runtime: str = typer.Option("ort", "--runtime", metavar="[ort|trt|openvino]", help="ort, trt/tensorrt (TensorRT engines are built from the ONNX files) or openvino (INT8 made with --target openvino; the precision that ran is printed)."),
    device: str = typer.Option("cpu", "--device", metavar="[cpu|cuda|tensorrt]", help="ONNX Runtime: cpu, cuda or tensorrt."),
    warmup: int = typer.Option(10, "--warmup", help="Untimed iterations before the timed ones."),
    iters: Optional[int] = typer.Option(None, "--iters", help="Timed iterations per precision (default: --duration)."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Seconds of timed iterations per precision (default 3)."),
    batch: str = typer.Option("1", "--batch", help="Batch sizes, e.g. 1,8."),
    rounds: int = typer.Option(3, "--rounds", help="Profile each precision in this many rounds, alternating the "
                                                   "order, each in a fresh process; iterations are split over them."),
    threads: Optional[int] = typer.Option(None, "--threads", help="ONNX Runtime intra-op threads."),
    energy: str = typer.Option("auto", "--energy", metavar="[auto|nvml|jetson|rapl|none]", help="auto, nvml, jetson, rapl or none."),
    per_layer: bool = typer.Option(False, "--per-layer", help="Also time every layer of each precision."),
    tolerance: float = typer.Option(2.0, "--tolerance", help="Warn when a mean latency is known less precisely than "
                                                              "this, in percent (95 percent confidence)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write report.json, report.md and report.html here."),
    wide: bool = typer.Option(False, "--wide", help="Every column of the table (default: the main ones, within 100 "
                                                    "columns)."),
    csv: bool = typer.Option(False, "--csv", help="The full table as CSV on stdout (for machines)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and warnings."),
) -> None:
    """Export each precision (reusing matching files), measure its fidelity against FP32 on held-out images,
    profile it, and print one table with ratios against FP32."""
    from ..pipeline.benching import BenchConfig, bench as run_bench, parse_precisions
    from ..profile.profiler import ProfileConfig, parse_batches

    from ..core.names import as_runtime

    runtime = as_runtime(runtime)
    if runtime not in ("ort", "trt", "openvino"):
        from ..core.errors import EdgevisError

        raise EdgevisError(f"unknown runtime {runtime!r}; use ort, trt (tensorrt) or openvino")
    prof = ProfileConfig(runtime=runtime, device=device, warmup=warmup, iters=iters, duration_s=duration,
                         batches=parse_batches(batch), threads=threads, energy=energy, per_layer=per_layer,
                         tolerance=tolerance / 100)
    config = BenchConfig(model=model, precisions=parse_precisions(precisions), output_dir=output_dir, weights=weights,
                         input_size=tuple(input_size) if input_size else None,  # type: ignore[arg-type]
                         calib_dir=calib, holdout_dir=holdout, val_dir=val, reuse=reuse, rounds=rounds, profile=prof)
    show = not quiet and not as_json

    def log(msg: str) -> None:
        if show:
            err.print(escape(msg), highlight=False)

    with progress_bar(show) as progress:
        run = run_bench(config, progress=progress, log=log, invocation=command_line(), report_dir=report)
    result, written = run.to_dict(), run.report_files
    for w in result["warnings"]:
        warn(w)
    if as_json:
        print_json({**result, "report_files": {k: str(v) for k, v in written.items()} if written else None})
    elif csv:
        print_csv(result)
    elif not quiet:
        print_bench(result, wide=wide)
        if written:
            out.print(f"report: {escape(str(written['html']))}")


def print_bench(result: dict[str, Any], wide: bool = False) -> None:
    from ..report import format_rows, summary_rows, table_notes
    from ..report.table import TERMINAL_COLUMNS

    batches = [r["batch"] for r in result["entries"][0]["profile"]["runs"]]
    cols = None if wide else TERMINAL_COLUMNS
    for b in batches:
        rows = summary_rows(result, batch=b)
        # by default the compact cells: units in the headers, so that the main columns fit 100 terminal columns
        headers, cells = format_rows(rows, cols, hide_empty=not wide, compact=not wide)
        table = Table(title=f"{escape(result['title'])}, batch {b} (ratios against {result['baseline']})")
        for i, h in enumerate(headers):
            # numbers are never cut: a cell that does not fit folds onto a second line
            table.add_column(escape(h), justify="left" if i == 0 else "right", overflow="fold", no_wrap=i == 0)
        for row in cells:
            table.add_row(*(escape(c) for c in row))
        out.print(table)
        for note in table_notes(rows, cols, hide_empty=not wide, compact=not wide):
            out.print(escape(note), highlight=False)
    ran = [(e["label"], e["profile"]["model"]["inference_precision"]["label"]) for e in result["entries"]
           if e["profile"]["model"].get("inference_precision")]
    if ran:  # OpenVINO picks its own float precision (bf16 where the CPU has it): what ran is said, read back
        out.print("precision that ran on OpenVINO: " + "; ".join(f"{k} -> {escape(v)}" for k, v in ran), highlight=False)
    reused = [e["label"] for e in result["entries"] if e.get("reused")]
    if reused:
        out.print(f"reused from the output folder: {', '.join(reused)} (sidecars match)")


def print_csv(result: dict[str, Any]) -> None:
    import csv
    import sys

    from ..report import format_rows, summary_rows

    w = csv.writer(sys.stdout)
    for i, b in enumerate(r["batch"] for r in result["entries"][0]["profile"]["runs"]):
        headers, cells = format_rows(summary_rows(result, batch=b))
        if i == 0:
            w.writerow(["batch", *headers])
        for row in cells:
            w.writerow([b, *row])
