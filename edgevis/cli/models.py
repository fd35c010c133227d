"""``edgevis models``: the catalog with its figures."""

from __future__ import annotations

import typer
from rich.table import Table

from .common import out, print_json, user_errors


@user_errors
def models(
    pattern: str = typer.Argument(None, help="Shell-style filter, e.g. 'lsnet_*'."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
    show_all: bool = typer.Option(False, "--all", help="Also list the small test_* models used as trained fixtures."),
) -> None:
    """List the catalog: input size, preprocessing, parameters, GFLOPs, paper."""
    from ..catalog import list_models, model_info

    infos = [model_info(n) for n in list_models(pattern, include_fixtures=show_all)]
    if as_json:
        print_json([i.to_dict() for i in infos])
        return
    table = Table(title="edgevis catalog", show_lines=False)
    for col in ("model", "family", "params (M)", "GFLOPs", "input", "interp.", "crop", "mean / std", "paper"):
        table.add_column(col, justify="right" if col in ("params (M)", "GFLOPs", "crop") else "left",
                         no_wrap=col == "model")
    for i in infos:
        ms = "imagenet" if (i.mean, i.std) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)) else f"{i.mean}/{i.std}"
        table.add_row(i.name, i.family, f"{i.params_m:.1f}", f"{i.gflops:.1f}", f"{i.input_size[0]}x{i.input_size[1]}",
                      i.interpolation, f"{i.crop_pct:.3f}", ms, i.paper)
    out.print(table)
