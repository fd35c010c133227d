"""``edgevis.farm.sweep``: every model at every precision on every board, one report, nothing lost.

1. Where torch is (this process; or, when torch is not installed here, the cluster's node declaring the
   ``host`` resource): export and quantize each model once, reusing matching files, and preprocess the
   held-out images once per model.
2. Each cell (model, precision, board) already finished with the same files, images and
   settings is kept; the others run, on their boards (Ray) or here (``--cluster local``).
3. Each cell is written to ``REPORT_DIR/cells/`` the moment it finishes or fails.
4. The report (``report.json``, ``report.md``, ``report.html``) is rendered from the cell files,
   so it holds every cell of the matrix: measured, or failed with the reason, or missing.

The exit code of ``edgevis sweep`` is 0 when every cell is measured and :data:`PARTIAL_EXIT`
when any failed (the report is written either way; a rerun measures only those).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .cells import CellJob, cell_path, failed, is_current, read_cell, settings_sha256, write_cell
from .config import SweepConfig

PARTIAL_EXIT = 4  # some cells failed or are missing; the report says which and why


@dataclass(frozen=True)
class SweepResult:
    """What a sweep did: every cell of the matrix, what ran now, what was kept, what failed."""

    status: str  # "complete" or "partial"
    report_dir: Path
    cells: tuple[dict[str, Any], ...]
    ran: tuple[str, ...]  # cell keys measured by this run
    kept: tuple[str, ...]  # cell keys finished before and kept (same files, images, settings)
    failed: tuple[str, ...]  # cell keys that failed (their reason is in the cell)
    boards: dict[str, dict[str, Any]]
    report: dict[str, Any]
    report_files: dict[str, Path]
    warnings: tuple[str, ...]

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "complete" else PARTIAL_EXIT

    def cell(self, model: str, precision: str, board: str) -> dict[str, Any]:
        """The cell (model label, precision, board) as written to ``cells/``: done, failed or missing."""
        for c in self.cells:
            if (c["model"], c["precision"], c["board"]) == (model, precision, board):
                return c
        raise KeyError(f"no cell {model} {precision} on {board} in this sweep (models: "
                       f"{', '.join(self.report['matrix']['models'])}; precisions: "
                       f"{', '.join(self.report['matrix']['precisions'])}; boards: {', '.join(self.report['matrix']['boards'])})")

    def profile(self, model: str, precision: str, board: str) -> Any:
        """What ``edgevis.profile`` returns, for one measured cell: a :class:`edgevis.profile.api.ProfileResult`."""
        from ..profile.api import ProfileResult

        c = self.cell(model, precision, board)
        if c["status"] != "done":
            raise KeyError(f"{model} {precision} on {board} was not measured ({c['status']}: {c.get('reason')})")
        return ProfileResult(c["profile"])

    def bench(self, model: str, board: str) -> Any:
        """What ``edgevis.bench`` returns, for one model on one board (its measured precisions, ratios and
        fidelity against FP32 on that board): a :class:`edgevis.pipeline.benching.BenchResult`."""
        from ..pipeline.benching import BenchResult
        from ..report.sweep import board_report

        self.cell(model, "fp32", board)  # an unknown model or board is a KeyError naming the matrix
        rep = board_report(self.report, model, board)
        if rep is None:
            raise KeyError(f"no cell of {model} was measured on {board}")
        return BenchResult(rep)

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "exit_code": self.exit_code, "report_dir": str(self.report_dir),
                "ran": list(self.ran), "kept": list(self.kept), "failed": list(self.failed),
                "report_files": {k: str(v) for k, v in self.report_files.items()},
                "warnings": list(self.warnings), "report": self.report}


def _jobs(config: SweepConfig, files: dict[str, Any]) -> list[CellJob]:
    settings = settings_sha256(config.profile, config.rounds)
    out = []
    for label, precision, board in config.cells:
        mf = files[label]
        out.append(CellJob(label, mf.spec.name, precision, board, mf.sha256["fp32"], mf.sha256[precision],
                           mf.held_sha256, settings, config.profile, config.rounds, mf.preprocess))
    return out


def sweep(config: SweepConfig, *, log: Callable[[str], None] | None = None) -> SweepResult:
    """Run the sweep ``config`` describes and write its report; see the module docstring."""
    from ..core.files import ensure_writable_dir
    from ..report.sweep import new_sweep_report, write_sweep_report
    from .cluster import check_reachable, connect, import_ray, run_local, run_ray
    from .host import prepare_model, prepare_remote, torch_here

    log = log or (lambda s: None)
    if config.cluster != "local":
        ray = import_ray()  # a missing extra, or a cluster nobody runs, is said before minutes of exporting
        if not ray.is_initialized():
            check_reachable(config.cluster)
    report_dir = ensure_writable_dir(config.report_dir)
    ensure_writable_dir(report_dir / "cells")
    if config.cluster != "local" and not torch_here():  # export where torch is: the node declaring `host`
        with connect(config.cluster) as ray:
            files = prepare_remote(ray, config, log)
    else:
        ensure_writable_dir(config.output_dir)
        files = {m.label: prepare_model(config, m, log) for m in config.models}
    warnings = [w for mf in files.values() for w in mf.warnings]
    jobs = _jobs(config, files)
    kept, pending = [], {b: [] for b in config.devices}  # type: ignore[var-annotated]
    for job in jobs:
        if config.resume and is_current(read_cell(cell_path(report_dir, job.model, job.precision, job.board)), job):
            kept.append(job.key)
        else:
            pending[job.board].append(job)
    if kept:
        log(f"kept {len(kept)} finished cells (same files, images and settings); {len(jobs) - len(kept)} to run")
    ran: list[str] = []

    def on_done(job: CellJob, result: dict[str, Any] | None, reason: str | None) -> None:
        ran.append(job.key)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if result is None:
            failed(report_dir, job, reason or "unknown failure")
            log(f"{job.board}: {job.model} {job.precision} FAILED: {reason}")
            return
        write_cell(report_dir, job, "done", finished=stamp, **result)
        p50 = result["profile"]["runs"][0]["latency_ms"]["p50"]
        log(f"{job.board}: {job.model} {job.precision} done, p50 {p50:.3g} ms")

    if any(pending.values()):
        boards = (run_local if config.cluster == "local" else run_ray)(config, pending, files, on_done, log)
    else:  # every cell kept: no cluster needed; what is known of each board comes from its cells
        boards = {}
        for b in config.devices:
            cell = read_cell(cell_path(report_dir, config.models[0].label, config.precisions[0], b)) or {}
            boards[b] = {"status": "ok", "reason": "every cell kept from an earlier run",
                         "node": cell.get("node"), "versions": cell.get("versions")}
    if config.cluster == "local" and len(config.devices) > 1:
        warnings.append(f"--cluster local: boards {', '.join(config.devices)} all ran on this machine; their "
                        "differences are run-to-run noise, not devices")
    cells = []
    for job in jobs:
        cell = read_cell(cell_path(report_dir, job.model, job.precision, job.board))
        if cell is None or not (is_current(cell, job) or (job.key in ran and cell.get("status") == "failed")):
            cell = {"model": job.model, "model_name": job.model_name, "precision": job.precision,
                    "board": job.board, "status": "missing", "reason": "not measured (the sweep stopped first)"}
        cells.append(cell)
    bad = tuple(c_key for c_key, c in zip((j.key for j in jobs), cells) if c["status"] != "done")
    status = "partial" if bad else "complete"
    prof = config.profile
    settings = {"cluster": config.cluster, "runtime": prof.runtime, "device": prof.device, "rounds": config.rounds,
                "batches": list(prof.batches), **prof.settings()}
    models = {k: {"name": v.spec.name, "weights": v.spec.weights, "input_size": v.spec.input_size,
                  "reused": v.reused, "files": {p: str(f) for p, f in v.paths.items()}, "sha256": v.sha256,
                  "held_out": {"images": int(v.held.shape[0]), "source": v.held_label, "sha256": v.held_sha256}}
              for k, v in files.items()}
    doc = new_sweep_report(models=models, precisions=list(config.precisions), boards=boards, cells=cells,
                           status=status, settings=settings, warnings=warnings)
    written = write_sweep_report(doc, report_dir)
    return SweepResult(status, report_dir, tuple(cells), tuple(ran), tuple(kept), bad, boards, doc, written,
                       tuple(warnings))
