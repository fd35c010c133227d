"""Build catalog models: ``create_model(name, weights=...)`` and deploy form."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..core.errors import EdgevisError, WeightsError
from ..core.files import sha256_file
from .registry import ModelInfo, _entry, with_input_size, with_num_classes
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


# the seed of a catalog model built without weights: unseeded, two exports of lsnet_t were two different models
# (INT8 top-1 agreement on the bundled photos anywhere from 12 % to 67 %, run to run)
RANDOM_INIT_SEED = 0


def create_model(
    name: str,
    weights: str | os.PathLike[str] | None = None,
    *,
    num_classes: int | None = None,
    input_size: tuple[int, int] | None = None,
    deploy: bool = False,
    seed: int | None = RANDOM_INIT_SEED,
) -> torch.nn.Module:
    """Build ``name`` in eval mode, load ``weights`` (strict), optionally in deploy form.

    With ``weights`` and no ``num_classes``, the number of classes is read from the
    checkpoint's classifier (``ModelInfo.classifier``), so a model fine-tuned on
    another label set loads as it is.

    The returned module carries ``edgevis_info`` (its :class:`ModelInfo`, with
    the input size and number of classes it was built for) and ``edgevis_weights``
    (``{"path", "sha256"}`` or ``None`` for random init).

    Without ``weights`` the random init is drawn from ``seed`` with the caller's RNG left as it was;
    ``seed=None`` draws it from the caller's RNG instead (the digits recipe seeds that itself, and its
    training then reads the RNG where the init left it).
    """
    entry = _entry(name)
    info: ModelInfo = entry.info
    if input_size is not None:
        info = with_input_size(info, input_size)
    if weights is not None and str(weights) == BUILTIN:
        weights = resolve_builtin_weights(name)
    sd = None
    if weights is not None:
        sd = read_checkpoint(weights)
        if entry.remap_state_dict is not None:
            sd = entry.remap_state_dict(sd)
        if num_classes is None:
            num_classes = checkpoint_num_classes(sd, info)
    if num_classes is not None:
        if num_classes < 1:
            raise EdgevisError(f"num_classes must be >= 1 (got {num_classes})")
        info = with_num_classes(info, num_classes)
    kwargs = dict(info.kwargs)
    kwargs["num_classes"] = info.num_classes
    kwargs["img_size"] = info.input_size
    try:
        if weights is None and seed is not None:  # seeded: the same command gives the same file (and figures)
            with torch.random.fork_rng(devices=[]):  # the caller's own RNG state is left as it was
                torch.manual_seed(seed)
                model = entry.builder(**kwargs)
        else:
            model = entry.builder(**kwargs)
    except ValueError as e:  # builders reject sizes their architecture cannot take
        raise EdgevisError(f"cannot build {name} for input size {info.input_size[0]}x{info.input_size[1]}: {e}") from None
    model.eval()
    weights_meta = None
    if weights is not None and sd is not None:
        load_state_dict_strict(model, sd, name, str(weights))  # already remapped above
        model.eval()
        weights_meta = {"path": str(Path(weights)), "sha256": sha256_file(weights)}
    if deploy:
        model = reparameterize(model)
    model.edgevis_info = info  # type: ignore[attr-defined]
    model.edgevis_weights = weights_meta  # type: ignore[attr-defined]
    return model


def checkpoint_num_classes(state_dict: dict[str, torch.Tensor], info: ModelInfo) -> int | None:
    """Rows of the checkpoint's classifier weight, or ``None`` when it has no such
    2-D tensor (strict loading then names what is wrong)."""
    w = state_dict.get(f"{info.classifier}.weight")
    if isinstance(w, torch.Tensor) and w.ndim == 2 and w.shape[0] > 0:
        return int(w.shape[0])
    return None


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
