"""``edgevis predict``: classify an image with an exported ONNX file (no torch needed)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from .common import out, print_json, user_errors, warn


@user_errors
def predict(
    model_file: Path = typer.Argument(..., help="ONNX file written by `edgevis export`."),
    image: Path = typer.Option(..., "--image", "-i", help="Image to classify (jpg, png, bmp, webp, ...)."),
    top: int = typer.Option(5, "--top", min=1, help="How many classes to show."),
    threads: int = typer.Option(0, "--threads", min=0, help="Intra-op threads (0: the runtime's default)."),
    runtime: str = typer.Option("ort", "--runtime", metavar="[ort|openvino]", help="ort (ONNX Runtime) or openvino (the ONNX file compiled by OpenVINO on the CPU)."),
    precision_hint: str = typer.Option("auto", "--precision-hint", metavar="[auto|f32|bf16]", help="openvino: the inference precision asked for; the one that ran is printed."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Top classes for one image, with the preprocessing recorded at export."""
    from ..runtimes.isolate import check_loads
    from ..runtimes.predict import predict_image

    check_loads(model_file)  # a native crash in ONNX Runtime becomes one error line
    from ..core.errors import EdgevisError

    if precision_hint != "auto" and runtime != "openvino":
        raise EdgevisError("--precision-hint applies to --runtime openvino")
    result = predict_image(model_file, image, top=top, threads=threads or None, runtime=runtime,
                           precision_hint=precision_hint)
    if result.get("unverified"):
        warn(result["unverified"])
    if result.get("weights") == "random-init":  # the classes below would read as a verdict on the image
        warn(f"{model_file.name} was exported without --weights: its weights are random, so these classes say "
             "nothing about the image")
    if as_json:
        print_json(result)
        return
    where = f" (OpenVINO CPU, {result['precision']['label']})" if result["precision"] else ""
    table = Table(title=escape(f"{result['model'] or model_file.name} on {image.name}{where}"))
    table.add_column("rank", justify="right")
    table.add_column("class", justify="right")
    table.add_column("name")
    table.add_column("prob.", justify="right")
    for i, p in enumerate(result["top"], 1):
        table.add_row(str(i), str(p["index"]), escape(p["name"]), f"{p['probability']:.4f}")
    out.print(table)
