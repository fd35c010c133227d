"""Integer-only models as dependency-free C: :func:`emit_c` (``edgevis codegen``)."""

from .emit import CodegenConfig, CodegenResult, emit_c
from .model import CodegenError

__all__ = ["CodegenConfig", "CodegenResult", "CodegenError", "emit_c"]
