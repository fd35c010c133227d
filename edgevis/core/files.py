"""Atomic file writes and content hashes.

Every file edgevis writes goes through :func:`atomic_output`: the data lands in
a temporary file in the destination folder and is renamed over the target only
once complete, so an interrupted run never leaves a half-written model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import OutputError


def ensure_writable_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` if needed and check that files can be written in it."""
    d = Path(path)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create output directory {d}: {e.strerror or e}") from None
    if not d.is_dir():
        raise OutputError(f"output path {d} exists and is not a directory")
    if not os.access(d, os.W_OK | os.X_OK):
        raise OutputError(f"output directory {d} is not writable")
    return d


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` on success.

    On any exception the temporary file is removed and ``target`` is untouched.
    """
    target = Path(target)
    tmp_path = _start_tmp(target)
    try:
        yield tmp_path
        _finish_tmp(tmp_path, target)
    except BaseException:  # KeyboardInterrupt and SystemExit too: no temporary file is left behind
        _discard(tmp_path)
        raise


@contextlib.contextmanager
def atomic_outputs(*targets: str | os.PathLike[str]) -> Iterator[tuple[Path, ...]]:
    """:func:`atomic_output` for files that belong together (a model and its sidecar): yield one temporary
    path per target; only once the block has completed for all of them are they renamed over their targets,
    with SIGINT/SIGTERM held off for those few renames, so an interrupted run leaves either all of them or
    none (and no temporary file). On any exception every temporary file is removed."""
    for t in targets:  # every name checked before any temporary file is made
        check_replaceable(Path(t))
    with contextlib.ExitStack() as stack:
        tmps: list[Path] = []
        for t in targets:
            tmps.append(_start_tmp(Path(t)))
            stack.callback(_discard, tmps[-1])
        yield tuple(tmps)
        with _signals_held():
            for tmp, t in zip(tmps, targets):
                _finish_tmp(tmp, Path(t))


def check_replaceable(target: Path) -> None:
    """An output whose name a folder (or anything but a file) holds cannot land: refuse it in one line,
    not with os.replace's traceback after the work is done (export --int8 into a folder holding a
    ``NAME.int8.onnx`` folder did that)."""
    if target.exists() and not target.is_file():
        kind = "a folder" if target.is_dir() else "something that is not a file"
        raise OutputError(f"cannot write {target}: {kind} of that name is in the way; move it or choose "
                          "another output folder")


def _start_tmp(target: Path) -> Path:
    ensure_writable_dir(target.parent)
    check_replaceable(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(tmp)


def _finish_tmp(tmp: Path, target: Path) -> None:
    # mkstemp creates 0600; give the file the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        os.replace(tmp, target)
    except OSError as e:  # the target changed under the run (a folder made there, permissions taken away)
        raise OutputError(f"cannot write {target}: {e.strerror or e}") from None


def _discard(tmp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Defer SIGINT/SIGTERM while the block runs (main thread only; elsewhere signals are not delivered)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_output(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_json_atomic(target: str | os.PathLike[str], obj: Any) -> Path:
    return write_bytes_atomic(target, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def write_derived_sidecar(out: str | os.PathLike[str], src: str | os.PathLike[str], record: dict[str, Any], *,
                          inherit: tuple[str, ...] | None = ("preprocess", "model", "precision"),
                          data: str | os.PathLike[str] | None = None,
                          to: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Write the sidecar of ``out``, a file made from ``src``: what it inherits from ``src``'s sidecar
    (``inherit``; None: all of it), ``record``, and its provenance - the source and its sha256, the
    edgevis version, when, and ``out``'s own sha256. Returns what was written.

    Inside :func:`atomic_outputs`, ``data`` is where ``out``'s bytes are now (its temporary file, hashed
    instead of ``out``) and ``to`` the sidecar's temporary file."""
    import time

    from .. import __version__
    from .types import read_sidecar, sidecar_path

    side = read_sidecar(src) or {}
    base = {k: v for k, v in side.items() if (inherit is None or k in inherit) and k != "sha256"}
    full = {**base, **record, "source": str(src), "source_sha256": sha256_file(src), "edgevis": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "sha256": sha256_file(data if data is not None else out)}
    write_json_atomic(to if to is not None else sidecar_path(out), full)
    return full


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
