"""The report of a sweep (models × precisions × boards): report.json, report.md, report.html.

The document (schema ``edgevis.sweep``) holds every cell of the matrix: measured (with its
``edgevis profile`` result, fidelity and the node it ran on), failed with the reason, or
missing. The pages show, per board, one table per model with ratios against FP32 *on
that board* (the bench table: each (board, model) pair is rendered as an ``edgevis.report``
with FP32 as baseline); per model, the boards side by side; the cells that are not
measured and why; each board's versions and energy sensor (or why it has none); and the
accuracy-vs-latency and energy-vs-latency plots with one colour per board.
"""

from __future__ import annotations

import datetime as _dt
from html import escape
from pathlib import Path
from typing import Any

from ..core.files import ensure_writable_dir, write_bytes_atomic, write_json_atomic
from .plots import COLORS, Plot, _figure, _png
from .render import CSS, _h_facts, _h_plot, _h_table, _md, _md_table
from .schema import ReportError, energy_of, new_report
from .table import DASH, fmt_ips, fmt_mb, fmt_ms, fmt_pct, fmt_ratio, format_rows, sig, summary_rows, table_notes

SWEEP_SCHEMA, SWEEP_VERSION = "edgevis.sweep", 1
MARKERS = {"fp32": "o", "int8": "s", "integer-only": "^", "fp16": "D"}


def new_sweep_report(*, models: dict[str, Any], precisions: list[str], boards: dict[str, dict[str, Any]],
                     cells: list[dict[str, Any]], status: str, settings: dict[str, Any],
                     warnings: list[str]) -> dict[str, Any]:
    n_bad = sum(c["status"] != "done" for c in cells)
    title = (f"Sweep: {len(models)} model{'s' * (len(models) != 1)} × {len(precisions)} precision"
             f"{'s' * (len(precisions) != 1)} × {len(boards)} board{'s' * (len(boards) != 1)}"
             + (f" (partial: {n_bad} of {len(cells)} cells not measured)" if n_bad else ""))
    return {"schema": SWEEP_SCHEMA, "schema_version": SWEEP_VERSION,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "command": "sweep",
            "title": title, "status": status, "baseline": "fp32",
            "matrix": {"models": list(models), "precisions": list(precisions), "boards": list(boards)},
            "settings": settings, "models": models, "boards": boards, "cells": cells, "warnings": list(warnings)}


def _done(doc: dict[str, Any], model: str, board: str) -> list[dict[str, Any]]:
    return [c for p in doc["matrix"]["precisions"] for c in doc["cells"]
            if c["model"] == model and c["board"] == board and c["precision"] == p and c["status"] == "done"]


def board_report(doc: dict[str, Any], model: str, board: str) -> dict[str, Any] | None:
    """The cells of ``model`` on ``board`` as an ``edgevis.report`` (ratios against FP32 on that board)."""
    cells = _done(doc, model, board)
    if not cells:
        return None
    entries = [{"label": c["precision"], "precision": c["precision"], "file": c.get("file"),
                "fidelity": c.get("fidelity"), "profile": c["profile"]} for c in cells]
    base = "fp32" if any(c["precision"] == "fp32" for c in cells) else None
    return new_report("sweep", f"{model} on {board}", cells[0]["profile"].get("device") or {}, entries,
                      model=model, baseline=base)


def energy_sensor(doc: dict[str, Any], board: str) -> tuple[str | None, str | None]:
    """(the sensor the board's cells read, None) or (None, why the board has no energy figure)."""
    reasons = []
    for c in doc["cells"]:
        if c["board"] == board and c["status"] == "done":
            for run in c["profile"]["runs"]:
                energy, why = energy_of(run)
                if energy is not None:
                    return str(energy.get("sensor") or energy.get("meter") or "a meter"), None
                reasons.append(why)
    return None, (reasons[0] if reasons else "unknown: no cell was measured on this board")


def _board_rows(doc: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    headers = ["Board", "Status", "Host", "Node", "edgevis", "ONNX Runtime", "CPU", "GPU", "Energy sensor"]
    rows = []
    for b, info in doc["boards"].items():
        node, ver = info.get("node") or {}, info.get("versions") or {}
        dev = next((c["profile"].get("device") or {} for c in doc["cells"] if c["board"] == b and c["status"] == "done"),
                   {})
        sensor, why = energy_sensor(doc, b)
        status = info.get("status", "?") + (f": {info['reason']}" if info.get("reason") else "")
        rows.append([b, status, str(node.get("hostname") or DASH), str(node.get("node_id") or "this process")[:12],
                     str(ver.get("edgevis") or DASH), str(ver.get("onnxruntime") or DASH),
                     str((dev.get("cpu") or {}).get("model") or DASH),
                     "; ".join(str(g.get("name")) for g in dev.get("gpu") or []) or "none",
                     sensor or f"none: {why}"])
    return headers, rows


def _missing_rows(doc: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    return (["Model", "Precision", "Board", "Status", "Reason"],
            [[c["model"], c["precision"], c["board"], c["status"], str(c.get("reason") or DASH)]
             for c in doc["cells"] if c["status"] != "done"])


def _model_rows(doc: dict[str, Any], model: str) -> tuple[list[str], list[list[str]]]:
    headers = ["Board", "Precision", "p50", "p99", "Speedup vs fp32 (same board)", "Throughput",
               "Energy / inference", "Energy vs fp32", "Top-1 agreement vs fp32", "Cosine (mean)", "Peak RSS",
               "File size"]
    rows = []
    for b in doc["matrix"]["boards"]:
        rep = board_report(doc, model, b)
        measured = {r["precision"]: r for r in summary_rows(rep)} if rep else {}
        for p in doc["matrix"]["precisions"]:
            r = measured.get(p)
            if r is None:
                cell = next(c for c in doc["cells"] if (c["model"], c["precision"], c["board"]) == (model, p, b))
                rows.append([b, p, f"{DASH} {cell['status']}: {cell.get('reason') or 'not measured'}"]
                            + [DASH] * (len(headers) - 3))
                continue
            base = r["is_baseline"]

            def opt(v: Any, fmt: Any) -> str:
                return DASH if v is None else fmt(v)

            rows.append([b, p, fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]),
                         "1.00× (baseline)" if base else opt(r["speedup_p50"], fmt_ratio),
                         opt(r["throughput_ips"], fmt_ips),
                         opt(r["energy_j_per_inference"], lambda v: f"{sig(v)} J"),
                         opt(r["energy_ratio"], fmt_ratio),
                         "reference" if base else opt(r["top1_agreement"], fmt_pct),
                         "reference" if base else opt(r["cosine_mean"], lambda v: f"{v:.4f}"),
                         opt(r["peak_rss_mb"], fmt_mb), opt(r["file_mb"], fmt_mb)])
    return headers, rows


def _points(doc: dict[str, Any]) -> list[dict[str, Any]]:
    pts = []
    for m in doc["matrix"]["models"]:
        for b in doc["matrix"]["boards"]:
            rep = board_report(doc, m, b)
            for r in summary_rows(rep) if rep else []:
                pts.append({**r, "model": m, "board": b})
    return pts


def _scatter_plot(doc: dict[str, Any], pts: list[dict[str, Any]], title: str, key: str, scale: float, ylabel: str,
                  caption: str) -> Plot:
    pts = [p for p in pts if p[key] is not None]
    boards = doc["matrix"]["boards"]
    fig = _figure(8, 4.6)
    ax = fig.subplots()
    for p in pts:
        c = COLORS[boards.index(p["board"]) % len(COLORS)]
        ax.scatter([p["p50_ms"]], [p[key] * scale], s=70, color=c, marker=MARKERS.get(p["precision"], "o"), zorder=3)
        ax.annotate(f"{p['model']} {p['precision']}", (p["p50_ms"], p[key] * scale), textcoords="offset points",
                    xytext=(6, 4), fontsize=8)
    for b in boards:  # the legend: one colour per board, one marker per precision
        ax.scatter([], [], color=COLORS[boards.index(b) % len(COLORS)], label=f"board {b}")
    for prec in doc["matrix"]["precisions"]:
        ax.scatter([], [], color="#555", marker=MARKERS.get(prec, "o"), label=prec)
    ax.legend(fontsize=8)
    ax.set_xlabel("p50 latency per inference call (ms)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.margins(x=0.15, y=0.15)
    ax.set_xlim(left=0)
    alt = f"{title}: " + "; ".join(f"{p['model']} {p['precision']} on {p['board']}: {fmt_ms(p['p50_ms'])}, "
                                   f"{sig(p[key] * scale)}" for p in pts)
    return Plot(title, _png(fig), alt=alt, caption=caption)


def sweep_plots(doc: dict[str, Any]) -> list[Plot]:
    """Accuracy vs latency and energy vs latency over every measured cell, coloured by board."""
    pts = _points(doc)
    out = []
    title = "Accuracy vs latency, by board"
    fid = [p for p in pts if not p["is_baseline"] and p["top1_agreement"] is not None]
    if not fid:
        out.append(Plot(title, None, reason="no quantized cell has a fidelity measurement against fp32"))
    else:
        # fp32 is the reference of its own board: drawn at 100 %
        shown = [{**p, "top1_agreement": 1.0} if p["is_baseline"] else p for p in pts]
        out.append(_scatter_plot(doc, shown, title, "top1_agreement", 100.0, "top-1 agreement with fp32 on the same board (%)",
                                 "Each quantized cell's top-1 agreement with fp32 on the same board, on the head's "
                                 "held-out images; fp32 is the reference (100 %)."))
    title = "Energy vs latency, by board"
    lacking = []
    for b in doc["matrix"]["boards"]:
        sensor, why = energy_sensor(doc, b)
        if sensor is None:
            lacking.append(f"{b}: {why}")
    if not any(p["energy_j_per_inference"] is not None for p in pts):
        out.append(Plot(title, None, reason="no board has an energy measurement (" + "; ".join(lacking) + ")"))
    else:
        cap = "Net energy per inference call (measured minus idle)."
        if lacking:
            cap += " No energy figure on " + "; ".join(lacking) + "."
        out.append(_scatter_plot(doc, pts, title, "energy_j_per_inference", 1.0, "energy per inference, net of idle (J)",
                                 cap))
    return out


def _facts(doc: dict[str, Any]) -> list[tuple[str, str]]:
    s = doc["settings"]
    n_done = sum(c["status"] == "done" for c in doc["cells"])
    return [("Command", "edgevis sweep"), ("Status", f"{doc['status']}: {n_done} of {len(doc['cells'])} cells measured"),
            ("Models", ", ".join(doc["matrix"]["models"])), ("Precisions", ", ".join(doc["matrix"]["precisions"])),
            ("Boards", ", ".join(doc["matrix"]["boards"])), ("Cluster", str(s.get("cluster"))),
            ("Runtime", f"{s.get('runtime')} ({s.get('device')})"),
            ("Timing", f"{s.get('warmup')} warm-up iterations, then "
                       + (f"{s['iters']} iterations" if s.get("iters") else f"{s.get('duration_s')} s")
                       + f" over {s.get('rounds')} round(s), each in a fresh process"),
            ("Baseline", "fp32 on the same board (ratios and fidelity are against it)"),
            ("Created", str(doc.get("created")))]


def render_sweep_markdown(doc: dict[str, Any]) -> str:
    out = [f"# {_md(doc['title'])}", ""] + [f"- **{k}**: {_md(v)}" for k, v in _facts(doc)] + [""]
    h, rows = _missing_rows(doc)
    if rows:
        out += ["## Cells not measured", ""] + _md_table(h, rows) + [""]
    out += ["## Boards", ""] + _md_table(*_board_rows(doc)) + [""]
    if doc["warnings"]:
        out += ["## Warnings", ""] + [f"- {_md(w)}" for w in doc["warnings"]] + [""]
    out += ["## By model", ""]
    for m in doc["matrix"]["models"]:
        out += [f"### {_md(m)}", ""] + _md_table(*_model_rows(doc, m)) + [""]
    out += ["## By board", ""]
    for b in doc["matrix"]["boards"]:
        for m in doc["matrix"]["models"]:
            rep = board_report(doc, m, b)
            out += [f"### {_md(m)} on {_md(b)}", ""]
            if rep is None:
                out += ["No cell of this model was measured on this board.", ""]
                continue
            rows_ = summary_rows(rep)
            out += _md_table(*format_rows(rows_)) + [""] + [_md(n) + "  " for n in table_notes(rows_)] + [""]
    out += ["Plots (accuracy and energy against latency, by board) are in report.html beside this file.", ""]
    return "\n".join(out).rstrip() + "\n"


def render_sweep_html(doc: dict[str, Any], plots: list[Plot] | None = None) -> str:
    plots = sweep_plots(doc) if plots is None else plots
    parts = [f"<h1>{escape(doc['title'])}</h1>", _h_facts(_facts(doc))]
    h, rows = _missing_rows(doc)
    if rows:
        parts += ["<h2>Cells not measured</h2>", _h_table(h, rows)]
    parts += ["<h2>Boards</h2>", _h_table(*_board_rows(doc))]
    if doc["warnings"]:
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{escape(str(w))}</li>" for w in doc["warnings"]) + "</ul>")
    if plots:
        parts += ["<h2>Plots</h2>"] + [_h_plot(p) for p in plots]
    parts.append("<h2>By model</h2>")
    for m in doc["matrix"]["models"]:
        parts += [f"<h3>{escape(m)}</h3>", _h_table(*_model_rows(doc, m))]
    parts.append("<h2>By board</h2>")
    for b in doc["matrix"]["boards"]:
        for m in doc["matrix"]["models"]:
            rep = board_report(doc, m, b)
            parts.append(f"<h3>{escape(m)} on {escape(b)}</h3>")
            if rep is None:
                parts.append('<p class="none">No cell of this model was measured on this board.</p>')
                continue
            rows_ = summary_rows(rep)
            parts.append(_h_table(*format_rows(rows_), "summary", [r["is_baseline"] for r in rows_]))
            notes = table_notes(rows_)
            if notes:
                parts.append('<div class="notes">' + "<br>".join(escape(n) for n in notes) + "</div>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(doc['title'])}</title><style>{CSS}</style></head>\n<body><main>\n"
            + "\n".join(parts) + "\n</main></body></html>\n")


def validate_sweep_report(doc: Any) -> None:
    if not isinstance(doc, dict) or doc.get("schema") != SWEEP_SCHEMA:
        raise ReportError(f"not an edgevis sweep report (schema {doc.get('schema') if isinstance(doc, dict) else None!r})")
    if doc.get("schema_version") != SWEEP_VERSION:
        raise ReportError(f"sweep report version {doc.get('schema_version')!r} is not supported (this edgevis reads "
                          f"version {SWEEP_VERSION})")
    for k in ("matrix", "boards", "cells", "settings", "warnings", "status"):
        if k not in doc:
            raise ReportError(f"sweep report lacks {k}")


def write_sweep_report(doc: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """report.json, report.md and report.html of a sweep, each written atomically after all are rendered."""
    validate_sweep_report(doc)
    md, page = render_sweep_markdown(doc), render_sweep_html(doc)
    d = ensure_writable_dir(out_dir)
    return {"json": write_json_atomic(d / "report.json", doc),
            "markdown": write_bytes_atomic(d / "report.md", md.encode("utf-8")),
            "html": write_bytes_atomic(d / "report.html", page.encode("utf-8"))}
