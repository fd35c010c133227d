"""``edgevis evaluate``: top-1/top-5 accuracy of model files on labelled images."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from .common import out, print_json, progress_bar, user_errors, warn


@user_errors
def evaluate(
    models: list[Path] = typer.Argument(..., help="ONNX files (the first is the reference for agreement, e.g. FP32)."),
    val: Path = typer.Option(..., "--val", help="Labelled images: one sub-folder per class (class index from "
                                                "classes.txt, else sorted folder names)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="ONNX Runtime intra-op threads."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and warnings."),
) -> None:
    """Top-1 and top-5 accuracy (with 95 % intervals) of each model on labelled images, and each one's top-1
    agreement with the first."""
    from ..profile.accuracy import evaluate_files

    show = not quiet and not as_json
    with progress_bar(show) as progress:
        result = evaluate_files([str(m) for m in models], val, progress=progress, threads=threads)
    for w in result["warnings"]:
        warn(w)
    if as_json:
        print_json(result)
        return
    if not quiet:
        print_accuracy(result)


def print_accuracy(result: dict[str, Any]) -> None:
    """The accuracy table of ``evaluate``, and of export/quantize with --val (rows named by precision there)."""
    by_precision = all("precision" in m for m in result["models"])
    first = result["models"][0].get("precision", "the first") if by_precision else "the first"
    t = Table(title=f"accuracy on {escape(result['val'])} ({result['models'][0]['images']} images; class index: "
                    f"{escape(result['class_index'])})")
    for c in ("precision" if by_precision else "model", "top-1", "95 % interval", "top-5",
              f"top-1 agreement with {first}"):
        t.add_column(c, justify="left" if c in ("model", "precision") else "right")
    for m in result["models"]:
        lo, hi = m["top1_ci95"]
        agree = m.get("top1_agreement")
        # precisions as the other tables spell them (integer-only; the JSON keeps the artifact key integer_only)
        t.add_row(escape(m["precision"].replace("_", "-") if by_precision else Path(m["model"]).name), f"{m['top1']:.2%}",
                  f"{lo:.1%} – {hi:.1%}", f"{m['top5']:.2%}",
                  f"{agree['value']:.2%}" if agree else "reference" if len(result["models"]) > 1 else "—")
    out.print(t)
