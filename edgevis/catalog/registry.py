"""The model registry: one table of names -> (builder, metadata).

Model files register their variants with :func:`register_model`. Metadata lives
beside the architecture, not in it (timm's ``default_cfg`` habit). This module
imports no torch itself; the model files are imported on first use.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ..core.errors import UnknownModelError
from ..core.types import Preprocess

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelInfo:
    """What a deployment engineer needs to know about a catalog entry.

    ``params_m`` and ``gflops`` are the figures published by the model's
    authors (ImageNet-1k classifier at ``input_size``); the registry test checks
    ``params_m`` against the parameters our implementation actually has.

    ``fixture`` marks small models that exist for tests (timm's ``test_*``
    habit): trained in seconds on the bundled digits so that numbers measured
    on them mean something. Nobody publishes figures for them, so their
    ``params_m`` / ``gflops`` are our own counts (GMACs at ``input_size``).
    Listings hide them unless asked.

    ``classifier`` names the final linear layer; a checkpoint whose
    ``<classifier>.weight`` has another number of rows builds the model with
    that many classes.
    """

    name: str
    family: str
    paper: str
    params_m: float
    gflops: float
    input_size: tuple[int, int] = (224, 224)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    num_classes: int = 1000
    classifier: str = "head"
    weights_source: str = ""
    fixture: bool = False
    # model-specific keyword arguments passed to the builder
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess(self.input_size, self.mean, self.std, self.interpolation, self.crop_pct)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": self.family,
            "paper": self.paper,
            "params_m": self.params_m,
            "gflops": self.gflops,
            "input_size": list(self.input_size),
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "crop_pct": self.crop_pct,
            "num_classes": self.num_classes,
            "classifier": self.classifier,
            "weights_source": self.weights_source,
            "fixture": self.fixture,
        }


@dataclass(frozen=True)
class _Entry:
    info: ModelInfo
    builder: Callable[..., Any]
    # maps a loaded checkpoint's state dict onto our parameter names (identity by default)
    remap_state_dict: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # where an installed package ships real weights for this model (``--weights builtin``)
    builtin_weights: Callable[[], Any] | None = None


_REGISTRY: dict[str, _Entry] = {}


def register_model(
    info: ModelInfo,
    builder: Callable[..., Any],
    remap_state_dict: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    builtin_weights: Callable[[], Any] | None = None,
) -> None:
    if info.name in _REGISTRY:
        raise ValueError(f"model {info.name!r} registered twice")
    _REGISTRY[info.name] = _Entry(info, builder, remap_state_dict, builtin_weights)


def _load_families() -> None:
    # Model files register their variants on import. They import torch, so the
    # registry loads them on first use rather than at ``import edgevis``.
    from . import families  # noqa: F401


def list_models(pattern: str | None = None, *, include_fixtures: bool = False) -> list[str]:
    """Registered names, sorted, optionally filtered by a shell-style ``pattern``.

    Test fixtures (``ModelInfo.fixture``) are left out unless ``include_fixtures``:
    they are not deployment candidates, but tests parametrized over the registry
    want them.
    """
    _load_families()
    names = sorted(n for n, e in _REGISTRY.items() if include_fixtures or not e.info.fixture)
    if pattern:
        import fnmatch

        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def suggest(name: str, n: int = 3) -> list[str]:
    _load_families()
    return difflib.get_close_matches(name, list(_REGISTRY), n=n, cutoff=0.5)


def _entry(name: str) -> _Entry:
    _load_families()
    if name not in _REGISTRY:
        close = suggest(name)
        hint = f"; did you mean {', '.join(close)}?" if close else "; run `edgevis models` for the list"
        raise UnknownModelError(f"unknown model {name!r}{hint}")
    return _REGISTRY[name]


def model_info(name: str) -> ModelInfo:
    return _entry(name).info


def check_name(name: str) -> None:
    """:class:`UnknownModelError` (with close names) unless ``name`` is registered; a catalog name is checked
    against :mod:`edgevis.catalog.index` without importing the model files and torch."""
    from .index import NAMES

    if name not in NAMES and name not in _REGISTRY:
        _entry(name)  # registered since (or not at all: the error, with close names)


def has_builtin_weights(name: str) -> bool:
    """True when an installed package ships real weights for ``name``."""
    e = _entry(name)
    return e.builtin_weights is not None and e.builtin_weights() is not None


def with_input_size(info: ModelInfo, size: tuple[int, int]) -> ModelInfo:
    return replace(info, input_size=(int(size[0]), int(size[1])))


def with_num_classes(info: ModelInfo, num_classes: int) -> ModelInfo:
    return replace(info, num_classes=int(num_classes))
