"""The report's plots, drawn with matplotlib's object API onto an Agg canvas.

No pyplot: nothing here selects a backend or keeps figures in global state, so a
caller's own matplotlib setup is left alone. Each function returns a :class:`Plot`
holding PNG bytes, or no image and the reason when there is nothing honest to draw
(e.g. no energy meter on the device). The numbers come from :func:`summary_rows`,
so the plots and the table show the same values.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from ..core.errors import missing_dependency
from .schema import entry_run
from .table import fmt_ms, sig, summary_rows

# matplotlib's default cycle (tab10), fixed per entry so a variant has one colour in every plot
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
TOP_OPS = 8


@dataclass(frozen=True)
class Plot:
    """One figure: ``png`` is None when there was nothing to draw, and ``reason`` says why."""

    title: str
    png: bytes | None
    alt: str = ""
    reason: str | None = None
    caption: str = ""


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise missing_dependency("matplotlib", purpose="the plots in report.html") from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def _color(report: dict[str, Any], label: str) -> str:
    labels = [e["label"] for e in report["entries"]]
    return COLORS[labels.index(label) % len(COLORS)]


def latency_distribution(report: dict[str, Any], batch: int | None = None) -> Plot:
    """Histogram (share of iterations per bin) and CDF of every timed iteration, per entry, p50/p99 marked."""
    import numpy as np

    title = "Latency distribution"
    series = []
    for e in report["entries"]:
        run = entry_run(e, batch)
        s = np.asarray([v for v in run["samples_ms"] if v is not None], dtype=float)
        s = s[np.isfinite(s)]
        if s.size:
            series.append((e["label"], run, np.sort(s)))
    if not series:
        return Plot(title, None, reason="no entry recorded its per-iteration latency samples")
    fig = _figure(11, 4.2)
    ax_h, ax_c = fig.subplots(1, 2)
    lo = min(s[0] for _, _, s in series)
    p99s = [float(run["latency_ms"]["p99"]) for _, run, _ in series]
    hi = max(s[-1] for _, _, s in series)
    clip = hi > 3 * max(p99s)
    top = 1.25 * max(p99s) if clip else hi
    p50s = [float(run["latency_ms"]["p50"]) for _, run, _ in series]
    log = max(p50s) / max(min(p50s), 1e-9) > 8 and lo > 0
    bins = np.geomspace(lo, top, 60) if log else np.linspace(lo, top, 60)
    hidden, peak = [], 0.0
    for label, run, s in series:
        c, lat = _color(report, label), run["latency_ms"]
        shown = s[s <= top]
        if shown.size < s.size:
            hidden.append(f"{label}: {s.size - shown.size} above {fmt_ms(top)}")
        w = np.full(shown.size, 100.0 / s.size)
        peak = max(peak, float(np.histogram(shown, bins=bins, weights=w)[0].max(initial=0.0)))
        ax_h.hist(shown, bins=bins, weights=w, histtype="stepfilled", alpha=0.3, color=c)
        ax_h.hist(shown, bins=bins, weights=w, histtype="step", linewidth=1.5, color=c,
                  label=f"{label} (batch {run['batch']}, {s.size} iterations)")
        ax_c.step(s, np.arange(1, s.size + 1) / s.size, where="post", color=c, linewidth=1.8,
                  label=f"{label}: p50 {fmt_ms(lat['p50'])}, p99 {fmt_ms(lat['p99'])}")
        for q, style, mark in ((lat["p50"], "-", "o"), (lat["p99"], "--", "^")):
            ax_h.axvline(float(q), color=c, linestyle=style, linewidth=1.2)
            ax_c.plot([float(q)], [0.5 if mark == "o" else 0.99], marker=mark, color=c, markersize=7)
    for ax in (ax_h, ax_c):
        ax.set_xlabel("latency per inference call (ms)")
        ax.grid(alpha=0.3)
        if log:
            ax.set_xscale("log")
    ax_h.set_ylim(0, peak * 1.35 or 1)  # headroom for the legend; step histograms do not autoscale
    ax_h.set_ylabel("share of iterations per bin (%)")
    ax_h.set_title("histogram (solid line: p50, dashed: p99)", fontsize=10)
    ax_c.set_ylabel("fraction of iterations at or below")
    ax_c.set_title("CDF (circle: p50, triangle: p99)", fontsize=10)
    ax_h.legend(fontsize=8, loc="upper center")
    ax_c.legend(fontsize=8, loc="lower right")
    caption = ("Not shown in the histogram (see the CDF): " + "; ".join(hidden) + ".") if hidden else ""
    alt = "Latency histogram and CDF per variant: " + "; ".join(
        f"{label} p50 {fmt_ms(run['latency_ms']['p50'])}, p99 {fmt_ms(run['latency_ms']['p99'])}"
        for label, run, _ in series)
    return Plot(title, _png(fig), alt=alt, caption=caption)


def per_layer_bars(report: dict[str, Any], batch: int | None = None) -> Plot:
    """Top op types by share of the profiled time, one panel per entry with a per-layer profile."""
    title = "Time per op type"
    have, lack = [], []
    for e in report["entries"]:
        pl = entry_run(e, batch).get("per_layer")
        (have if pl and pl.get("by_op") else lack).append((e["label"], pl))
    if not have:
        return Plot(title, None, reason="no entry has a per-layer profile")
    ncol = min(3, len(have))
    nrow = -(-len(have) // ncol)
    fig = _figure(11, nrow * (0.32 * (TOP_OPS + 1) + 1.1))
    axes = fig.subplots(nrow, ncol, squeeze=False).ravel()
    for ax, (label, pl) in zip(axes, have):
        ops = sorted(pl["by_op"], key=lambda o: -float(o["ms"]))
        top, rest = ops[:TOP_OPS], ops[TOP_OPS:]
        names = [str(o["op"]) for o in top]
        ms = [float(o["ms"]) for o in top]
        if rest:
            names.append(f"other ({len(rest)} op types)")
            ms.append(sum(float(o["ms"]) for o in rest))
        total = float(pl.get("total_ms") or sum(ms))
        shares = [100.0 * m / total if total else 0.0 for m in ms]
        y = list(range(len(names)))[::-1]
        ax.barh(y, shares, color=_color(report, label))
        ax.set_yticks(y, names, fontsize=8)
        for yi, sh, m in zip(y, shares, ms):
            ax.text(sh, yi, f" {sh:.0f} % ({sig(m, 2)} ms)", va="center", fontsize=7)
        ax.set_xlim(0, max(shares) * 1.45 or 1)
        ax.set_xlabel("share of profiled time (%)")
        ax.set_title(f"{label}: {fmt_ms(total)} per run", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    for ax in axes[len(have):]:
        ax.set_visible(False)
    sources = sorted({f"{pl.get('source', 'profiler')} over {pl.get('runs', '?')} runs" for _, pl in have})
    caption = f"Op times from the {'; '.join(sources)} (not the timed iterations)."
    if lack:
        caption += " No per-layer profile for " + ", ".join(label for label, _ in lack) + "."
    alt = "Bar charts of time share per op type: " + "; ".join(
        f"{label} top op {max(pl['by_op'], key=lambda o: float(o['ms']))['op']}" for label, pl in have)
    return Plot(title, _png(fig), alt=alt, caption=caption)


def _scatter(report: dict[str, Any], rows: list[dict[str, Any]], key: str, scale: float,
             ylabel: str) -> tuple[Any, Any]:
    fig = _figure(7, 4.2)
    ax = fig.subplots()
    base = next((r for r in rows if r["is_baseline"]), None)
    for r in rows:
        if r[key] is None:
            continue
        c = _color(report, r["label"])
        ax.scatter([r["p50_ms"]], [r[key] * scale], s=70, color=c, zorder=3)
        ax.annotate(r["label"], (r["p50_ms"], r[key] * scale), textcoords="offset points", xytext=(7, 5),
                    fontsize=9)
    if base is not None and base[key] is None:
        ax.axvline(base["p50_ms"], color=_color(report, base["label"]), linestyle="--", linewidth=1.2,
                   label=f"{base['label']} p50 {fmt_ms(base['p50_ms'])} (baseline)")
        ax.legend(fontsize=8)
    ax.set_xlabel(f"p50 latency per inference call (ms, batch {rows[0]['batch']})"
                  if len({r["batch"] for r in rows}) == 1 else "p50 latency per inference call (ms)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.margins(x=0.15, y=0.15)
    ax.set_xlim(left=0)  # latency from zero, so that horizontal distances read as the speedups in the table
    return fig, ax


def accuracy_vs_latency(report: dict[str, Any], batch: int | None = None) -> Plot:
    """p50 latency against top-1 accuracy on labelled images (``--val``: every variant, baseline included,
    with its 95 % interval), else against top-1 agreement with the baseline."""
    title = "Accuracy vs latency"
    rows = summary_rows(report, batch)
    labelled = [r for r in rows if r["top1_accuracy"] is not None]
    if labelled:
        fig, ax = _scatter(report, labelled, "top1_accuracy", 100.0, "top-1 accuracy on labelled images (%)")
        for r in labelled:
            lo, hi = r["top1_accuracy_ci95"]
            ax.errorbar([r["p50_ms"]], [100 * r["top1_accuracy"]], color=_color(report, r["label"]), capsize=4,
                        yerr=[[100 * (r["top1_accuracy"] - lo)], [100 * (hi - r["top1_accuracy"])]], zorder=2)
        ax.set_ylim(max(0.0, min(100 * r["top1_accuracy_ci95"][0] for r in labelled) - 3),
                    min(100.0, max(100 * r["top1_accuracy_ci95"][1] for r in labelled)) + 2)
        acc = next(e["accuracy"] for e in report["entries"] if e.get("accuracy"))
        caption = (f"Top-1 accuracy on {acc.get('images', '?')} labelled images ({acc.get('val', '?')}; class "
                   f"index: {acc.get('class_index', '?')}); bars: 95 % Wilson interval.")
        alt = "Scatter of p50 latency against top-1 accuracy: " + "; ".join(
            f"{r['label']} {fmt_ms(r['p50_ms'])}, {100 * r['top1_accuracy']:.1f} %" for r in labelled)
        return Plot(title, _png(fig), alt=alt, caption=caption)
    pts = [r for r in rows if r["top1_agreement"] is not None]
    if not pts:
        return Plot(title, None, reason="no entry has a fidelity measurement against the baseline")
    fig, ax = _scatter(report, rows, "top1_agreement", 100.0, "top-1 agreement with baseline (%)")
    top = max(100.0, max(r["top1_agreement"] * 100 for r in pts))
    ax.set_ylim(min(r["top1_agreement"] * 100 for r in pts) - 5, top + 2)
    caption = ("Top-1 agreement: share of held-out images whose top-1 class matches the baseline's; "
               "the baseline is the reference, drawn as a line at its p50.")
    alt = "Scatter of p50 latency against top-1 agreement: " + "; ".join(
        f"{r['label']} {fmt_ms(r['p50_ms'])}, {100 * r['top1_agreement']:.1f} %" for r in pts)
    return Plot(title, _png(fig), alt=alt, caption=caption)


def energy_vs_latency(report: dict[str, Any], batch: int | None = None) -> Plot:
    """p50 latency against net energy per inference, for the entries with an energy measurement."""
    title = "Energy vs latency"
    rows = summary_rows(report, batch)
    pts = [r for r in rows if r["energy_j_per_inference"] is not None]
    if not pts:  # why is said once, in the note under the summary table
        return Plot(title, None, reason="no entry has an energy measurement (the note under the summary says why)")
    fig, ax = _scatter(report, [r for r in rows if r["energy_j_per_inference"] is not None],
                       "energy_j_per_inference", 1.0, "energy per inference, net of idle (J)")
    ax.set_ylim(bottom=0)  # from zero too, so that vertical distances read as the energy ratios
    lacking = [r["label"] for r in rows if r["energy_j_per_inference"] is None]
    caption = "Net energy: measured energy minus idle power times the window, per inference call."
    if lacking:
        caption += " No energy measurement for " + ", ".join(lacking) + " (see the table's notes)."
    alt = "Scatter of p50 latency against energy per inference: " + "; ".join(
        f"{r['label']} {fmt_ms(r['p50_ms'])}, {sig(r['energy_j_per_inference'])} J" for r in pts)
    return Plot(title, _png(fig), alt=alt, caption=caption)


def all_plots(report: dict[str, Any], batch: int | None = None) -> list[Plot]:
    return [f(report, batch) for f in (latency_distribution, per_layer_bars, accuracy_vs_latency, energy_vs_latency)]
