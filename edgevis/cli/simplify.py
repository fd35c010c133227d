"""``edgevis simplify``: onnxsim (onnxslim as fallback) with Q/DQ and integer-only regions protected."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .common import out, print_json, spinner, user_errors, warn


@user_errors
def simplify(
    model_file: Path = typer.Argument(..., help="An ONNX file."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Where to write (default: NAME.sim.onnx beside it)."),
    tool: str = typer.Option("auto", "--tool", metavar="[auto|onnxsim|onnxslim]", help="auto (onnxsim, then onnxslim), onnxsim or onnxslim."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and warnings."),
) -> None:
    """Fold constants and remove dead and duplicate nodes, leaving Q/DQ pairs and integer-only graphs as they
    are; the result is checked against the input on ONNX Runtime before it is written."""
    from ..core.errors import EdgevisError
    from ..graph.simplify import TOOLS, simplify_file

    if tool not in ("auto", *TOOLS):
        raise EdgevisError(f"unknown --tool {tool!r}; use auto, onnxsim or onnxslim")
    tools = TOOLS if tool == "auto" else (tool,)
    show = not quiet and not as_json
    from ..runtimes.isolate import check_loads

    with spinner("simplifying...", show):
        check_loads(model_file)  # a native crash in ONNX Runtime becomes one error line
        r = simplify_file(model_file, output, tools=tools)
    for w in r.warnings:
        warn(w)
    if as_json:
        print_json(r.to_dict())
        return
    if quiet:
        return
    res = r.result
    table = Table(title=f"{model_file.name}: {res.tool}" + (f" ({res.reason})" if res.reason else ""))
    for c in ("", "before", "after"):
        table.add_column(c, justify="right" if c else "left")
    table.add_row("nodes", str(sum(res.before.values())), str(sum(res.after.values())))
    for op, a, b in res.op_changes():
        table.add_row(f"  {op}", str(a), str(b))
    table.add_row("file size", _mb(r.source.stat().st_size), _mb(r.path.stat().st_size))
    out.print(table)
    for a in res.attempts:
        if a["result"] != "used":
            out.print(f"  {a['tool']} {a['result']}: {a['reason']}", highlight=False)
    prot = res.protected
    if prot.get("qdq_nodes"):
        out.print(f"  protected: {prot['qdq_nodes']} QuantizeLinear/DequantizeLinear nodes "
                  f"({prot['qdq_constants']} quantized constants) kept as they were")
    c = r.check
    if res.tool != "none":
        out.print(f"  ONNX Runtime check against the input on {c['inputs']} random inputs: "
                  + ("identical outputs" if c["exact"] else f"max|diff| {c['max_abs_diff']:.3g}, "
                                                            f"worst cosine {c['cosine_min']:.8f}"))
    out.print(f"[bold green]wrote[/] {r.path}")


def _mb(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"

