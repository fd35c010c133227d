"""What every composition in the pipeline shares: option coercion, checks made before work starts,
and the lock that keeps two runs from interleaving their files in one output folder."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from ..core.errors import EdgevisError

Log = Callable[[str], None]
OnStep = Callable[[str, Any], None]
LOCK_NAME = ".edgevis.lock"
# how long a run waits for another run holding the same output folder before giving up
LOCK_TIMEOUT_S = 600.0


def quiet(msg: str) -> None:
    """The default log: nothing."""


def as_int8(value: Any) -> Any:
    """``Int8Config`` from a config, True (defaults), or None/False (no INT8)."""
    if value is None or value is False:
        return None
    from ..quant.config import Int8Config

    if value is True:
        return Int8Config()
    if not isinstance(value, Int8Config):
        raise EdgevisError(f"int8 must be an Int8Config or True (got {type(value).__name__})")
    return value


def as_integer_only(value: Any) -> Any:
    if value is None or value is False:
        return None
    from ..quant.integer_only import IntegerOnlyConfig

    if value is True:
        return IntegerOnlyConfig()
    if not isinstance(value, IntegerOnlyConfig):
        raise EdgevisError(f"integer_only must be an IntegerOnlyConfig or True (got {type(value).__name__})")
    return value


def check_calibration_folders(calib: Any, holdout: Any) -> None:
    """Calibration and hold-out folders are checked before the export starts, so a typo costs nothing."""
    from ..quant.calibration import folder_source

    for folder, role in ((calib, "calibration"), (holdout, "held-out")):
        if folder is not None:
            _one_readable(folder_source(folder, role=role), role)


def _one_readable(source: Any, role: str) -> None:
    """Decode the folder's images in order until one reads: a folder of only unreadable files (``.jpg`` that
    are not images) was found out only after the FP32 export (17 s on lsnet_t). One good image ends the check;
    the rest are read, and the unreadable ones skipped with a warning, when they are used."""
    from ..core.errors import ImageError

    first = None
    for _, load in source.loaders:
        try:
            load()
            return
        except ImageError as e:
            first = first or str(e)
    raise EdgevisError(f"no readable {role} image in {source.label}" + (f" (e.g. {first})" if first else ""))


@contextlib.contextmanager
def locked_output(out_dir: str | os.PathLike[str], timeout: float = LOCK_TIMEOUT_S) -> Iterator[Path]:
    """Hold an exclusive lock on ``out_dir`` for the whole run: a second run into the same folder waits,
    so an INT8 file and its sidecar can never name one run's weights and another run's FP32 file.

    On POSIX the lock is ``flock`` on the folder itself: a lock file (the filelock package's way)
    would stay behind in the user's output folder, and deleting it on release races with a waiting
    run. The kernel drops the lock when the process ends, however it ends. Elsewhere filelock's
    lock file is used."""
    d = Path(out_dir)
    try:
        import fcntl
    except ImportError:  # Windows
        from filelock import FileLock, Timeout

        lock = FileLock(str(d / LOCK_NAME))
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise EdgevisError(_busy(d, timeout)) from None
        try:
            yield d
        finally:
            lock.release()
        return
    import time

    fd = os.open(d, os.O_RDONLY)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EdgevisError(_busy(d, timeout)) from None
                time.sleep(0.2)
        yield d
    finally:
        os.close(fd)  # releases the lock


def _busy(d: Path, timeout: float) -> str:
    return f"another edgevis run has held {d} for {timeout:.0f} s; wait for it or use another --output-dir"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a run that had already written complete files: says which."""

    def __init__(self, written: list[Path]) -> None:
        super().__init__()
        self.written = written

    def __str__(self) -> str:
        return (f"interrupted; written and complete: {', '.join(p.name for p in self.written)}; "
                "nothing else was written and no partial file was left behind")


@contextlib.contextmanager
def say_what_was_written(written: Callable[[], list[Path]], pending: list[str]) -> Iterator[None]:
    """A failure (or an interruption) after some files landed says which ones did (``written()``, asked
    at that moment), and which of ``pending`` did not (those written before the failure are not listed again:
    an integer-only failure after the INT8 file landed named that file both written and not)."""
    try:
        yield
    except EdgevisError as e:
        done = written()
        if not done:
            raise
        names = {p.name for p in done}
        missing = ", ".join(n for n in pending if n not in names) or "nothing else"
        new = EdgevisError(f"{e} (written and complete: {', '.join(p.name for p in done)}; not written: {missing})")
        new.exit_code = e.exit_code
        raise new from None
    except KeyboardInterrupt:
        done = written()
        if not done:
            raise
        raise Interrupted(done) from None


def files_of(run: Any) -> Callable[[], list[Path]]:
    """The complete files of ``run`` (an ExportRun or QuantizeRun) and their sidecars, when asked."""

    def now() -> list[Path]:
        from ..core.types import sidecar_path

        return [p for f in run.artifacts.values() for p in (f, sidecar_path(f)) if p.exists()]

    return now
