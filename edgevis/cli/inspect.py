"""``edgevis inspect``: what is inside an ONNX file, and proof that it is integer-only."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import out, print_json, user_errors


@user_errors
def inspect(
    model_file: Path = typer.Argument(..., help="An ONNX file."),
    integer_only: bool = typer.Option(
        False, "--integer-only",
        help="Check that no floating-point tensor sits between the input QuantizeLinear and the output "
             "DequantizeLinear; exit 1 when one does."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Op counts, inputs and outputs of an ONNX file; with --integer-only, the float-free proof."""
    from ..graph.inspect import META_PROVENANCE, load_onnx, op_histogram, read_json_metadata

    model = load_onnx(model_file)

    def io(vs) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
        from onnx import TensorProto

        return [{"name": v.name, "type": TensorProto.DataType.Name(v.type.tensor_type.elem_type),
                 "shape": [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                           for d in v.type.tensor_type.shape.dim]} for v in vs]

    prov = read_json_metadata(model, META_PROVENANCE) or {}
    report = {"file": str(model_file), "nodes": len(model.graph.node), "ops": op_histogram(model),
              "inputs": io(model.graph.input), "outputs": io(model.graph.output),
              "opset": {o.domain or "ai.onnx": o.version for o in model.opset_import},
              "precision": prov.get("precision"), "model": prov.get("model")}
    check = None
    if integer_only:
        from ..graph.integer_check import check_integer_only

        check = check_integer_only(model)
        report["integer_only"] = check.to_dict()
    if as_json:
        print_json(report)
    else:
        out.print(f"{model_file}: {report['nodes']} nodes, opset {report['opset']}"
                  + (f", {report['precision']}" if report["precision"] else ""))
        for k in ("inputs", "outputs"):
            for v in report[k]:  # type: ignore[attr-defined]
                out.print(f"  {k[:-1]} {v['name']}: {v['type']} {v['shape']}")
        out.print("  ops: " + ", ".join(f"{k} {n}" for k, n in report["ops"].items()))  # type: ignore[attr-defined]
        if check is not None:
            if check.ok:
                out.print(f"[bold green]integer-only:[/] yes - all {check.integer_tensors} tensors between "
                          f"{check.quantize_nodes} QuantizeLinear and {check.dequantize_nodes} DequantizeLinear are integers")
            else:
                out.print("[bold red]integer-only: no[/]")
                for p in check.problems:
                    out.print(f"  - {p}", highlight=False)
    if check is not None and not check.ok:
        raise typer.Exit(code=1)
