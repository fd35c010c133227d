"""One vocabulary across commands: ``trt`` and ``tensorrt`` name the same thing everywhere a user types them.

Each option keeps the spelling its files and reports have always recorded (quantization targets
``tensorrt``, runtimes and lint targets ``trt``); what a user types is mapped onto it here."""

from __future__ import annotations

_TENSORRT = {"trt", "tensorrt"}


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
