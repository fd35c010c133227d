"""Value types passed between pipeline stages (no torch import here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .sidecar import load_sidecar
from .sidecar import sidecar_path as sidecar_path  # re-exported: its historical home

# the largest input side a record or an export may ask for (the largest backbones take 1024; 8192 leaves room)
MAX_INPUT_SIDE = 8192
INTERPOLATIONS = ("bicubic", "bilinear", "nearest", "lanczos", "box", "hamming")
CHANNEL_ORDERS = ("RGB", "BGR")
LAYOUTS = ("NCHW", "NHWC")


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes the model's input tensor (timm conventions).

    The image is resized so that its shorter side is ``input_size / crop_pct``,
    center-cropped to ``input_size``, scaled to [0, 1] and normalized. ``channel_order``
    says whether the model takes RGB or BGR channels (mean/std are given in that order),
    ``layout`` whether one image is ``(3, H, W)`` (NCHW models) or ``(H, W, 3)`` (NHWC).
    """

    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    channel_order: str = "RGB"
    layout: str = "NCHW"

    def __post_init__(self) -> None:
        from .errors import PreprocessError

        if self.channel_order not in CHANNEL_ORDERS:
            raise PreprocessError(f"channel order must be RGB or BGR (got {self.channel_order!r:.40})")
        if self.layout not in LAYOUTS:
            raise PreprocessError(f"layout must be NCHW or NHWC (got {self.layout!r:.40})")

    def image_shape(self) -> tuple[int, int, int]:
        """The shape of one preprocessed image (no batch axis)."""
        h, w = self.input_size
        return (3, h, w) if self.layout == "NCHW" else (h, w, 3)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: Any) -> "Preprocess":
        """A record as written at export; :class:`~edgevis.core.errors.PreprocessError` naming the bad key
        when it is not one (wrong type, out of range, unknown interpolation)."""
        from .errors import PreprocessError

        if not isinstance(d, dict):
            raise PreprocessError(f"the preprocessing record is a {type(d).__name__}, not an object")

        def numbers(key: str, n: int, lo: float, hi: float, integer: bool = False) -> tuple:
            v = d.get(key)
            if v is None:
                raise PreprocessError(f"the preprocessing record has no {key!r}")
            if not isinstance(v, (list, tuple)) or len(v) != n:
                raise PreprocessError(f"preprocessing {key!r} must be a list of {n} numbers (got {v!r:.80})")
            for x in v:
                if isinstance(x, bool) or not isinstance(x, (int, float)) or (integer and x != int(x)) \
                        or not lo <= x <= hi:
                    kind = "integers" if integer else "numbers"
                    raise PreprocessError(f"preprocessing {key!r} must hold {kind} in [{lo:g}, {hi:g}] (got {v!r:.80})")
            return tuple(int(x) if integer else float(x) for x in v)

        size = numbers("input_size", 2, 1, MAX_INPUT_SIDE, integer=True)
        mean = numbers("mean", 3, -1e3, 1e3)
        std = numbers("std", 3, 1e-6, 1e3)
        interp = d.get("interpolation", "bicubic")
        if interp not in INTERPOLATIONS:
            raise PreprocessError(f"preprocessing 'interpolation' {interp!r:.40} is not one of {', '.join(INTERPOLATIONS)}")
        crop = d.get("crop_pct", 0.875)
        if isinstance(crop, bool) or not isinstance(crop, (int, float)) or not 0.25 <= crop <= 1.0:
            raise PreprocessError(f"preprocessing 'crop_pct' must be a number in [0.25, 1] (got {crop!r:.40})")
        order, layout = d.get("channel_order", "RGB"), d.get("layout", "NCHW")
        if order not in CHANNEL_ORDERS:
            raise PreprocessError(f"preprocessing 'channel_order' {order!r:.40} is not RGB or BGR")
        if layout not in LAYOUTS:
            raise PreprocessError(f"preprocessing 'layout' {layout!r:.40} is not NCHW or NHWC")
        return cls(input_size=size, mean=mean, std=std, interpolation=interp, crop_pct=float(crop),  # type: ignore[arg-type]
                   channel_order=order, layout=layout)


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


def read_sidecar(path: str | Path) -> dict[str, Any] | None:
    """The JSON sidecar beside ``path``, or ``None`` when there is none or it is unreadable (not JSON, not an
    object, a key of the wrong type: see :func:`edgevis.core.sidecar.load_sidecar`, which also says why)."""
    side = load_sidecar(path)
    return side.data if side.ok else None
