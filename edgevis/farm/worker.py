"""``edgevis worker``: a board joins the farm in one command (a checked ``ray start``).

The board starts a Ray node declaring ``board:NAME`` (one unit: one cell at a time), its
GPU count and a label, in the foreground (``ray start --block``: stopping the command takes
the node out of the cluster). Once the node is up it asks the head, with a task on the head
node, which edgevis and ONNX Runtime it runs; a board running other versions is refused and
its node stopped at once. (A sweep checks every board again before its first cell.)

The device-side install is enough: ray, onnxruntime, onnx, numpy; no torch.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..core.errors import EdgevisError, first_line
from .config import check_name

JOIN_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0  # how long `ray start` may take to stop its node on SIGTERM


@dataclass(frozen=True)
class WorkerConfig:
    """A board (or the head) joining the farm."""

    address: str | None = None  # the head's HOST:PORT; None with head=True
    resources: dict[str, float] = field(default_factory=dict)  # e.g. {"board:orin-nano": 1}
    head: bool = False
    port: int = 6379  # the head's GCS port
    num_cpus: int | None = None
    num_gpus: int | None = None  # Ray detects no GPU on Jetson (no NVML there): declare it
    object_store_memory: int | None = None
    label: str | None = None  # free text shown in the report (e.g. "JetPack 6.1, 15 W mode")
    dashboard: bool = False

    def __post_init__(self) -> None:
        if not self.head and not self.address:
            raise EdgevisError("--address HEAD:PORT is required (or --head to start the head node)")
        if not self.head and not any(k.startswith("board:") for k in self.resources):
            raise EdgevisError("a worker declares its board: --resources board:NAME")
        for flag, v in (("--num-cpus", self.num_cpus), ("--num-gpus", self.num_gpus)):
            if v is not None and v < 0:
                raise EdgevisError(f"{flag} must be >= 0 (got {v})")


def parse_resources(text: str) -> dict[str, float]:
    """``board:orin-nano`` or ``board:orin-nano=1,host`` -> {"board:orin-nano": 1.0, "host": 1.0}."""
    out: dict[str, float] = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        name, _, amount = item.partition("=")
        if name.startswith("board:"):
            check_name("board", name[len("board:"):])
        elif not name or any(c.isspace() for c in name):
            raise EdgevisError(f"--resources: {item!r} is not NAME or NAME=AMOUNT")
        try:
            out[name] = float(amount) if amount else 1.0
        except ValueError:
            raise EdgevisError(f"--resources: {item!r}: the amount after = must be a number") from None
        if name.startswith("board:") and out[name] != 1.0:
            raise EdgevisError(f"--resources: {name} must be 1 unit, so that a board measures one cell at a time")
    return out


def local_versions() -> dict[str, Any]:
    from .board import versions

    v = versions()
    if not v.get("onnxruntime"):
        raise EdgevisError("onnxruntime is not installed on this board; install the device-side packages "
                           "(pip install onnxruntime, or the board's onnxruntime-gpu build)")
    from .cluster import import_ray

    import_ray()  # names the farm extra when missing
    return v


def ray_start_command(config: WorkerConfig) -> list[str]:
    ray_bin = shutil.which("ray", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if ray_bin is None:
        from ..core.errors import missing_dependency

        raise missing_dependency("ray", "farm", "joining the farm")
    cmd = [ray_bin, "start", "--block", "--disable-usage-stats"]
    cmd += (["--head", f"--port={config.port}", f"--include-dashboard={str(config.dashboard).lower()}"]
            if config.head else [f"--address={config.address}"])
    if config.resources:
        cmd.append(f"--resources={json.dumps(config.resources)}")
    for flag, v in (("--num-cpus", config.num_cpus), ("--num-gpus", config.num_gpus),
                    ("--object-store-memory", config.object_store_memory)):
        if v is not None:
            cmd.append(f"{flag}={v}")
    return cmd


def _probe_head(conn: Any, address: str, boards: list[str]) -> None:
    """In a child process: connect to the head once it answers, wait until ``boards`` are in the cluster,
    and send ("ok", the head's versions) or ("error", why). The parent bounds it in time: ``ray.init``
    blocks in Ray's C++ client while the head does not answer, out of reach of deadlines and signals."""
    try:
        import ray

        from .board import ray_probe
        from .cluster import alive_boards

        while True:
            try:
                ray.init(address=address, logging_level="ERROR", log_to_driver=False)
                break
            except Exception:
                time.sleep(1.0)
        try:
            while not set(boards) <= set(alive_boards(ray)):
                time.sleep(0.5)
            ref = ray.remote(ray_probe).options(resources={"node:__internal_head__": 0.001}, num_cpus=0,
                                                max_retries=0).remote()
            try:
                conn.send(("ok", ray.get(ref)["versions"]))
            except Exception as e:
                conn.send(("error", f"the head at {address} could not report its versions (is edgevis installed "
                                    f"there?): {first_line(e)}"))
        finally:
            ray.shutdown()
    except BaseException as e:  # pragma: no cover - the parent says that no answer came
        conn.send(("error", f"the version check failed: {type(e).__name__}: {first_line(e)}"))
    finally:
        conn.close()


def _head_versions(address: str, boards: list[str], proc: subprocess.Popen, timeout: float) -> dict[str, Any]:
    """The head's versions, from a task on the head node, once this node (``proc``) is in the cluster.

    The check runs in a child process that this one waits for at most ``timeout`` seconds, so that an
    unreachable head ends the join in time and Ctrl-C or SIGTERM are acted on at once."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    probe = ctx.Process(target=_probe_head, args=(child, address, boards), daemon=True)
    probe.start()
    child.close()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if parent.poll(0.5):
                try:
                    kind, value = parent.recv()
                except EOFError:
                    kind, value = "error", f"the version check ended without an answer (exit code {probe.exitcode})"
                if kind == "ok":
                    return value  # type: ignore[no-any-return]
                raise EdgevisError(value)
            if proc.poll() is not None:
                raise EdgevisError(f"ray start failed (exit code {proc.returncode}); its message is above")
            if time.monotonic() > deadline:
                raise EdgevisError(f"this node did not join the Ray cluster at {address} and pass the version "
                                   f"check within {timeout:g} s (is the head running there?)")
    finally:
        if probe.is_alive():
            probe.kill()
        probe.join()
        parent.close()


def join(config: WorkerConfig, *, log: Callable[[str], None] = lambda s: None,
         timeout: float = JOIN_TIMEOUT_S) -> int:
    """Start the node, check the versions against the head's, then stay in the foreground until stopped.
    Returns the exit code of ``ray start``."""
    from .board import version_mismatch

    here = local_versions()
    if not config.head:
        from .cluster import check_reachable

        check_reachable(str(config.address))  # a head nobody runs is one line now, not a minute of retries
    cmd = ray_start_command(config)
    env = {**os.environ, **({"EDGEVIS_BOARD_LABEL": config.label} if config.label else {})}
    log("starting: " + " ".join(cmd))
    proc = subprocess.Popen(cmd, env=env)

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # `ray start --block` stops the node's processes and exits
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:  # still connecting to a head that does not answer: no node to stop
            proc.kill()
            proc.wait()

    def interrupt(*_: Any) -> None:  # SIGTERM leaves the cluster as Ctrl-C does
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        if not config.head:
            boards = [k[len("board:"):] for k in config.resources if k.startswith("board:")]
            head = _head_versions(str(config.address), boards, proc, timeout)
            why = version_mismatch(head, here)
            if why:
                raise EdgevisError(f"refused: this board {why}; install the head's versions and join again")
            log(f"joined {config.address} as {', '.join('board:' + b for b in boards)} (edgevis {here['edgevis']}, "
                f"onnxruntime {here['onnxruntime']}); stop with Ctrl-C")
        return proc.wait()
    except KeyboardInterrupt:
        stop()
        return 0
    except BaseException:
        stop()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
