"""The cells of a sweep on disk: one JSON file per (model, precision, board), written as it finishes.

``REPORT_DIR/cells/<model>__<precision>__<board>.json`` holds a cell's status
(``done`` or ``failed`` with the reason), what it measured, where it ran, and the keys
that decide whether a rerun may keep it: the sha256 of the files it measured, of the
held-out images, and of the settings. A rerun keeps a ``done`` cell only when all three
match what the sweep would measure now; everything else runs again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.files import write_json_atomic

CELL_SCHEMA, CELL_VERSION = "edgevis.sweep.cell", 1


@dataclass(frozen=True)
class CellJob:
    """Everything a board needs to measure one cell, besides the files themselves."""

    model: str  # the model's label
    model_name: str
    precision: str
    board: str
    fp32_sha256: str
    file_sha256: str
    holdout_sha256: str
    settings_sha256: str
    profile: Any  # ProfileConfig (kept Any so that this module stays import-light)
    rounds: int
    preprocess: dict[str, Any]

    @property
    def key(self) -> str:
        return cell_key(self.model, self.precision, self.board)

    def keys(self) -> dict[str, str]:
        """The values a finished cell must share with this job to be kept on a rerun."""
        return {"fp32_sha256": self.fp32_sha256, "file_sha256": self.file_sha256,
                "holdout_sha256": self.holdout_sha256, "settings_sha256": self.settings_sha256}


def cell_key(model: str, precision: str, board: str) -> str:
    return f"{model}__{precision}__{board}"


def cell_path(report_dir: Path, model: str, precision: str, board: str) -> Path:
    return Path(report_dir) / "cells" / f"{cell_key(model, precision, board)}.json"


def settings_sha256(profile: Any, rounds: int) -> str:
    """A digest of the settings a cell was measured with (the profile's, the runtime, batches, rounds)."""
    blob = {**profile.settings(), "runtime": profile.runtime, "batches": list(profile.batches),
            "providers": list(profile.providers or []), "per_layer": profile.per_layer, "seed": profile.seed,
            "rounds": rounds}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def read_cell(path: Path) -> dict[str, Any] | None:
    """The cell at ``path``, or None when there is none or it is not a cell (it will run again)."""
    try:
        cell = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(cell, dict) or cell.get("schema") != CELL_SCHEMA or cell.get("schema_version") != CELL_VERSION:
        return None
    return cell


def is_current(cell: dict[str, Any] | None, job: CellJob) -> bool:
    """A finished cell measured on exactly these files, images and settings."""
    return bool(cell) and cell.get("status") == "done" and all(  # type: ignore[union-attr]
        cell.get(k) == v for k, v in job.keys().items())  # type: ignore[union-attr]


def write_cell(report_dir: Path, job: CellJob, status: str, **body: Any) -> dict[str, Any]:
    """Write one cell atomically and return it."""
    cell = {"schema": CELL_SCHEMA, "schema_version": CELL_VERSION, "model": job.model, "model_name": job.model_name,
            "precision": job.precision, "board": job.board, "status": status, **job.keys(), **body}
    write_json_atomic(cell_path(report_dir, job.model, job.precision, job.board), cell)
    return cell


def failed(report_dir: Path, job: CellJob, reason: str, **body: Any) -> dict[str, Any]:
    import time

    return write_cell(report_dir, job, "failed", reason=reason,
                      finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **body)
