"""One vocabulary across commands: ``trt`` and ``tensorrt`` name the same thing everywhere a user types them.

Each option keeps the spelling its files and reports have always recorded (quantization targets
``tensorrt``, runtimes and lint targets ``trt``); what a user types is mapped onto it here."""

from __future__ import annotations

import os
from pathlib import Path

_TENSORRT = {"trt", "tensorrt"}
# what trtexec, TensorRT's samples and edgevis name serialized engines; every command reads the same list
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


def is_engine(path: str | os.PathLike[str]) -> bool:
    """A TensorRT engine file, by its name."""
    return Path(path).suffix.lower() in ENGINE_SUFFIXES


def as_runtime(value: str) -> str:
    """``--runtime``: ort, trt (tensorrt accepted), auto."""
    v = value.strip().lower()
    return "trt" if v in _TENSORRT else v


def as_quant_target(value: str) -> str:
    """INT8 ``--target``: ort-cpu, tensorrt (trt accepted)."""
    v = value.strip().lower()
    return "tensorrt" if v in _TENSORRT else v


def as_lint_target(value: str) -> str:
    """lint ``--target``: trt (tensorrt accepted), ort-cpu."""
    v = value.strip().lower()
    return "trt" if v in _TENSORRT else v
