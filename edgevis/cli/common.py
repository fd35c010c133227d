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
            # the message is plain text: brackets in it (e.g. edgevis[tensorrt]) are not rich markup
            err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, markup=True)
            raise typer.Exit(code=e.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted; nothing was written")
            raise typer.Exit(code=130) from None

    return wrapper  # type: ignore[return-value]


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
