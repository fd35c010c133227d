"""The side-by-side summary table: one row per variant, ratios against the baseline.

:func:`summary_rows` turns a report into numbers (None where nothing was measured,
with the reason beside it); :func:`format_rows` turns those into the strings that
Markdown, HTML and the CLI's rich table all print, so the three never disagree.

Ratio directions: ``speedup_p50`` = baseline p50 / this p50 and ``throughput_ratio`` =
this / baseline (above 1: faster); ``size_ratio`` and ``energy_ratio`` = this / baseline
(below 1: smaller, less energy per inference).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from .schema import baseline_entry, energy_of, entry_run

DASH = "—"


def file_mb(entry: dict[str, Any], run: dict[str, Any]) -> float | None:
    """Size of the model file in MiB (2^20 bytes: the unit of every size edgevis prints, memory included)."""
    nbytes = (entry["profile"].get("model") or {}).get("file_bytes")
    if nbytes is not None:
        return float(nbytes) / 2**20
    mb = (run.get("memory") or {}).get("file_mb")
    return None if mb is None else float(mb)


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return float(num) / float(den)


def _measure(report: dict[str, Any], entry: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    lat, mem = run["latency_ms"], run.get("memory") or {}
    energy, energy_reason = energy_of(run)
    is_base = entry["label"] == report.get("baseline")
    fid = entry.get("fidelity")
    if is_base:
        fid_reason = "reference"
    elif fid:
        fid_reason = None
    else:
        fid_reason = f"no fidelity measurement for {entry['label']}"
    return {
        "label": entry["label"], "precision": entry["precision"], "batch": run["batch"],
        "is_baseline": is_base, "baseline": report.get("baseline"),
        "p50_ms": lat["p50"], "p90_ms": lat["p90"], "p99_ms": lat["p99"], "mean_ms": lat["mean"],
        "std_ms": lat["std"], "cv": lat.get("cv"), "iterations": run.get("iterations"),
        "throughput_ips": run.get("throughput_ips"),
        "peak_rss_mb": mem.get("peak_rss_mb"), "added_mb": mem.get("added_mb"), "gpu_mb": mem.get("gpu_mb"),
        "file_mb": file_mb(entry, run),
        "energy_j_per_inference": energy["j_per_inference"] if energy else None,
        "energy_reason": energy_reason,
        "inferences_per_j": energy.get("inferences_per_j") if energy else None,
        "avg_power_w": energy.get("avg_power_w") if energy else None,
        "top1_agreement": None if is_base or not fid else fid.get("top1_agreement"),
        "cosine_mean": None if is_base or not fid else fid.get("cosine_mean"),
        "fidelity_reference": None if is_base or not fid else fid.get("reference"),
        "fidelity_reason": fid_reason,
        "top1_accuracy": (entry.get("accuracy") or {}).get("top1"),
        "top1_accuracy_ci95": (entry.get("accuracy") or {}).get("top1_ci95"),
    }


def summary_rows(report: dict[str, Any], batch: int | None = None) -> list[dict[str, Any]]:
    """One row per entry, at ``batch`` (None: each entry's first run), with ratios against the baseline.

    Latency, throughput and energy ratios need both runs at the same batch; where they
    differ the ratio is None and ``ratio_reason`` says why.
    """
    base = baseline_entry(report)
    base_row = _measure(report, base, entry_run(base, batch)) if base else None
    rows = []
    for entry in report["entries"]:
        row = _measure(report, entry, entry_run(entry, batch))
        row.update(speedup_p50=None, throughput_ratio=None, size_ratio=None, energy_ratio=None, ratio_reason=None)
        if base_row is None:
            row["ratio_reason"] = "the report names no baseline"
            rows.append(row)
            continue
        row["size_ratio"] = _ratio(row["file_mb"], base_row["file_mb"])
        if row["batch"] != base_row["batch"]:
            row["ratio_reason"] = (f"{row['label']} was measured at batch {row['batch']} and {base_row['label']} "
                                   f"at batch {base_row['batch']}: latencies are not comparable")
        else:
            row["speedup_p50"] = _ratio(base_row["p50_ms"], row["p50_ms"])
            row["throughput_ratio"] = _ratio(row["throughput_ips"], base_row["throughput_ips"])
            row["energy_ratio"] = _ratio(row["energy_j_per_inference"], base_row["energy_j_per_inference"])
        rows.append(row)
    return rows


def sig(v: float, digits: int = 3) -> str:
    """``v`` with ``digits`` significant digits in fixed-point notation (never 1e+03)."""
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    places = max(0, digits - 1 - math.floor(math.log10(abs(v))))
    return f"{v:.{places}f}"


def fmt_ms(v: float) -> str:
    return f"{v:.1f} ms" if abs(v) >= 10 else f"{sig(v)} ms"


def fmt_mb(v: float) -> str:
    """A size in MiB (2^20 bytes), the one byte unit of edgevis's output (the profiler's memory is in MiB too)."""
    return f"{v:.1f} MiB" if abs(v) >= 10 else f"{sig(v)} MiB"


def fmt_ips(v: float) -> str:
    return f"{v:.0f} img/s" if abs(v) >= 100 else f"{sig(v)} img/s"


def fmt_ratio(v: float) -> str:
    return f"{v:.2f}×"


def fmt_pct(v: float) -> str:
    return f"{100 * v:.1f} %"


class _Notes:
    """Footnotes, numbered in order of first use; one reason gets one number."""

    def __init__(self) -> None:
        self.items: dict[str, int] = {}

    def mark(self, reason: str) -> str:
        n = self.items.setdefault(reason, len(self.items) + 1)
        return f"[{n}]"

    def missing(self, reason: str | None) -> str:
        return f"{DASH} {self.mark(reason)}" if reason else DASH


def _headers(base: str | None, fidelity: bool, accuracy: bool = False) -> list[tuple[str, str]]:
    """(key, header) for each column: ratio columns only when there is a baseline, fidelity columns
    when there is a baseline or a fidelity measurement (a lone ``profile`` has neither)."""
    vs = f" vs {base}" if base else ""
    cols = [("variant", "Variant"), ("batch", "Batch"), ("p50", "p50 latency"), ("p99", "p99 latency"),
            ("mean", "Mean ± std latency"), ("speedup", f"Speedup{vs} (p50)"),
            ("thr", "Throughput"), ("thr_ratio", f"Throughput{vs}"), ("size", "File size"), ("size_ratio", f"Size{vs}"),
            ("rss", "Peak RSS (added)"), ("energy", "Energy / inference (net of idle)"),
            ("energy_ratio", f"Energy{vs}"), ("power", "Avg power"), ("top1", f"Top-1 agreement{vs}"),
            ("cos", f"Cosine{vs} (mean)")]
    if accuracy:  # measured on labelled images (--val): beside agreement, not instead of it
        cols.insert(1, ("acc", "Top-1 accuracy (95 % CI)"))
    drop = set() if base else {"speedup", "thr_ratio", "size_ratio", "energy_ratio"}
    if not base and not fidelity:
        drop |= {"top1", "cos"}
    return [c for c in cols if c[0] not in drop]


def _value(v: float | None, fmt: Callable[[float], str], notes: _Notes, reason: str | None) -> str:
    return notes.missing(reason) if v is None else fmt(v)


def _ratio_cell(row: dict[str, Any], key: str, notes: _Notes, reason: str | None, compact: bool = False) -> str:
    if row["is_baseline"] and row[key] is not None:
        return fmt_ratio(row[key]) if compact else f"{fmt_ratio(row[key])} (baseline)"
    return _value(row[key], fmt_ratio, notes, reason)


def _bare(fmt: Callable[[float], str]) -> Callable[[float], str]:
    """``fmt`` without its unit ("1.5 ms" -> "1.5"): the compact table says the unit once, in the header."""
    return lambda v: fmt(v).rsplit(" ", 1)[0]


def _cells(row: dict[str, Any], notes: _Notes, compact: bool = False) -> dict[str, Callable[[], str]]:
    """Each column's cell, made on demand so that only the columns shown number footnotes. ``compact``: units
    left to the headers (:data:`COMPACT_HEADERS`), the baseline's ratios without "(baseline)", the accuracy
    interval without percent signs - what lets the terminal table fit 100 columns with nothing cut."""
    ms, mb, ips = (_bare(fmt_ms), _bare(fmt_mb), _bare(fmt_ips)) if compact else (fmt_ms, fmt_mb, fmt_ips)
    same = row["label"].replace("_", "-") == row["precision"].replace("_", "-")
    label = row["label"] if same else f"{row['label']} ({row['precision']})"
    ratio_reason, energy_reason, fid_reason = row["ratio_reason"], row["energy_reason"], row["fidelity_reason"]
    if energy_reason:
        energy_ratio_reason = energy_reason
    elif ratio_reason:
        energy_ratio_reason = ratio_reason
    else:
        energy_ratio_reason = f"{row['baseline']} has no energy measurement"

    def rss() -> str:
        if row["peak_rss_mb"] is None:
            return notes.missing("memory was not measured")
        added = f" ({'+' if row['added_mb'] >= 0 else ''}{mb(row['added_mb'])})" \
            if row["added_mb"] is not None else ""
        return mb(row["peak_rss_mb"]) + added

    def fidelity(key: str, fmt: Callable[[float], str]) -> str:
        if fid_reason == "reference":
            return "reference"
        text = _value(row[key], fmt, notes, fid_reason or f"{key} was not recorded for {row['label']}")
        ref = row["fidelity_reference"]
        if row[key] is not None and ref and row["baseline"] and ref != row["baseline"]:
            text += " " + notes.mark(f"fidelity of {row['label']} was measured against {ref}, not {row['baseline']}")
        return text

    def value(key: str, fmt: Callable[[float], str], reason: str | None) -> Callable[[], str]:
        return lambda: _value(row[key], fmt, notes, reason)

    def ratio(key: str, reason: str | None) -> Callable[[], str]:
        return lambda: _ratio_cell(row, key, notes, reason, compact)

    return {
        "variant": lambda: label, "batch": lambda: str(row["batch"]),
        "p50": value("p50_ms", ms, None), "p99": value("p99_ms", ms, None),
        "mean": lambda: f"{sig(row['mean_ms'])} ± {sig(row['std_ms'], 2)} ms",
        "speedup": ratio("speedup_p50", ratio_reason),
        "thr": value("throughput_ips", ips, "throughput was not recorded"),
        "thr_ratio": ratio("throughput_ratio", ratio_reason or "throughput was not recorded"),
        "size": value("file_mb", mb, "file size was not recorded"),
        "size_ratio": ratio("size_ratio", "file size was not recorded"),
        "rss": rss,
        "energy": value("energy_j_per_inference", lambda v: sig(v) if compact else f"{sig(v)} J", energy_reason),
        "energy_ratio": ratio("energy_ratio", energy_ratio_reason),
        "power": value("avg_power_w", lambda v: f"{sig(v)} W", energy_reason),
        "top1": lambda: fidelity("top1_agreement", fmt_pct),
        "cos": lambda: fidelity("cosine_mean", lambda v: f"{v:.4f}"),
        "acc": lambda: (notes.missing("no accuracy measurement") if row["top1_accuracy"] is None else
                        f"{100 * row['top1_accuracy']:.1f} ({100 * row['top1_accuracy_ci95'][0]:.1f}–"
                        f"{100 * row['top1_accuracy_ci95'][1]:.1f})" if compact else
                        f"{fmt_pct(row['top1_accuracy'])} ({fmt_pct(row['top1_accuracy_ci95'][0])}–"
                        f"{fmt_pct(row['top1_accuracy_ci95'][1])})"),
    }


# what a terminal shows by default: the columns a reviewer reads first, within 100 columns
TERMINAL_COLUMNS = ("variant", "acc", "p50", "speedup", "thr", "size", "rss", "energy", "top1")
# the compact (terminal) table's headers, by column key: each unit said once, here, not in every cell
# (two lines each, so that a header is no wider than its numbers)
COMPACT_HEADERS = {"acc": "Top-1 %\n(95 % CI)", "p50": "p50\nms", "p99": "p99\nms", "speedup": "Speedup\n(p50)",
                   "thr": "Through-\nput img/s", "size": "Size\nMiB", "rss": "Peak RSS\nMiB (added)",
                   "energy": "Energy\nJ", "top1": "Top-1\nagreement"}
# columns that exist only to carry an energy figure: hidden, with one note, where no row has one
_ENERGY_COLUMNS = ("energy", "energy_ratio", "power")


def _format(rows: list[dict[str, Any]], columns: Sequence[str] | None = None,
            hide_empty: bool = False, compact: bool = False) -> tuple[list[str], list[list[str]], list[str]]:
    base = rows[0]["baseline"] if rows else None
    cols = _headers(base, any(r["fidelity_reference"] is not None or r["top1_agreement"] is not None for r in rows),
                    any(r["top1_accuracy"] is not None for r in rows))
    if columns is not None:
        cols = [c for c in cols if c[0] in columns]
    lead: list[str] = []
    if hide_empty and rows and all(r["energy_j_per_inference"] is None for r in rows):
        shown = [h for k, h in cols if k in _ENERGY_COLUMNS]
        cols = [c for c in cols if c[0] not in _ENERGY_COLUMNS]
        reasons = sorted({r["energy_reason"] for r in rows if r["energy_reason"]})
        if shown:
            lead.append(f"{', '.join(shown)}: not shown, no measurement"
                        + (f" ({'; '.join(reasons)})" if reasons else ""))
    notes = _Notes()
    body = []
    for row in rows:
        cells = _cells(row, notes, compact)
        body.append([cells[k]() for k, _ in cols])
    headers = [COMPACT_HEADERS.get(k, h) if compact else h for k, h in cols]
    return headers, body, lead + [f"[{n}] {text}" for text, n in notes.items.items()]


def format_rows(rows: list[dict[str, Any]], columns: Sequence[str] | None = None,
                hide_empty: bool = False, compact: bool = False) -> tuple[list[str], list[list[str]]]:
    """(headers, cells) of the summary table, every number with its unit; missing values are "—"
    followed by a footnote mark whose text :func:`table_notes` gives. p90 and CV stay in the rows and
    the per-entry details: the table is kept to what fits a review slide. ``columns`` keeps only those
    keys (see :data:`TERMINAL_COLUMNS`); ``hide_empty`` drops the energy columns where no row has energy,
    leaving one note instead of a footnote per cell; ``compact`` puts the units in the headers (the terminal)."""
    headers, body, _ = _format(rows, columns, hide_empty, compact)
    return headers, body


def table_notes(rows: list[dict[str, Any]], columns: Sequence[str] | None = None, hide_empty: bool = False,
                compact: bool = False) -> list[str]:
    """The footnotes the marks in :func:`format_rows` refer to, e.g. ``"[1] no RAPL zones ..."``."""
    return _format(rows, columns, hide_empty, compact)[2]
