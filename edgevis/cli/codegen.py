"""``edgevis codegen``: an integer-only ONNX file -> a dependency-free C99 library."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import out, print_json, spinner, user_errors


@user_errors
def codegen(
    model_file: Path = typer.Argument(..., help="An integer-only ONNX file (NAME.integer_only.onnx) with its sidecar."),
    output: Path = typer.Option(..., "--output-dir", "--output", "-o", help="The folder to write the C library into."),
    name: Optional[str] = typer.Option(None, "--name", help="C identifier prefix (default: the model's name)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and warnings."),
) -> None:
    """Write NAME.h, NAME.c, NAME_weights.c (integers only: no float, no malloc, no global mutable state),
    NAME_input.c (float pixels -> int8 input) and the sidecar NAME.c.json, all or nothing."""
    from ..codegen import CodegenConfig, emit_c

    config = CodegenConfig(name=name)
    with spinner("generating C...", not quiet and not as_json):
        r = emit_c(model_file, output, config=config)
    if as_json:
        print_json(r.to_dict())
        return
    if quiet:
        return
    shape = "x".join(str(d) for d in r.input_shape)
    out.print(f"{r.name}: int8 input {shape}, {r.classes} int32 logits, {r.steps} steps")
    out.print(f"  arena {r.arena_bytes:,} bytes (all intermediates side by side: {r.intermediate_bytes:,}), "
              f"weights {r.weight_bytes:,} bytes")
    out.print(f"  entry point: int {r.name}_run(const int8_t *input, int32_t *logits, void *arena)", highlight=False)
    for f in r.files.values():
        out.print(f"[bold green]wrote[/] {f}")
