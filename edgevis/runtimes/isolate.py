"""Load a file in ONNX Runtime once in a child process, so a native crash becomes one error line.

A segfault or abort inside ONNX Runtime's C++ (a graph optimizer reading an input
that is not there, a kernel on a malformed shape) kills the Python process: no
``except`` runs, the user sees exit 139 and nothing else. Before a command opens
a file edgevis did not write, :func:`check_loads` creates the same session in a
child (``python -m edgevis.runtimes.isolate``) and runs it once on random inputs;
a child killed by a signal, or one that does not finish in time, becomes a
:class:`~edgevis.core.errors.NativeCrashError` naming the file and the signal. A
child that merely fails (ORT refuses the model) is not our business here: the
parent then opens the file itself and reports ORT's reason through
:func:`edgevis.runtimes.ort.ort_errors`.

The verdict is cached per process by the file's sha256 and the session settings,
so a command that opens a file several times pays once; a file edgevis wrote itself
(its sidecar names edgevis and records the file's sha256) is not probed at all, as
ONNX Runtime already ran it when it was written. Set ``EDGEVIS_ISOLATE=0``
to skip the probe (e.g. a device with no spare memory for a second process), and
``EDGEVIS_PROBE_TIMEOUT`` (seconds, default 600) for slow devices.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Sequence

from ..core.errors import NativeCrashError

_VERDICTS: dict[tuple[str, str, tuple[str, ...]], str | None] = {}
DEFAULT_TIMEOUT = 600.0


def enabled() -> bool:
    return os.environ.get("EDGEVIS_ISOLATE", "1") not in ("0", "false", "no", "off")


def _timeout() -> float:
    try:
        return float(os.environ.get("EDGEVIS_PROBE_TIMEOUT", DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def _signal_name(rc: int) -> str:
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f"signal {-rc}"


class _ForkServer:
    """A child process (``python -m edgevis.runtimes.isolate --serve``) that imports onnxruntime once, then
    forks a grandchild per probe and reports how it ended: a probe costs a fork and the session, not a new
    interpreter and an onnxruntime import (the first probe of a process pays those once). Hand-written because
    multiprocessing's forkserver re-imports the ``__main__`` module in its children, and ``python -m edgevis``'s
    main module runs the CLI."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def ask(self, args: list[str], limit: float) -> int | None:
        """The grandchild's exit code (negative: the signal), or None when it ran past ``limit`` seconds."""
        import json
        import select

        for attempt in (0, 1):
            if self.proc is None or self.proc.poll() is not None:
                import atexit

                self.proc = subprocess.Popen([sys.executable, "-m", "edgevis.runtimes.isolate", "--serve"],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL)
                atexit.register(self.close)
            assert self.proc.stdin is not None and self.proc.stdout is not None
            try:
                self.proc.stdin.write((json.dumps({"args": args, "limit": limit}) + "\n").encode())
                self.proc.stdin.flush()
                # the server kills a grandchild at ``limit``; its own start (an onnxruntime import) gets 120 s more
                ready, _, _ = select.select([self.proc.stdout], [], [], limit + 120)
                line = self.proc.stdout.readline() if ready else b""
            except (BrokenPipeError, OSError):
                line = b""
            if line:
                return json.loads(line)["rc"]
            self.close()  # the server died or stalled: start a fresh one, once
        return None

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None


_SERVER = _ForkServer()


def probe(path: str | os.PathLike[str], *, optimization: str | None = None,
          providers: Sequence[str] | None = None, timeout: float | None = None) -> str | None:
    """Open ``path`` in ONNX Runtime and run it once in a child process, exactly as given (normalising is the
    caller's business): why it crashed or hung, or None."""
    p = Path(path)
    limit = timeout if timeout is not None else _timeout()
    args = [str(p.resolve()), optimization or "default", ",".join(providers or ())]
    if hasattr(os, "fork"):
        rc = _SERVER.ask(args, limit)
    else:  # no fork (Windows): a fresh interpreter per probe
        cmd = [sys.executable, "-m", "edgevis.runtimes.isolate", *args]
        try:
            rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                timeout=limit).returncode
        except subprocess.TimeoutExpired:
            rc = None
    if rc is None:
        return (f"ONNX Runtime did not finish loading and running {p} within {limit:g} s (a hang; raise "
                "EDGEVIS_PROBE_TIMEOUT for a slow device)")
    if rc < 0:
        return (f"ONNX Runtime crashed ({_signal_name(rc)}) loading or running {p} in a child "
                "process; the file holds something its native code cannot handle")
    return None


def _serve() -> int:
    """Server side of :class:`_ForkServer`: one JSON request per line in, one JSON answer per line out."""
    import json
    import time

    import numpy  # noqa: F401 - imported once here, inherited by every fork
    import onnxruntime  # noqa: F401

    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            code = 1
            try:
                code = _child(req["args"])
            finally:
                os._exit(code)
        deadline = time.monotonic() + float(req["limit"])
        rc: int | None = None
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.002)
        sys.stdout.write(json.dumps({"rc": rc}) + "\n")
        sys.stdout.flush()
    return 0


def check_loads(path: str | os.PathLike[str], *, optimization: str | None = None,
                providers: Sequence[str] | None = None) -> None:
    """Raise :class:`NativeCrashError` when ONNX Runtime crashes or hangs on ``path`` as edgevis would give
    it to ORT (normalised, see :mod:`edgevis.core.normalize`); probed once per file content and settings in
    this process; nothing when ``path`` is not a readable ONNX file (its loader says why) or probing is off."""
    p = Path(path)
    if not enabled() or not p.is_file():
        return
    from ..core.files import sha256_file

    digest = sha256_file(p)
    # spelled as ORT reads them (its default level is ALL, no providers means the CPU one), so commands that ask
    # for the same session in other words share one probe of a file
    level = "all" if optimization in (None, "default") else optimization
    key = (digest, level, tuple(providers or ("CPUExecutionProvider",)))
    if key not in _VERDICTS and written_by_edgevis(p, digest):
        _VERDICTS[key] = None  # ONNX Runtime already ran this very file when edgevis wrote (and checked) it
    if key not in _VERDICTS:
        _VERDICTS[key] = _probe_as_edgevis_loads(p, optimization, providers)
    why = _VERDICTS[key]
    if why:
        raise NativeCrashError(why)


def written_by_edgevis(p: Path, digest: str) -> bool:
    """Whether ``p`` is a file edgevis wrote, unchanged since: its sidecar is readable, names an edgevis version
    and records ``p``'s sha256. Every such file was opened by ONNX Runtime when it was written (the parity and
    numeric checks of export, quantize, simplify and build), so it needs no probe; this keeps the probe off
    the common path (export, then predict/profile/build the result)."""
    from ..core.sidecar import load_sidecar

    side = load_sidecar(p)
    if not side.ok or side.data.get("sha256") != digest:
        return False
    versions = side.data.get("versions")
    return bool(side.data.get("edgevis") or (isinstance(versions, dict) and versions.get("edgevis")))


def _probe_as_edgevis_loads(p: Path, optimization: str | None, providers: Sequence[str] | None) -> str | None:
    import tempfile

    from ..core.onnxfile import load_onnx
    from ..core.sidecar import load_sidecar
    from ..core.normalize import normalize_model
    from .guard import KIND_ORT

    model = load_onnx(p, check=False)  # raises the loader's own one-line error for a broken file
    side = load_sidecar(p)
    if side.ok and side.data.get("kind") == KIND_ORT:
        optimization = "disable"  # as session_from_onnx loads a graph ORT saved
    fixed, changed = normalize_model(model)
    if not changed:
        return probe(p, optimization=optimization, providers=providers)
    with tempfile.TemporaryDirectory(prefix="edgevis-probe-") as d:
        tmp = Path(d) / p.name
        tmp.write_bytes(fixed.SerializeToString())
        why = probe(tmp, optimization=optimization, providers=providers)
    return why.replace(str(tmp), str(p)) if why else None


def _child(argv: list[str]) -> int:
    """Child side, importing nothing but onnxruntime (and numpy): open the file, run it once on random inputs;
    exit 0, or 1 on any Python-level error (the parent reports those itself)."""
    import numpy as np
    import onnxruntime as ort

    path, optimization, providers = argv[0], argv[1], [x for x in argv[2].split(",") if x]
    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        if optimization in levels:
            opts.graph_optimization_level = levels[optimization]
        # the crash probe is the one InferenceSession outside runtimes.ort: it must not import onnx or edgevis
        # (that would double its cost), and a Python error here is reported by the parent through runtimes.ort
        sess = ort.InferenceSession(path, sess_options=opts, providers=providers or ["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        kinds = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
                 "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int16)": np.int16,
                 "tensor(uint16)": np.uint16, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
                 "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_}
        feed = {}
        for i in sess.get_inputs():
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in (i.shape or [])]
            if i.type not in kinds or int(np.prod(shape)) > 2**26:
                return 1  # no test input can be made: loading was the probe
            feed[i.name] = (rng.standard_normal(shape) * 3).astype(kinds[i.type])
        sess.run(None, feed)
    except Exception:  # noqa: BLE001 - the parent reports Python-level failures itself
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_serve() if sys.argv[1:] == ["--serve"] else _child(sys.argv[1:]))
