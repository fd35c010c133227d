"""Profiling in a freshly spawned process: one model per process, so its peak memory is its own
and no run inherits the allocator state of the last one (``bench`` rounds, sweeps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import EdgevisError
from .profiler import ProfileConfig, Progress


def _child(conn, path: str, config: ProfileConfig) -> None:  # type: ignore[no-untyped-def]
    from .profiler import profile_file

    try:
        result = profile_file(path, config, progress=lambda ph, d, t: conn.send(("progress", ph, d, t)))
        conn.send(("result", result))
    except EdgevisError as e:
        conn.send(("error", str(e)))
    except BaseException as e:  # our bug: carry its type and message back to the parent
        conn.send(("crash", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


def profile_in_child(path: Path, config: ProfileConfig, *, progress: Progress | None = None) -> dict[str, Any]:
    """``profile_file`` in a freshly spawned process.

    bench has imported torch and held several models by the time it profiles one; in its own
    process the peak RSS is that of a process running only this model on this runtime (what the
    deployed application pays), and no precision inherits the allocator state of the last one.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, str(path), config), daemon=True)
    proc.start()
    child.close()
    try:
        while True:
            try:
                msg = parent.recv()
            except EOFError:
                proc.join()
                raise EdgevisError(f"profiling {path} ended without a result (exit code {proc.exitcode})") from None
            if msg[0] == "progress":
                if progress is not None:
                    progress(*msg[1:])
            elif msg[0] == "result":
                return msg[1]
            elif msg[0] == "error":
                raise EdgevisError(msg[1])
            else:
                raise RuntimeError(f"profiling {path} failed in the child process: {msg[1]}")
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
