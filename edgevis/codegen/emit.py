"""``emit_c``: an integer-only ONNX file -> a dependency-free C99 library (``edgevis codegen``).

Writes, all or nothing (temporary files renamed together at the end):

* ``NAME.h``: the entry point ``int NAME_run(const int8_t *input, int32_t *logits, void *arena)``
  and every size as a macro (input shape, classes, arena bytes, weight bytes), the input and
  output scales as exact dyadic integers (``M * 2**-SHIFT``: a float32 scale is one);
* ``NAME.c``: the kernels and the schedule, integers only;
* ``NAME_weights.c``: the constant arrays;
* ``NAME_input.c``: float pixels -> the int8 input (the only file with float, outside the model);
* ``NAME.c.json``: the sidecar (source and its sha256, edgevis version, sizes, the arena plan).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import EdgevisError
from ..core.files import atomic_outputs, ensure_writable_dir, sha256_file
from .ckernels import PRELUDE
from .cinput import input_source
from .cwriter import CWriter, weights_source
from .model import CodegenError, IntGraph, read_integer_graph
from .schedule import ALIGN, Plan, check_plan, schedule
from .split16 import merge_split_convs


@dataclass(frozen=True)
class CodegenConfig:
    name: str | None = None  # C identifier prefix; default: the model name from the file or its sidecar

    def __post_init__(self) -> None:
        if self.name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", self.name):
            raise EdgevisError(f"--name must be a C identifier (got {self.name!r:.70})")


@dataclass(frozen=True)
class CodegenResult:
    name: str
    out_dir: Path
    files: dict[str, Path]
    input_shape: tuple[int, ...]
    classes: int
    arena_bytes: int
    intermediate_bytes: int
    weight_bytes: int
    steps: int
    source: Path
    plan: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "out_dir": str(self.out_dir), "files": {k: str(v) for k, v in self.files.items()},
                "input_shape": list(self.input_shape), "classes": self.classes, "arena_bytes": self.arena_bytes,
                "intermediate_bytes": self.intermediate_bytes, "weight_bytes": self.weight_bytes,
                "steps": self.steps, "source": str(self.source), "plan": self.plan}


def dyadic_of_float32(v: float) -> tuple[int, int]:
    """``(m, shift)`` with ``v == m * 2**-shift`` exactly (a float32 has a 24-bit significand)."""
    if not (v > 0 and math.isfinite(v)):
        raise CodegenError(f"scale {v} is not a positive finite number")
    m, e = math.frexp(v)
    mi, shift = int(m * (1 << 24)), 24 - e
    while mi % 2 == 0 and shift > 0:
        mi //= 2
        shift -= 1
    if shift < 0:
        mi, shift = mi << -shift, 0
    return mi, shift


def validate_file(path: Path) -> Any:
    """The loaded model of an integer-only file whose sidecar describes it; a CodegenError otherwise."""
    from ..core.onnxfile import load_onnx
    from ..core.sidecar import load_sidecar
    from ..graph.integer_check import check_integer_only

    if not path.is_file():
        raise CodegenError(f"no such file: {path}")
    model = load_onnx(path)
    rep = check_integer_only(model)
    if not rep.ok:
        raise CodegenError(f"{path.name} is not an integer-only model ({rep.problems[0] if rep.problems else 'no '}"
                           f"); make one with `edgevis export --integer-only`")
    side = load_sidecar(path)
    if side.missing:
        raise CodegenError(f"{path.name} has no sidecar ({side.path.name}): cannot tell how it was made")
    if not side.ok:
        raise CodegenError(f"{path.name}: its sidecar {side.path.name} is unreadable ({side.problem})")
    if side.data.get("sha256") != sha256_file(path):
        raise CodegenError(f"{path.name}: its sidecar {side.path.name} describes another file (sha256 differs)")
    if side.data.get("precision") != "integer-only":
        raise CodegenError(f"{path.name}: its sidecar says precision {side.data.get('precision')!r}, not integer-only")
    return model, side.data


def _c_name(text: str) -> str:
    n = re.sub(r"[^A-Za-z0-9_]", "_", text) or "model"
    return ("m_" + n if n[0].isdigit() else n)[:64]


def emit_c(onnx_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
           config: CodegenConfig = CodegenConfig()) -> CodegenResult:
    """Write the C library of the integer-only file ``onnx_path`` into ``out_dir`` (see the module doc)."""
    from .. import __version__

    src = Path(onnx_path)
    model, side = validate_file(src)
    stem = src.name.split(".")[0]
    name = config.name or _c_name(str(side.get("model") or stem))
    g = read_integer_graph(src, model)
    merge_split_convs(g)  # a 16-bit activation's two 8-bit convolutions as one (split16.py)
    plan = schedule(g)
    check_plan(plan, g)
    w = CWriter(g, plan, name)
    for s in plan.steps:
        w.step(s)
    wtext, decls, wbytes = weights_source(name, w.weights)
    classes = g.tensors[g.logits].shape[-1] if g.tensors[g.logits].shape else 1
    header = _header(name, g, plan, wbytes, classes, src, side)
    ctext = _model_source(name, w, decls, plan)
    itext = input_source(name, side.get("preprocess") or {}, g)
    out = ensure_writable_dir(out_dir)  # only now: a file the emitter refuses leaves no folder behind
    files = {"header": out / f"{name}.h", "model": out / f"{name}.c", "weights": out / f"{name}_weights.c",
             "input": out / f"{name}_input.c"}
    sidecar = out / f"{name}.c.json"
    texts = {"header": header, "model": ctext, "weights": wtext, "input": itext}
    record = {"kind": "c-library", "model": side.get("model"), "precision": "integer-only", "source": str(src),
              "source_sha256": sha256_file(src), "edgevis": __version__, "name": name,
              "entry_point": f"int {name}_run(const int8_t *input, int32_t *logits, void *arena)",
              "input_shape": list(g.tensors[g.input_int8].shape), "classes": classes,
              "input_scale": g.input_scale, "output_scale": g.output_scale,
              "arena": {**plan.to_dict(), "align": ALIGN}, "weight_bytes": wbytes,
              "preprocess": side.get("preprocess"), "files": {k: v.name for k, v in files.items()}}
    with atomic_outputs(*files.values(), sidecar) as tmps:
        for (key, _), tmp in zip(files.items(), tmps):
            tmp.write_text(texts[key])
        import hashlib

        record["sha256"] = {files[k].name: hashlib.sha256(texts[k].encode()).hexdigest() for k in files}
        tmps[-1].write_text(json.dumps(record, indent=2) + "\n")
    return CodegenResult(name, out, {**files, "sidecar": sidecar}, tuple(g.tensors[g.input_int8].shape), classes,
                         plan.arena_bytes, plan.intermediate_bytes, wbytes, len(plan.steps), src, plan.to_dict())


def _header(name: str, g: IntGraph, plan: Plan, wbytes: int, classes: int, src: Path, side: dict[str, Any]) -> str:
    N = name.upper()
    shape = g.tensors[g.input_int8].shape
    im, ish = dyadic_of_float32(g.input_scale)
    om, osh = dyadic_of_float32(g.output_scale)
    lines = [f"/* {name}.h: the integer-only {side.get('model') or name} as dependency-free C99. Generated by edgevis "
             f"from {src.name}. */",
             f"#ifndef {N}_H", f"#define {N}_H", "#include <stdint.h>", "",
             f"#define {N}_INPUT_SHAPE {{{', '.join(str(d) for d in shape)}}}",
             f"#define {N}_INPUT_RANK {len(shape)}",
             f"#define {N}_INPUT_SIZE {g.tensors[g.input_int8].size}  /* int8 elements */",
             *(f"#define {N}_INPUT_{k} {v}" for k, v in zip("NCHW", shape) if len(shape) == 4),
             f"#define {N}_CLASSES {classes}",
             f"#define {N}_LOGITS_SIZE {g.tensors[g.logits].size}  /* int32 elements */",
             f"#define {N}_ARENA_BYTES {plan.arena_bytes}  /* scratch the caller reserves (no malloc) */",
             f"#define {N}_ARENA_ALIGN {ALIGN}  /* the arena's address must be a multiple of this */",
             f"#define {N}_INTERMEDIATE_BYTES {plan.intermediate_bytes}  /* every intermediate side by side */",
             f"#define {N}_WEIGHT_BYTES {wbytes}  /* constant arrays in {name}_weights.c */",
             "/* float pixel value (after normalization) = int8 input * M / 2**SHIFT; quantize with",
             "   round-half-even(value / scale) clipped to [-128, 127] (see " + f"{name}_input.c) */",
             f"#define {N}_INPUT_SCALE_M {im}", f"#define {N}_INPUT_SCALE_SHIFT {ish}",
             "/* logit = int32 logit * M / 2**SHIFT (the order of the logits needs no scale at all) */",
             f"#define {N}_OUTPUT_SCALE_M {om}", f"#define {N}_OUTPUT_SCALE_SHIFT {osh}", "",
             "/* Runs the model on one int8 input; writes the int32 logits. arena: {N}_ARENA_BYTES bytes aligned to",
             "   {N}_ARENA_ALIGN, owned by the caller (one per concurrent call). Returns 0, or -1 for a misaligned arena. */"
             .replace("{N}", N),
             f"int {name}_run(const int8_t *input, int32_t *logits, void *arena);", "",
             "/* From " + f"{name}_input.c (float, optional): pixels -> the int8 input */",
             f"void {name}_quantize_input(const float *x, int8_t *q);",
             f"void {name}_preprocess_rgb8(const uint8_t *rgb, int8_t *q);", "",
             f"#endif /* {N}_H */", ""]
    return "\n".join(lines)


def _model_source(name: str, w: CWriter, decls: str, plan: Plan) -> str:
    parts = [f"/* {name}.c: kernels and schedule of {name}. Integers only: no float, no malloc, no global mutable "
             "state. Generated by edgevis. */",
             "#include <stdint.h>", "#include <string.h>", f'#include "{name}.h"', "", decls, PRELUDE,
             *w.kernels.values(), "",
             f"#ifndef {name.upper()}_STEP_HOOK  /* profilers define it: called after each step */",
             f"#define {name.upper()}_STEP_HOOK(step, kind)", "#endif", "",
             f"int {name}_run(const int8_t *input, int32_t *logits, void *arena) {{",
             "    uint8_t *A = (uint8_t *)arena;",
             f"    if ((uintptr_t)arena % {ALIGN} != 0) return -1;",
             "    (void)A; (void)input;",
             *w.body, "    return 0;", "}", ""]
    return "\n".join(parts)
