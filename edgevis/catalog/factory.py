"""Build catalog models: ``create_model(name, weights=...)`` and deploy form."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..core.errors import EdgevisError, WeightsError
from ..core.files import sha256_file
from .registry import ModelInfo, _entry, with_input_size
from .weights import load_state_dict_strict, read_checkpoint


BUILTIN = "builtin"


def resolve_builtin_weights(name: str) -> Path:
    """The checkpoint an installed package ships for ``name`` (``--weights builtin``)."""
    entry = _entry(name)
    path = entry.builtin_weights() if entry.builtin_weights else None
    if path is None:
        hint = f" ({entry.info.weights_source})" if entry.builtin_weights else ""
        raise WeightsError(f"no built-in weights for {name}{hint}; pass a checkpoint file with --weights PATH"
                           + ("; the package that ships them is not installed" if entry.builtin_weights else ""))
    return Path(path)


def create_model(
    name: str,
    weights: str | os.PathLike[str] | None = None,
    *,
    num_classes: int | None = None,
    input_size: tuple[int, int] | None = None,
    deploy: bool = False,
) -> torch.nn.Module:
    """Build ``name`` in eval mode, load ``weights`` (strict), optionally in deploy form.

    The returned module carries ``edgevis_info`` (its :class:`ModelInfo`, with
    the input size it was built for) and ``edgevis_weights`` (``{"path", "sha256"}``
    or ``None`` for random init).
    """
    entry = _entry(name)
    info: ModelInfo = entry.info
    if input_size is not None:
        info = with_input_size(info, input_size)
    kwargs = dict(info.kwargs)
    kwargs["num_classes"] = info.num_classes if num_classes is None else num_classes
    kwargs["img_size"] = info.input_size
    try:
        model = entry.builder(**kwargs)
    except ValueError as e:  # builders reject sizes their architecture cannot take
        raise EdgevisError(f"cannot build {name} for input size {info.input_size[0]}x{info.input_size[1]}: {e}") from None
    model.eval()
    weights_meta = None
    if weights is not None and str(weights) == BUILTIN:
        weights = resolve_builtin_weights(name)
    if weights is not None:
        sd = read_checkpoint(weights)
        load_state_dict_strict(model, sd, name, str(weights), remap=entry.remap_state_dict)
        model.eval()
        weights_meta = {"path": str(Path(weights)), "sha256": sha256_file(weights)}
    if deploy:
        model = reparameterize(model)
    model.edgevis_info = info  # type: ignore[attr-defined]
    model.edgevis_weights = weights_meta  # type: ignore[attr-defined]
    return model


@torch.no_grad()
def reparameterize(model: torch.nn.Module) -> torch.nn.Module:
    """Deploy form: every submodule with a ``fuse()`` (BN folding, RepVGG merge)
    is replaced by what it returns. Works bottom-up, so composite blocks see
    their children's original structure. Returns the same module, in eval mode.
    """
    model.eval()

    def visit(parent: torch.nn.Module) -> None:
        for child_name, child in list(parent.named_children()):
            fuse = getattr(child, "fuse", None)
            if callable(fuse):
                fused = fuse()
                setattr(parent, child_name, fused)
            else:
                visit(child)

    visit(model)
    # model-level deploy steps that need the fused children (e.g. merging distillation heads)
    merge = getattr(model, "merge_heads", None)
    if callable(merge):
        merge()
    return model.eval()
