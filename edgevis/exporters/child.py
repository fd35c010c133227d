"""The torch half of an export in a child process (``python -m edgevis.exporters.child DIR``).

torch, the model and the exporter's leftovers (onnxscript, the exported program, a heap
glibc keeps) are ~700 MB that a process going on to quantize would carry to its end
(issue 18). The child builds the catalog model, traces it and runs torch on the check
inputs (:func:`edgevis.exporters.onnx.trace_model`), writes the traced file with its
weights beside it, hands back the rest as a pickle, and exits; the parent never imports
torch. A fresh interpreter, not ``multiprocessing``: its spawn re-imports the caller's
``__main__`` (a user's script without a main guard would run again).

The child's errors come back as they were raised (an :class:`EdgevisError` stays one
line); a child that dies (a signal, out of memory) is one error line naming how it ended;
an interrupted parent kills its child before its temporary files are removed, and a
parent that dies takes the child with it (Linux: ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..core.errors import EdgevisError

if TYPE_CHECKING:
    from .onnx import ExportConfig, Traced

REQUEST, RESULT, STDERR = "request.pkl", "result.pkl", "stderr.txt"


def trace_in_child(model_name: str, path: Path, *, weights: str | os.PathLike[str] | None,
                   config: "ExportConfig", meanwhile: Callable[[], None] | None = None,
                   simplified: bool = False) -> "Traced":
    """:func:`~edgevis.exporters.onnx.trace_model` of catalog model ``model_name`` in a child process; the traced
    file lands at ``path`` (weights in ``path.data``), and its folder holds the exchange files. ``meanwhile``
    runs here while the child works (tracing is mostly one thread: the other core is free)."""
    d = path.parent
    (d / REQUEST).write_bytes(pickle.dumps({"model_name": model_name, "path": str(path),
                                            "weights": None if weights is None else str(weights), "config": config,
                                            "simplified": simplified}))
    # the child imports the edgevis this process runs, wherever it was imported from (a path a script added)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    with open(d / STDERR, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "edgevis.exporters.child", str(d)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            if meanwhile is not None:
                meanwhile()
            rc = proc.wait()
        finally:  # interrupted (Ctrl-C, SIGTERM) or failed here: the child goes before its files do
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    result = d / RESULT
    if result.exists():
        status, value = pickle.loads(result.read_bytes())
        if status == "ok":
            return value
        if isinstance(value, BaseException):
            raise value
        raise RuntimeError(f"exporting {model_name} failed in its child process:\n{value}")
    how = f"was killed by {_signal_name(-rc)}" if rc < 0 else f"exited with status {rc}"
    last = _last_line(d / STDERR)
    raise EdgevisError(f"the process exporting {model_name} {how} before it finished"
                       + (f" ({last})" if last else "") + "; nothing was written")


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _last_line(p: Path) -> str:
    try:
        lines = [ln.strip() for ln in p.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (a parent killed -9 must not leave a tracer running)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str]) -> int:
    d = Path(argv[0])
    _die_with_parent()
    out: tuple[str, Any]
    try:
        req = pickle.loads((d / REQUEST).read_bytes())
        from .onnx import trace_model

        traced = trace_model(req["model_name"], Path(req["path"]), weights=req["weights"], config=req["config"],
                             external_data=True, simplified=req.get("simplified", False))
        out = ("ok", traced)
    except KeyboardInterrupt:  # the parent was interrupted too (one process group): it reports, quietly
        return 130
    except EdgevisError as e:
        out = ("error", e)
    except BaseException:  # our bug: its traceback goes to the parent, which raises it
        import traceback

        out = ("error", traceback.format_exc())
    try:
        data = pickle.dumps(out)
    except Exception:  # an exception that does not pickle: its type and message
        e = out[1]
        data = pickle.dumps(("error", EdgevisError(str(e)) if isinstance(e, EdgevisError) else repr(e)))
    tmp = d / (RESULT + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, d / RESULT)  # whole or absent
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
