"""Running a sweep's cells: on a Ray cluster (one task per cell, on the node declaring its board), or
here, serially, without Ray.

On Ray each board is a custom resource ``board:NAME`` of one unit, and a cell asks for that
unit, so a board measures one cell at a time and nothing else runs there meanwhile. The head
hands each board its next cell only when the last one finished: a cell's clock starts when it
starts, and a board that leaves takes only the cell it was running with it. Before any cell,
a probe on every board reports its versions; a board running another edgevis or ONNX Runtime
than the head is refused and its cells fail with that reason.

A cell whose worker or node dies is retried by Ray (``max_retries``); when its board has been
gone from the cluster for ``board_grace_s``, or a cell runs past ``cell_timeout_s``, the cell
is cancelled and fails with the reason, as do the cells still queued for a departed board.
"""

from __future__ import annotations

import collections
import contextlib
import time
from typing import Any, Callable, Iterator

from ..core.errors import EdgevisError, first_line, missing_dependency
from .board import measure_cell, node_info, payload_of, ray_cell, ray_probe, version_mismatch, versions
from .cells import CellJob
from .config import SweepConfig

# (job, measurements or None, reason or None) -> None; called as each cell finishes
OnDone = Callable[[CellJob, "dict[str, Any] | None", "str | None"], None]


def import_ray():  # type: ignore[no-untyped-def]
    try:
        import ray
    except ImportError:
        raise missing_dependency("ray", "farm", "sweeps on a Ray cluster and edgevis worker; "
                                 "--cluster local needs no Ray") from None
    return ray


def check_reachable(cluster: str, timeout: float = 10.0) -> None:
    """One line, before any work, when nothing answers at the cluster's address. (``ray.init`` would wait
    for an absent head for minutes, inside Ray's C++ client, where neither a deadline nor Ctrl-C reaches.)"""
    import socket

    address = cluster[len("ray://"):] if cluster.startswith("ray://") else cluster
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address
        except ImportError:  # another Ray: its ray.init speaks for itself
            return
        try:
            address = canonicalize_bootstrap_address("auto") or ""
        except Exception as e:
            raise EdgevisError(f"--cluster auto: {first_line(e)}") from None
        if not address:
            raise EdgevisError("--cluster auto: this machine belongs to no Ray cluster (start its head with "
                               "`edgevis worker --head`, or name a head with --cluster HOST:PORT)")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return  # not HOST:PORT: ray.init says what is wrong with it
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as e:
        raise EdgevisError(f"cannot connect to the Ray cluster at {cluster}: nothing answers at {host}:{port} "
                           f"({e.strerror or first_line(e)}); is its head running?") from None


@contextlib.contextmanager
def connect(cluster: str) -> Iterator[Any]:
    """Ray, connected to ``cluster`` (a connection this process already holds is used as it is)."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    check_reachable(cluster)
    try:
        ray.init(address=cluster, logging_level="ERROR", log_to_driver=False)
    except Exception as e:  # ConnectionError, RuntimeError, ValueError, grpc errors: all one line for the user
        raise EdgevisError(f"cannot connect to the Ray cluster at {cluster}: {first_line(e)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def alive_boards(ray: Any) -> dict[str, str]:
    """board name -> node id, over the nodes alive now."""
    out = {}
    for n in ray.nodes():
        if n.get("Alive"):
            for r in n.get("Resources", {}):
                if r.startswith("board:"):
                    out[r[len("board:"):]] = n.get("NodeID")
    return out


def _reason(ray: Any, e: BaseException) -> str:
    if isinstance(e, ray.exceptions.RayTaskError):
        cause = getattr(e, "cause", None)
        if isinstance(cause, EdgevisError):
            return str(cause)
        if cause is not None:
            return f"{type(cause).__name__}: {first_line(cause)}"
    return f"{type(e).__name__}: {first_line(e)}"


def _probe(ray: Any, config: SweepConfig, head: dict[str, Any], log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Each board's versions and node, or why it cannot measure (absent, unreachable, refused)."""
    present = alive_boards(ray)
    probe = ray.remote(ray_probe)
    refs = {b: probe.options(resources={f"board:{b}": 0.001}, num_cpus=0, max_retries=0).remote()
            for b in config.devices if b in present}
    ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=config.probe_timeout_s)
    info: dict[str, dict[str, Any]] = {}
    for b in config.devices:
        if b not in refs:
            info[b] = {"status": "absent", "reason": f"no node of the cluster declares board:{b} (join one with: "
                                                     f"edgevis worker --address HEAD --resources board:{b})"}
            continue
        if refs[b] not in ready:
            ray.cancel(refs[b], force=True)
            info[b] = {"status": "unreachable", "reason": f"board {b} did not answer the version check within "
                                                          f"{config.probe_timeout_s:g} s"}
            continue
        try:
            got = ray.get(refs[b])
        except Exception as e:
            info[b] = {"status": "unreachable", "reason": f"board {b} failed the version check: {_reason(ray, e)}"}
            continue
        why = version_mismatch(head, got["versions"])
        info[b] = {**got, "status": "refused" if why else "ok"}
        if why:
            info[b]["reason"] = f"board {b} refused: it {why}"
        log(f"board {b}: {'refused, ' + why if why else 'ready'} (node {got['node'].get('hostname')})")
    return info


def run_ray(config: SweepConfig, pending: dict[str, list[CellJob]], files: dict[str, Any], on_done: OnDone,
            log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Run ``pending`` (board -> cells) on the Ray cluster; returns what is known of each board."""
    head = versions()
    with connect(config.cluster) as ray:
        info = _probe(ray, config, head, log)
        queues = {b: collections.deque(jobs) for b, jobs in pending.items() if jobs}
        for b in list(queues):
            if info[b]["status"] != "ok":
                for job in queues.pop(b):
                    on_done(job, None, info[b]["reason"])
        refs: dict[tuple[str, str], Any] = {}

        def put(label: str, what: str) -> Any:  # each file and image set enters the object store once
            if (label, what) not in refs:
                mf = files[label]
                refs[label, what] = ray.put(mf.held if what == "held" else mf.payloads.get(what)
                                            or payload_of(mf.paths[what], mf.sha256[what]))
            return refs[label, what]

        task = ray.remote(ray_cell)
        inflight: dict[Any, tuple[CellJob, float]] = {}

        def submit(b: str) -> None:
            job = queues[b].popleft()
            ref = task.options(resources={f"board:{b}": 1}, num_cpus=0, max_retries=config.retries,
                               retry_exceptions=False).remote(
                job, put(job.model, "fp32"), put(job.model, job.precision),
                put(job.model, "held") if job.precision != "fp32" else None, head)
            inflight[ref] = (job, time.monotonic())
            log(f"{b}: measuring {job.model} {job.precision}")

        for b in queues:
            submit(b)
        gone_since: dict[str, float] = {}
        while inflight:
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for ref in ready:
                job, _t0 = inflight.pop(ref)
                try:
                    on_done(job, ray.get(ref), None)
                except Exception as e:
                    on_done(job, None, _reason(ray, e))
                if queues[job.board]:
                    submit(job.board)
            now, present = time.monotonic(), alive_boards(ray)
            for ref, (job, t0) in list(inflight.items()):
                b = job.board
                if b in present:
                    gone_since.pop(b, None)
                    if now - t0 <= config.cell_timeout_s:
                        continue
                    why = f"timed out: still running after {config.cell_timeout_s:g} s (--cell-timeout)"
                else:
                    since = gone_since.setdefault(b, now)
                    if now - since < config.board_grace_s:
                        continue
                    why = (f"board {b} left the cluster while measuring this cell (its node stopped answering); "
                           f"not back after {config.board_grace_s:g} s, with {config.retries} retr"
                           f"{'y' if config.retries == 1 else 'ies'} allowed")
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
                del inflight[ref]
                on_done(job, None, why)
                if b not in present:
                    while queues[b]:
                        on_done(queues[b].popleft(), None, f"board {b} left the cluster before this cell ran")
                elif queues[b]:
                    submit(b)
        return info


def run_local(config: SweepConfig, pending: dict[str, list[CellJob]], files: dict[str, Any], on_done: OnDone,
              log: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    """Every cell here, one after the other (``--cluster local``): no Ray, nothing travels."""
    node, here = {**node_info(), "cluster": "local"}, versions()
    for b, jobs in pending.items():
        for job in jobs:
            mf = files[job.model]
            log(f"{b} (this machine): measuring {job.model} {job.precision}")
            try:
                result = measure_cell(job, mf.paths["fp32"], mf.paths[job.precision], mf.held, log=log)
            except EdgevisError as e:
                on_done(job, None, str(e))
                continue
            on_done(job, {**result, "node": node, "versions": here}, None)
    return {b: {"status": "ok", "versions": here, "node": node} for b in config.devices}
