"""The model catalog.

``list_models`` and ``model_info`` are cheap; ``create_model`` and
``reparameterize`` import torch on first use.
"""

from __future__ import annotations

from typing import Any

from .registry import ModelInfo, list_models, model_info, register_model, suggest

__all__ = ["ModelInfo", "create_model", "list_models", "model_info", "register_model", "reparameterize", "suggest"]


def __getattr__(name: str) -> Any:
    if name in ("create_model", "reparameterize"):
        from . import factory

        return getattr(factory, name)
    raise AttributeError(name)
