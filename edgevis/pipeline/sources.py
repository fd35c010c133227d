"""Where a model comes from: the catalog, a user's torch factory, timm, or an ``nn.Module`` in hand.

Every source ends as a torch module carrying ``edgevis_info`` (a
:class:`~edgevis.catalog.registry.ModelInfo`: input size, mean/std, classes) and
``edgevis_weights`` (what identifies its weights), which is what the exporter reads.
Catalog names are left to the exporter (it builds them in deploy form); the others are
built here, checked before any work starts, and exported as they are.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..core.errors import EdgevisError, first_line
from ..core.types import Preprocess

_FACTORY = re.compile(r"^(?P<path>.+\.py):(?P<fn>[A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class PreprocessOptions:
    """Preprocessing given by the user (flags or Python); ``None`` fields are filled from what the
    model records, or from defaults where nothing is recorded. Typed, validated on use."""

    input_size: tuple[int, int] | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    interpolation: str | None = None
    crop_pct: float | None = None
    channel_order: str | None = None
    layout: str | None = None

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def check_against(self, recorded: Preprocess, what: str) -> None:
        """A flag that contradicts the record of ``what`` is an error, not a silent override."""
        rec = recorded.to_dict()
        for k, v in self.given().items():
            mine = list(v) if isinstance(v, tuple) else v
            theirs = rec[k]
            same = (all(abs(float(a) - float(b)) <= 1e-6 for a, b in zip(mine, theirs)) and len(mine) == len(theirs)
                    if isinstance(mine, list) else (abs(mine - theirs) <= 1e-6 if isinstance(mine, float) else mine == theirs))
            if not same:
                raise EdgevisError(f"--{k.replace('_', '-')} {_show(v)} contradicts the preprocessing {what} records "
                                   f"({_show(theirs)}); leave the flag out, or quantize a copy without that record")

    def resolve(self, *, base: Preprocess | None = None, require_norm: bool, what: str) -> Preprocess:
        """A complete :class:`Preprocess`: the options over ``base`` (or edgevis's defaults)."""
        if base is None and require_norm and (self.input_size is None or self.mean is None or self.std is None):
            missing = [f for f, v in (("--input-size", self.input_size), ("--mean", self.mean), ("--std", self.std))
                       if v is None]
            raise EdgevisError(f"{what} carries no preprocessing record; give {', '.join(missing)} (and, if they "
                               "differ from the defaults, --interpolation, --crop-pct, --channel-order)")
        merged = {**(base or Preprocess()).to_dict(), **{k: (list(v) if isinstance(v, tuple) else v)
                                                         for k, v in self.given().items()}}
        return Preprocess.from_dict(merged)


def _show(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return " ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
    return str(v)


@dataclass(frozen=True)
class ModelSource:
    """A resolved model request: its name, and (for non-catalog sources) the module to export."""

    name: str
    kind: str  # catalog | factory | timm | module
    module: Any = None  # torch.nn.Module for every kind but catalog
    detail: str = ""  # the factory spec or timm name, for the provenance

    @property
    def is_catalog(self) -> bool:
        return self.kind == "catalog"


def is_factory_spec(text: str) -> bool:
    return bool(_FACTORY.match(text))


def resolve_source(model: Any, *, name: str | None = None, weights: str | None = None,
                   preprocess: PreprocessOptions = PreprocessOptions(), num_classes: int | None = None) -> ModelSource:
    """``model`` as a :class:`ModelSource`; every user-caused problem is one :class:`EdgevisError`."""
    if isinstance(model, str) and not is_factory_spec(model) and not model.startswith("timm:"):
        if model.lower().endswith(".onnx"):  # what a user with an ONNX file tries first
            raise EdgevisError(f"{model} is an ONNX file; export takes a torch model (a catalog name, "
                               f"file.py:factory or timm:NAME); quantize an ONNX file with `edgevis quantize {model} "
                               "--int8`")
        if model.endswith(".py"):
            raise EdgevisError(f"--model {model} names no factory: give the function that returns your nn.Module, "
                               f"as {model}:make_model")
        from ..catalog.registry import check_name

        check_name(model)  # unknown names fail here, with close names, before torch is imported
        custom = {k for k in ("mean", "std", "interpolation", "crop_pct", "channel_order", "layout")
                  if getattr(preprocess, k) is not None}
        if custom:
            raise EdgevisError(f"{model} is a catalog model: its preprocessing is the catalog's "
                               f"(--{sorted(custom)[0].replace('_', '-')} applies to your own models only)")
        return ModelSource(model, "catalog")
    import torch

    if isinstance(model, torch.nn.Module):
        module, kind, detail = model, "module", type(model).__name__
        label = name or _snake(type(model).__name__)
        info_defaults: dict[str, Any] = {}
    elif isinstance(model, str) and model.startswith("timm:"):
        module, info_defaults = _timm(model[5:], num_classes)
        kind, detail, label = "timm", model[5:], name or model[5:]
    elif isinstance(model, str):
        module, kind, detail = _factory(model), "factory", model
        label = name or _FACTORY.match(model).group("fn")  # type: ignore[union-attr]
        info_defaults = {}
    else:
        raise EdgevisError(f"model must be a catalog name, 'file.py:factory', 'timm:NAME' or a torch.nn.Module "
                           f"(got {type(model).__name__})")
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", label):
        raise EdgevisError(f"model name {label!r} can only hold letters, digits, '_', '-' and '.' (it names the files)")
    weights_meta = None
    if weights is not None:
        from ..catalog.weights import load_state_dict_strict, read_checkpoint
        from ..core.files import sha256_file

        load_state_dict_strict(module, read_checkpoint(weights), label, str(weights))
        weights_meta = {"path": str(Path(weights)), "sha256": sha256_file(weights)}
    module.eval()
    spec = _preprocess_for(module, preprocess, info_defaults, label)
    classes = _num_classes(module, spec, label)
    from ..catalog.registry import ModelInfo

    n_params = sum(p.numel() for p in module.parameters()) / 1e6
    info = ModelInfo(name=label, family=kind if kind != "module" else "your module", paper="", params_m=round(n_params, 3),
                     gflops=0.0, input_size=spec.input_size, mean=spec.mean, std=spec.std,
                     interpolation=spec.interpolation, crop_pct=spec.crop_pct, num_classes=classes, classifier="")
    module.edgevis_info = info
    module.edgevis_preprocess = spec  # channel order and layout are not ModelInfo fields
    module.edgevis_weights = weights_meta or {"source": f"{kind}:{detail}", "sha256": state_dict_sha256(module)}
    return ModelSource(label, kind, module, detail)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() or "model"


def _factory(spec: str) -> Any:
    import torch

    m = _FACTORY.match(spec)
    assert m is not None
    path, fn = Path(m.group("path")), m.group("fn")
    if not path.is_file():
        raise EdgevisError(f"model factory file not found: {path} (from --model {spec})")
    mod_name = f"edgevis_user_model_{hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]}"
    try:
        loader = importlib.util.spec_from_file_location(mod_name, path)
        assert loader is not None and loader.loader is not None
        module = importlib.util.module_from_spec(loader)
        sys.modules[mod_name] = module
        loader.loader.exec_module(module)
    except Exception as e:  # the user's file: any error it raises is theirs
        sys.modules.pop(mod_name, None)
        raise EdgevisError(f"cannot import {path}: {type(e).__name__}: {first_line(e, 200)}") from None
    factory = getattr(module, fn, None)
    if not callable(factory):
        raise EdgevisError(f"{path} has no function {fn!r}" + ("" if factory is None else f" ({fn} is not callable)"))
    try:
        net = factory()
    except Exception as e:
        raise EdgevisError(f"{spec}() raised {type(e).__name__}: {first_line(e, 200)}") from None
    if not isinstance(net, torch.nn.Module):
        raise EdgevisError(f"{spec}() returned a {type(net).__name__}, not a torch.nn.Module")
    return net


def _timm(name: str, num_classes: int | None) -> tuple[Any, dict[str, Any]]:
    try:
        import timm  # optional: it needs torchvision, which a CPU-only torch pin may not have
    except Exception as e:
        raise EdgevisError(f"--model timm:{name} needs timm, which cannot be imported here ({first_line(e, 120)}); "
                           "pip install timm (it needs a torchvision matching your torch)") from None
    kwargs = {"num_classes": num_classes} if num_classes else {}
    try:
        net = timm.create_model(name, pretrained=False, **kwargs)
    except Exception as e:  # unknown name, bad kwargs
        raise EdgevisError(f"timm cannot build {name!r}: {first_line(e, 200)}") from None
    cfg = dict(getattr(net, "pretrained_cfg", None) or {})
    out: dict[str, Any] = {}
    if cfg.get("input_size"):
        out["input_size"] = tuple(int(v) for v in cfg["input_size"][1:])
    for k in ("mean", "std"):
        if cfg.get(k):
            out[k] = tuple(float(v) for v in cfg[k])
    if cfg.get("interpolation") in ("bicubic", "bilinear", "nearest"):
        out["interpolation"] = cfg["interpolation"]
    if cfg.get("crop_pct"):
        out["crop_pct"] = float(cfg["crop_pct"])
    return net, out


def _preprocess_for(module: Any, opts: PreprocessOptions, defaults: dict[str, Any], label: str) -> Preprocess:
    base = replace(Preprocess(), **defaults) if defaults else None
    if base is None and opts.input_size is None:
        raise EdgevisError(f"{label} is not a catalog model: give its input size (--input-size H W), and its "
                           "--mean/--std if they are not ImageNet's")
    spec = opts.resolve(base=base, require_norm=False, what=label)
    if spec.layout != "NCHW":
        raise EdgevisError("a torch model is exported with an NCHW input; --layout NHWC applies to ONNX files")
    return spec


def _num_classes(module: Any, spec: Preprocess, label: str) -> int:
    """Run one zero image through ``module``: it must give one (1, classes) tensor."""
    import torch

    h, w = spec.input_size
    try:
        with torch.no_grad():
            y = module(torch.zeros(1, 3, h, w))
    except Exception as e:
        raise EdgevisError(f"{label} fails on a 1x3x{h}x{w} input: {type(e).__name__}: {first_line(e, 200)}") from None
    if not isinstance(y, torch.Tensor):
        raise EdgevisError(f"{label} returns a {type(y).__name__}; edgevis exports image classifiers that return one "
                           "(batch, classes) tensor")
    if y.ndim != 2 or y.shape[0] != 1 or y.shape[1] < 1:
        raise EdgevisError(f"{label} returns a tensor of shape {tuple(y.shape)} for one image; edgevis exports image "
                           "classifiers that return (batch, classes)")
    return int(y.shape[1])


def state_dict_sha256(module: Any) -> str:
    """A hash of the module's parameters and buffers (names, shapes, bytes): its weights' identity."""
    import torch

    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        t = v.detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
