"""The ``edgevis`` command: a thin typer layer over the API, one module per command."""

from __future__ import annotations

import typer

from .bench import bench
from .build import build
from .cpp import cpp
from .codegen import codegen
from .compare import compare
from .evaluate import evaluate
from .export import export
from .inspect import inspect
from .lint import lint
from .models import models
from .predict import predict
from .profile import profile
from .quantize import quantize
from .simplify import simplify
from .sweep import sweep
from .worker import worker

app = typer.Typer(
    name="edgevis",
    invoke_without_command=True,
    help="Take vision backbones to edge devices: export, quantize, compile, profile.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("models")(models)
app.command("export")(export)
app.command("quantize")(quantize)
app.command("evaluate")(evaluate)
app.command("compare")(compare)
app.command("predict")(predict)
app.command("inspect")(inspect)
app.command("simplify")(simplify)
app.command("build")(build)
app.command("lint")(lint)
app.command("profile")(profile)
app.command("bench")(bench)
app.add_typer(cpp, name="cpp")
app.command("codegen")(codegen)
app.command("sweep")(sweep)
app.command("worker")(worker)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True)) -> None:
    if version:
        from .. import __version__

        typer.echo(f"edgevis {__version__}")
        raise typer.Exit()


def main(args: list[str] | None = None) -> None:
    """The ``edgevis`` command. Bad options and arguments (``--top 0``, a missing ``--image``) get the same one
    ``error:`` line as every other user error, exit 2, instead of typer's usage box; SIGTERM is handled like
    Ctrl-C (temporary files removed, exit 130)."""
    import signal
    import sys

    from .common import handle_sigterm, usage_error

    handle_sigterm()
    try:
        code = app(args=args, standalone_mode=False)
    except typer.Abort:
        code = 130
    except Exception as e:  # noqa: BLE001 - only click's usage errors are ours to print; the rest re-raise
        sys.exit(usage_error(e))
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if code == 130:
        # interrupted, cleaned up and reported. An interrupt that lands while an extension module runs Python
        # through PyRun_String (pybind11's exec, as `import onnxruntime` does) also sets CPython's "unhandled
        # KeyboardInterrupt" flag, and sys.exit then ended the process by SIGINT (-2) instead of 130 (about 1
        # run in 6 of tests/exporters/test_child.py's SIGTERM case): the streams flushed, exit 130 directly
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
