"""Every sysfs file the meters read goes through these two functions.

One place to read means one place to change the reading (tests replace
``read_text`` to raise the ``PermissionError`` a non-root user gets from a
root-only file, which a test running as root cannot provoke with chmod).
"""

from __future__ import annotations

import os
from pathlib import Path


def read_text(path: str | os.PathLike[str]) -> str:
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read().strip()


def read_int(path: str | os.PathLike[str]) -> int:
    """The leading integer of a sysfs value ("4968\\n")."""
    text = read_text(path)
    try:
        return int(text.split()[0])
    except (IndexError, ValueError):
        raise ValueError(f"{path} holds {text!r}, not an integer") from None


def under(root: str | os.PathLike[str], path: str) -> Path:
    """``path`` (absolute, e.g. "/sys/class/powercap") inside the filesystem rooted at ``root``."""
    return Path(root) / path.lstrip("/")


def shown(root: str | os.PathLike[str], path: str) -> str:
    """How to name ``path`` in a message: as is on the real root, else with the fixture root prepended."""
    return path if str(Path(root)) == os.sep else str(under(root, path))
