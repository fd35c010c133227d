"""``edgevis compare A B``: the same inputs through two files; where they diverge."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from .common import out, print_json, user_errors, warn


@user_errors
def compare(
    a: Path = typer.Argument(..., help="The reference file (e.g. FP32)."),
    b: Path = typer.Argument(..., help="The file to check against it (e.g. INT8, an ORT-optimized build, or a "
                                       "TensorRT engine (.engine/.plan/.trt) built from A: outputs only)."),
    inputs: Optional[Path] = typer.Option(None, "--inputs", help="Images, preprocessed as A records (default: random)."),
    random: int = typer.Option(4, "--random", help="How many random inputs (or at most how many --inputs images)."),
    atol: float = typer.Option(1e-4, "--atol", help="Absolute tolerance."),
    rtol: float = typer.Option(1e-3, "--rtol", help="Relative tolerance (of |A|)."),
    per_layer: bool = typer.Option(False, "--per-layer", help="Also compare every tensor both files name alike and "
                                                              "report the first ones beyond tolerance."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Run the same inputs through two model files: per output max abs/rel difference, cosine, top-1 agreement;
    with --per-layer, the first tensors where they diverge. Exit 1 when an output is beyond tolerance."""
    from ..core.errors import EdgevisError
    from ..graph.compare import Tolerance, compare_files

    if random < 1:
        raise EdgevisError(f"--random must be >= 1 (got {random})")
    if atol < 0 or rtol < 0:
        raise EdgevisError("--atol and --rtol must be >= 0")
    r = compare_files(a, b, images=inputs, random=random, tolerance=Tolerance(atol, rtol), per_layer=per_layer)
    for w in r.get("warnings", []):
        warn(w)
    if as_json:
        print_json(r)
    else:
        t = Table(title=f"{escape(a.name)} vs {escape(b.name)} on {escape(r['inputs'])}")
        for c in ("output", "shape", "max |diff|", "max rel diff", "cosine", "top-1 agreement", "within tolerance"):
            t.add_column(c, justify="left" if c == "output" else "right")
        for o in r["outputs"]:
            agree = o.get("top1_agreement")
            t.add_row(escape(o["name"]), "x".join(map(str, o["shape"])), f"{o['max_abs_diff']:.3g}",
                      f"{o['max_rel_diff']:.3g}", f"{o['cosine']:.6f}", "—" if agree is None else f"{agree:.1%}",
                      "yes" if o["within_tolerance"] else "[bold red]no[/]")
        out.print(t)
        pl = r.get("per_layer")
        if pl is not None:
            if pl["first_diverging"]:
                out.print(f"first tensors beyond tolerance ({pl['tensors_compared']} shared tensors, {pl['order']}):")
                for d in pl["first_diverging"]:
                    out.print(f"  {escape(d['tensor'])}: max |diff| {d['max_abs_diff']:.3g}, cosine {d['cosine']:.6f}")
            else:
                out.print(f"all {pl['tensors_compared']} shared tensors within tolerance")
    if not r["match"]:
        raise typer.Exit(code=1)
