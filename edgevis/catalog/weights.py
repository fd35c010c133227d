"""Reading official checkpoints into catalog models.

Accepted layouts (the ones the official repositories publish): a bare state
dict, or one under ``model`` / ``state_dict`` / ``model_ema``; keys may carry a
``module.`` prefix from DistributedDataParallel. ``.safetensors`` files are read
when the ``safetensors`` package is installed.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch

from ..core.errors import WeightsError, first_line

_NESTED_KEYS = ("model", "state_dict", "model_ema", "model_state_dict")


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state dict inside a checkpoint file, as name -> tensor."""
    p = Path(path)
    if not p.exists():
        raise WeightsError(f"weights file not found: {p}")
    if not p.is_file():
        raise WeightsError(f"weights path is not a file: {p}")
    if p.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise WeightsError(f"{p} is a safetensors file; install it with: pip install safetensors") from None
        try:
            return dict(load_file(str(p)))
        except Exception as e:  # safetensors raises several types for a bad header
            raise WeightsError(f"corrupt safetensors file {p}: {_plain(first_line(e, 300))}") from None
    try:
        # weights_only keeps arbitrary code in a checkpoint from running; training scripts often store
        # their argparse.Namespace and numpy scalars (epoch, best accuracy) beside the weights: torch's
        # allow-list takes those, and nothing else
        with torch.serialization.safe_globals(_safe_globals()):
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        blocked = _blocked_global(e)
        if blocked:
            raise WeightsError(f"refused to load checkpoint {p}: it would call {blocked}, which is not data "
                               "(only tensors, numbers, strings and containers of them are loaded)") from None
        raise WeightsError(f"cannot read checkpoint {p} (corrupt, truncated or not a PyTorch file): "
                           f"{_plain(_torch_reason(e))}") from None
    except (zipfile.BadZipFile, EOFError, RuntimeError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, struct.error) as e:
        raise WeightsError(f"cannot read checkpoint {p} (corrupt, truncated or not a PyTorch file): "
                           f"{_plain(_torch_reason(e))}") from None
    except MemoryError:
        raise WeightsError(f"cannot read checkpoint {p}: out of memory") from None
    except OSError as e:
        raise WeightsError(f"cannot read checkpoint {p}: {e.strerror or e}") from None
    return _extract_state_dict(obj, p)


def _safe_globals() -> list[Any]:
    """What a checkpoint may construct besides tensors: argparse.Namespace, numpy scalars, dtypes and arrays
    (an array's elements are unpickled under the same allow-list)."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    return [argparse.Namespace, core.multiarray.scalar, core.multiarray._reconstruct, np.ndarray, np.dtype, *dtypes]


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _plain(text: str) -> str:
    """A message without terminal colour codes (torch puts bold escapes into its hints)."""
    return _ANSI.sub("", text)


def _blocked_global(e: BaseException) -> str | None:
    """The global torch's weights-only unpickler refused (``posix.system``), from its message."""
    m = re.search(r"(?:GLOBAL|global:?)\s+([A-Za-z_][\w.]*)", _plain(str(e)))
    return m.group(1).rstrip(".") if m else None


def _torch_reason(e: BaseException) -> str:
    """The line of torch's message that says what is wrong: not its advice to load with weights_only=False."""
    if isinstance(e, KeyError):
        # torch's legacy reader looks up the file's first pickled value as a magic number: a non-checkpoint
        # file fails with just that value ("174812789"), which says nothing to the user
        return f"no PyTorch header (read {_plain(str(e.args[0] if e.args else ''))[:40]!r} where one belongs)"
    lines = [ln.strip() for ln in _plain(str(e)).splitlines() if ln.strip()]
    useful = [ln for ln in lines if "weights_only" not in ln and "Weights only load failed" not in ln
              and "documentation of torch.load" not in ln]
    return (useful[0] if useful else type(e).__name__)[:300]


def _extract_state_dict(obj: Any, p: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict):
        for key in _NESTED_KEYS:
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{p} does not hold a state dict (name -> tensor), nor one under {'/'.join(_NESTED_KEYS)}")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_state_dict_strict(
    model: torch.nn.Module,
    state_dict: dict[str, torch.Tensor],
    model_name: str,
    source: str,
    remap: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    show: int = 5,
) -> None:
    """``load_state_dict(strict=True)`` with an error a user can act on."""
    if remap is not None:
        state_dict = remap(state_dict)
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:show])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:show])})")
        if mismatched:
            parts.append(f"{len(mismatched)} with other shapes (e.g. {'; '.join(mismatched[:show])})")
        raise WeightsError(
            f"{source} does not match {model_name}: it is a checkpoint for another architecture or variant: "
            + "; ".join(parts)
        )
    model.load_state_dict(state_dict, strict=True)
