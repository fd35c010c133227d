"""Value types passed between pipeline stages (no torch import here)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes the model's input tensor (timm conventions).

    The image is resized so that its shorter side is ``input_size / crop_pct``,
    center-cropped to ``input_size``, scaled to [0, 1] and normalized.
    """

    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"
    crop_pct: float = 0.875

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocess":
        return cls(
            input_size=tuple(int(v) for v in d["input_size"]),  # type: ignore[arg-type]
            mean=tuple(float(v) for v in d["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in d["std"]),  # type: ignore[arg-type]
            interpolation=str(d.get("interpolation", "bicubic")),
            crop_pct=float(d.get("crop_pct", 0.875)),
        )


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class OnnxArtifact:
    """An ONNX file on disk and what produced it."""

    path: Path
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def sidecar(self) -> Path:
        return sidecar_path(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "provenance": self.provenance,
        }


def precision_path(src: str | Path, precision: str) -> Path:
    """``NAME.<precision>.onnx`` beside ``NAME.fp32.onnx`` (or beside ``NAME.onnx``)."""
    p = Path(src)
    return p.with_name(p.name.replace(".fp32.onnx", "").replace(".onnx", "") + f".{precision}.onnx")


def derived_path(src: str | Path, tag: str, suffix: str = ".onnx") -> Path:
    """``NAME.<tag><suffix>`` beside ``NAME.onnx`` (a file made from it: ``.sim``, ``.ort-cpu``)."""
    p = Path(src)
    stem = p.name[:-5] if p.name.endswith(".onnx") else p.name
    return p.with_name(f"{stem}.{tag}{suffix}")


def sidecar_path(path: str | Path) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".json")


def read_sidecar(path: str | Path) -> dict[str, Any] | None:
    """The JSON sidecar beside ``path``, or ``None`` when there is none."""
    sc = sidecar_path(path)
    if not sc.is_file():
        return None
    try:
        return json.loads(sc.read_text())
    except (OSError, ValueError):
        return None
