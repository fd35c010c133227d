"""``edgevis worker``: join the farm as a board (a checked ``ray start``), or start its head."""

from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape

from .common import err, user_errors


@user_errors
def worker(
    address: Optional[str] = typer.Option(None, "--address", help="The head's HOST:PORT (its GCS address)."),
    resources: str = typer.Option("", "--resources", help="board:NAME (one unit), and any other resources, comma "
                                                          "separated, e.g. board:orin-nano or host."),
    head: bool = typer.Option(False, "--head", help="Start the head node instead (on the machine with torch)."),
    port: int = typer.Option(6379, "--port", help="With --head: the port of its GCS."),
    num_cpus: Optional[int] = typer.Option(None, "--num-cpus", help="CPUs Ray may schedule here."),
    num_gpus: Optional[int] = typer.Option(None, "--num-gpus", help="GPUs to declare (Ray detects none on Jetson)."),
    object_store_memory: Optional[int] = typer.Option(None, "--object-store-memory", help="Bytes for Ray's object "
                                                                                           "store on this node."),
    label: Optional[str] = typer.Option(None, "--label", help="Free text naming this board in reports."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors."),
) -> None:
    """Join the farm: start a Ray node declaring this board, refuse to join when its edgevis or ONNX Runtime
    differs from the head's, and stay in the foreground (Ctrl-C leaves the cluster)."""
    from ..farm.worker import WorkerConfig, join, parse_resources

    config = WorkerConfig(address=address, resources=parse_resources(resources), head=head, port=port,
                          num_cpus=num_cpus, num_gpus=num_gpus, object_store_memory=object_store_memory, label=label)

    def log(msg: str) -> None:
        if not quiet:
            err.print(escape(msg), highlight=False)

    code = join(config, log=log)
    if code:
        raise typer.Exit(code=code)
