"""``edgevis lint``: what TensorRT (or ONNX Runtime on x86) will reject or run badly, found without a GPU."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .common import out, print_json, user_errors


@user_errors
def lint(
    model_file: Path = typer.Argument(..., help="An ONNX file."),
    target: str = typer.Option("trt", "--target", metavar="[trt|tensorrt|ort-cpu]", help="trt or tensorrt (TensorRT's parser and builder), or ort-cpu (x86 kernels)."),
    trt_version: str = typer.Option("10", "--trt-version", metavar="[10|11]", help="TensorRT major version on the device: 10 or 11."),
    precision: str = typer.Option(
        "auto", "--precision", metavar="[auto|fp32|fp16|int8]", help="Precision the engine will be built in: auto (int8 for Q/DQ files, else fp16), "
                                    "fp32, fp16 or int8."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 on warnings too, not only on errors."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Static checks that predict what the runtime will reject or run slowly; each finding names the node and
    what to do. Exit 1 when there is an error (with --strict: a warning)."""
    from ..graph.inspect import load_onnx
    from ..graph.lint import lint_model

    from ..core.names import as_lint_target

    target = as_lint_target(target)
    report = lint_model(load_onnx(model_file), target, trt_version=trt_version, precision=precision)
    if as_json:
        print_json({"file": str(model_file), **report.to_dict()})
    else:
        what = (f"TensorRT {report.settings['trt_version']}" if target == "trt" else "ONNX Runtime x86 CPU")
        if not report.findings:
            out.print(f"[bold green]{model_file}: no findings for {what}[/] ({report.settings['precision']})")
        else:
            table = Table(title=f"{model_file.name} for {what} ({report.settings['precision']}): "
                                f"{report.errors} error(s), {report.warnings} warning(s)", show_lines=True)
            for c in ("", "rule", "node", "finding", "what to do"):
                table.add_column(c)
            colors = {"error": "bold red", "warning": "yellow", "info": "cyan"}
            for f in report.findings:
                node = f.nodes[0] + (f" (+{len(f.nodes) - 1} more)" if len(f.nodes) > 1 else "")
                table.add_row(f"[{colors[f.severity]}]{f.severity}[/]", f.rule, node, f.message, f.fix)
            out.print(table)
    if report.errors or (strict and report.warnings):
        raise typer.Exit(code=1)
