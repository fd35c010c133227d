"""Shared types, errors and file helpers. Imports nothing heavy."""

from .errors import (
    EdgevisError,
    ImageError,
    MissingDependencyError,
    OnnxFileError,
    OutputError,
    ParityError,
    UnknownModelError,
    WeightsError,
)
from .files import atomic_output, atomic_outputs, ensure_writable_dir, sha256_file, write_bytes_atomic, write_json_atomic
from .types import OnnxArtifact, Preprocess, TensorSpec, read_sidecar, sidecar_path

__all__ = [
    "EdgevisError", "ImageError", "MissingDependencyError", "OnnxFileError", "OutputError",
    "ParityError", "UnknownModelError", "WeightsError", "atomic_output", "atomic_outputs", "ensure_writable_dir",
    "sha256_file", "write_bytes_atomic", "write_json_atomic", "OnnxArtifact", "Preprocess",
    "TensorSpec", "read_sidecar", "sidecar_path",
]
