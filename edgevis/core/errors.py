"""The one family of errors a user can cause.

The CLI prints ``str(error)`` on one line and exits non-zero without a
traceback; anything that is not an :class:`EdgevisError` is our bug and keeps
its traceback.
"""

from __future__ import annotations


class EdgevisError(Exception):
    """Base class for every error caused by user input or environment."""

    exit_code = 2


class UnknownModelError(EdgevisError):
    """A model name that is not in the catalog."""


class WeightsError(EdgevisError):
    """A checkpoint that is missing, unreadable or for another architecture."""


class ImageError(EdgevisError):
    """A file that is not a readable image of a supported kind."""


class OnnxFileError(EdgevisError):
    """A file that is not a valid (or is a truncated) ONNX model."""


class PreprocessError(EdgevisError):
    """A preprocessing record (ONNX metadata or sidecar) that is malformed."""


class OrtError(OnnxFileError):
    """ONNX Runtime refused to load or run a model; the message names the file and ORT's reason."""


class NativeCrashError(OnnxFileError):
    """A native library (ONNX Runtime) crashed or hung on a file, caught in a child process."""


class OutputError(EdgevisError):
    """An output location that cannot be written."""


class ParityError(EdgevisError):
    """Two faces of the same model disagree beyond tolerance."""

    exit_code = 3


class MissingDependencyError(EdgevisError):
    """An optional dependency is not installed; the message names the extra."""


def first_line(e: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (its type name when it has none): libraries such as
    protobuf, ONNX Runtime and the exporters put pages of context after the line a user needs."""
    text = str(e).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    return line[:limit] if limit else line


def missing_dependency(module: str, extra: str | None = None, purpose: str = "") -> MissingDependencyError:
    what = f" (needed for {purpose})" if purpose else ""
    how = f"pip install 'edgevis[{extra}]'" if extra else f"pip install {module}"
    return MissingDependencyError(f"{module} is not installed{what}; install it with: {how}")
