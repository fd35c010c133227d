"""Fuzz worker: runs ``edgevis`` commands in this one process, one JSON job per stdin line.

The driver (:mod:`fuzzlib`) starts it, sends ``{"id", "argv"}`` lines and reads one answer per job:
the exit code, stderr, whether an exception escaped ``main`` (a traceback). The driver owns the
timeouts and notices when this process dies (a native crash) or stalls (a hang); running many
commands in one process keeps the interpreter and library imports out of every mutant's cost,
while the commands' own crash probe still runs ONNX Runtime in a child process.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback


def run_one(argv: list[str]) -> dict:
    from edgevis.cli.app import main

    stdout, stderr = io.StringIO(), io.StringIO()
    tb = None
    rc: int | None = 0
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:  # noqa: BLE001 - what escapes main is exactly what the fuzzer looks for
            tb = traceback.format_exc()
            rc = None
    return {"rc": rc, "stderr": stderr.getvalue()[-4000:], "stdout": stdout.getvalue()[-2000:], "traceback": tb}


def _build_commands_once() -> None:
    """typer rebuilds the whole click command tree (signatures and type hints of every command) on each call
    of the app, about 0.3 s: more than most fuzzed runs themselves. The tree is the same every time and click
    commands keep no state between invocations, so this process builds it once; what runs is unchanged."""
    import typer.main

    build = typer.main.get_command
    built: dict[int, object] = {}

    def get_command(typer_instance):  # type: ignore[no-untyped-def]
        key = id(typer_instance)
        if key not in built:
            built[key] = build(typer_instance)
        return built[key]

    typer.main.get_command = get_command  # type: ignore[assignment]


def serve() -> None:
    import os

    # answers go through a private copy of fd 1; fd 1 itself goes to stderr, so native code printing to
    # stdout (a C++ library's std::cout) cannot corrupt the protocol
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    import edgevis.cli.app  # noqa: F401 - imported before the first job, not inside its timeout

    _build_commands_once()

    proto.write(json.dumps({"ready": True}) + "\n")
    proto.flush()
    for line in sys.stdin:
        job = json.loads(line)
        answer = run_one(job["argv"])
        proto.write(json.dumps({"id": job["id"], **answer}) + "\n")
        proto.flush()


if __name__ == "__main__":
    serve()
