"""``edgevis cpp``: where the C++ runtime's CMake package lies, and a starter app (``cpp init``)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import out, user_errors

cpp = typer.Typer(
    help="The C++ runtime shipped with edgevis: `--cmake-dir` for edgevis_DIR, `init DIR` for a starter app.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
)


@cpp.callback()
def _cpp(
    ctx: typer.Context,
    cmake_dir: bool = typer.Option(False, "--cmake-dir", help="Print the folder to pass as -Dedgevis_DIR=..."),
    include_dir: bool = typer.Option(False, "--include-dir", help="Print the folder of edgevis/edgevis.hpp."),
) -> None:
    """find_package(edgevis CONFIG REQUIRED) gives the target edgevis::runtime."""
    from ..cpp import cmake_dir as where

    if cmake_dir:
        typer.echo(str(where()))
    elif include_dir:
        typer.echo(str(where() / "include"))
    elif ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


@cpp.command("init")
@user_errors
def init(
    directory: Path = typer.Argument(..., help="Folder to write CMakeLists.txt and main.cpp into."),
    name: str = typer.Option("edgevis_app", "--name", help="Name of the executable."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Write a minimal CMake app that builds against this installed edgevis."""
    from ..cpp import init_app

    files = init_app(directory, name=name, force=force)
    for f in files:
        out.print(f"wrote {f}", highlight=False)
    out.print(f"build: cmake -S {directory} -B {directory}/build && cmake --build {directory}/build", highlight=False)
