"""What every command shares: one-line errors, JSON output, a stderr console."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from typing import Any, Callable, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..core.errors import EdgevisError

F = TypeVar("F", bound=Callable[..., Any])

# results go to stdout; messages, warnings and progress to stderr so `--json` stays parseable
# a pipe or a file gets wide lines (rich would assume 80 columns and wrap table cells)
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)


def user_errors(fn: F) -> F:
    """Turn an :class:`EdgevisError` into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgevisError as e:
            print_error(str(e))
            if kwargs.get("as_json"):  # a script reading stdout gets the error, not a parse failure
                print_json({"error": str(e), "kind": type(e).__name__, "exit_code": e.exit_code})
            raise typer.Exit(code=e.exit_code) from None
        except KeyboardInterrupt as e:
            # outputs are written atomically: whatever was completed stays whole, nothing half-written remains;
            # the pipeline's Interrupted names the files that had landed
            err.print(escape(str(e)) if str(e) else "interrupted; no partial file was left behind")
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


def print_error(message: str) -> None:
    """The one ``error:`` line (the message is plain text: brackets in it are not rich markup)."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)


def usage_error(e: BaseException) -> int:
    """Print a command-line usage error (an option out of its bounds, a missing argument) as the one
    ``error:`` line and return its exit code; re-raise anything else (our bug: keep its traceback)."""
    from typer._click import exceptions as cx  # typer ships its own click

    if isinstance(e, cx.NoArgsIsHelpError):  # bare `edgevis`: the help, as before
        try:
            from typer import rich_utils

            rich_utils.rich_format_error(e)
        except Exception:  # noqa: BLE001 - the plain help is as good
            e.show()
        return e.exit_code
    if isinstance(e, cx.UsageError):
        where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
        print_error(" ".join(e.format_message().split()) + where)
        if "--json" in sys.argv[1:]:
            print_json({"error": " ".join(e.format_message().split()), "kind": "UsageError", "exit_code": 2})
        return 2
    if isinstance(e, cx.ClickException):
        print_error(" ".join(e.format_message().split()))
        return e.exit_code
    raise e


def handle_sigterm() -> None:
    """SIGTERM (``kill``, a container stopping) raises KeyboardInterrupt like Ctrl-C, so the same cleanup runs:
    temporary files are removed and the command exits 130 with one line."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def command_line() -> str:
    """The command as the user typed it (for reports: what was run)."""
    import shlex

    return "edgevis " + shlex.join(sys.argv[1:])


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")
    sys.stdout.flush()


def spinner(message: str, show: bool) -> contextlib.AbstractContextManager[Any]:
    """A status spinner on stderr while long work runs (nothing with --quiet or --json)."""
    return err.status(message, spinner="dots") if show else contextlib.nullcontext()


def warn(msg: str) -> None:
    err.print(f"[bold yellow]warning:[/] {escape(msg)}", highlight=False)


@contextlib.contextmanager
def progress_bar(show: bool):  # type: ignore[no-untyped-def]
    """A rich progress bar on stderr driven by ``progress(phase, done, total)`` callbacks (None: nothing shown).

    Refreshed only when the caller reports (no refresh thread): the profiler reports between
    timed iterations, and a thread redrawing the terminal would compete with the model for cores.
    """
    if not show:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, auto_refresh=False) as bar:
        tasks: dict[str, Any] = {}
        last = [None]

        def report(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                if last[0] is not None:
                    bar.update(tasks[last[0]], visible=False)
                tasks[phase] = bar.add_task(phase, total=total)
                last[0] = phase  # type: ignore[assignment]
            bar.update(tasks[phase], completed=done, total=total)
            bar.refresh()

        yield report
