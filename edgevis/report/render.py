"""A report as report.json, report.md and a self-contained report.html.

The HTML carries its plots as ``data:`` PNGs and its style inline: no script, no
external URL, so it opens the same from an e-mail attachment or an air-gapped
device. Every string from the data is escaped.
"""

from __future__ import annotations

import base64
import os
from html import escape
from pathlib import Path
from typing import Any

from ..core.files import ensure_writable_dir, write_bytes_atomic, write_json_atomic
from .details import Block, device_facts, entry_blocks, op_comparison_block, report_facts
from .plots import Plot, all_plots
from .schema import validate_report
from .table import format_rows, summary_rows, table_notes

PLOTS_NOTE = ("Plots (latency distribution, time per op type, accuracy and energy against latency) "
              "are in report.html beside this file.")


def _entry_title(entry: dict[str, Any]) -> str:
    same = entry["label"] == entry["precision"]
    return str(entry["label"]) if same else f"{entry['label']} ({entry['precision']})"


def _md(text: Any) -> str:
    """A string from the data made safe inside Markdown text and table cells."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
            .replace("\r", " ").replace("\n", " "))


def _numeric_columns(headers: list[str], rows: list[list[str]]) -> list[bool]:
    """Columns to right-align: those holding a number, or only "—" (text columns stay left)."""
    def number(c: str) -> bool:
        return c[:1].isdigit() or (c[:1] in "+-−" and c[1:2].isdigit())

    return [i > 0 and bool(rows) and (any(number(r[i]) for r in rows) or all(r[i].startswith("—") for r in rows))
            for i in range(len(headers))]


def _md_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    right = _numeric_columns(headers, rows)
    out = ["| " + " | ".join(_md(h) for h in headers) + " |", "|" + "|".join(
        "---:" if r else ":---" for r in right) + "|"]
    return out + ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]


def _md_block(b: Block, level: str = "###") -> list[str]:
    out = [f"{level} {_md(b.title)}", ""]
    if b.facts:
        out += [f"- **{_md(k)}**: {_md(v)}" for k, v in b.facts] + [""]
    if b.headers:
        out += _md_table(b.headers, b.rows) + [""]
    if b.lines:
        out += [f"- {_md(line)}" for line in b.lines] + [""]
    return out


def render_markdown(report: dict[str, Any]) -> str:
    rows = summary_rows(report)
    headers, cells = format_rows(rows, hide_empty=True)
    out = [f"# {_md(report['title'])}", ""]
    out += [f"- **{k}**: {_md(v)}" for k, v in report_facts(report)] + [""]
    out += ["## Device", ""] + [f"- **{k}**: {_md(v)}" for k, v in device_facts(report)] + [""]
    out += ["## Summary", ""] + _md_table(headers, cells) + [""]
    out += [_md(n) + "  " for n in table_notes(rows, hide_empty=True)]
    out += ["", PLOTS_NOTE, ""]
    cmp_block = op_comparison_block(report)
    if cmp_block is not None:
        out += _md_block(cmp_block, "##")
    if report["warnings"]:
        out += _md_block(Block("Warnings", lines=[str(w) for w in report["warnings"]]), "##")
    for entry in report["entries"]:
        out += [f"## {_md(_entry_title(entry))}", ""]
        for b in entry_blocks(report, entry):
            out += _md_block(b)
    return "\n".join(out).rstrip() + "\n"


CSS = """
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; color: #1b1f24;
       margin: 0; background: #fff; }
main { max-width: 1400px; margin: 0 auto; padding: 16px 16px 48px; }
h1 { font-size: 24px; margin: 8px 0 12px; }
h2 { font-size: 19px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 15px; margin: 18px 0 6px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0; font-size: 14px; }
dt { font-weight: 600; } dd { margin: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border: 1px solid #d0d7de; padding: 4px 6px; white-space: nowrap; }
th { background: #f3f5f7; vertical-align: bottom; white-space: normal; text-align: center; max-width: 8em; }
td.num { text-align: right; } td.text { text-align: left; }
table.summary { font-size: 12px; }
table.summary td, table.summary th { padding: 4px 5px; } table.summary td { vertical-align: top; }
table.summary tr.baseline td { background: #f6f9ff; }
.notes, .caption, .none, ul { font-size: 13px; color: #444; }
.bad { color: #b00020; font-weight: 600; }
ul { padding-left: 20px; margin: 4px 0; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6e9; }
figcaption { font-size: 13px; color: #444; margin-top: 4px; }
.none { border-left: 3px solid #bf8700; padding: 4px 10px; background: #fff8e5; }
"""


def _h_cell(cell: str, right: bool, wrap: bool) -> str:
    text = escape(cell)
    if wrap:  # "310.2 MiB (+60.2 MiB)" on two lines keeps the summary within a laptop screen's width
        text = text.replace(" (", "<br>(")
    return f'<td class="{"num" if right else "text"}">{text}</td>'


def _h_table(headers: list[str], rows: list[list[str]], cls: str = "", marks: list[bool] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    right = _numeric_columns(headers, rows)
    body = "".join(
        ('<tr class="baseline">' if marks and marks[i] else "<tr>")
        + "".join(_h_cell(c, r, cls == "summary") for c, r in zip(row, right)) + "</tr>" for i, row in enumerate(rows))
    return (f'<div class="scroll"><table class="{escape(cls)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _h_facts(facts: list[tuple[str, str]]) -> str:
    def value(v: str) -> str:  # random weights are said in red: every accuracy figure beside them is noise
        return f'<span class="bad">{escape(v)}</span>' if v.startswith("random-init") else escape(v)

    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{value(v)}</dd>" for k, v in facts) + "</dl>"


def _h_block(b: Block) -> str:
    out = [f"<h3>{escape(b.title)}</h3>"]
    if b.facts:
        out.append(_h_facts(b.facts))
    if b.headers:
        out.append(_h_table(b.headers, b.rows))
    if b.lines:
        out.append("<ul>" + "".join(f"<li>{escape(x)}</li>" for x in b.lines) + "</ul>")
    return "\n".join(out)


def _h_plot(p: Plot) -> str:
    if p.png is None:
        return f'<h3>{escape(p.title)}</h3><p class="none">Not drawn: {escape(p.reason or "no data")}.</p>'
    src = "data:image/png;base64," + base64.b64encode(p.png).decode("ascii")
    cap = f"<figcaption>{escape(p.caption)}</figcaption>" if p.caption else ""
    return f'<h3>{escape(p.title)}</h3><figure><img src="{src}" alt="{escape(p.alt)}">{cap}</figure>'


def render_html(report: dict[str, Any], plots: list[Plot] | None = None) -> str:
    """The page; ``plots`` defaults to :func:`all_plots` (pass ``[]`` for none)."""
    rows = summary_rows(report)
    headers, cells = format_rows(rows, hide_empty=True)
    plots = all_plots(report) if plots is None else plots
    parts = [f"<h1>{escape(report['title'])}</h1>", _h_facts(report_facts(report)),
             "<h2>Device</h2>", _h_facts(device_facts(report)),
             "<h2>Summary</h2>", _h_table(headers, cells, "summary", [r["is_baseline"] for r in rows])]
    notes = table_notes(rows, hide_empty=True)
    if notes:
        parts.append('<div class="notes">' + "<br>".join(escape(n) for n in notes) + "</div>")
    cmp_block = op_comparison_block(report)
    if cmp_block is not None:
        parts.append(_h_block(cmp_block).replace("<h3>", "<h2>", 1).replace("</h3>", "</h2>", 1))
    if report["warnings"]:
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{escape(str(w))}</li>" for w in report["warnings"])
                     + "</ul>")
    if plots:
        parts.append("<h2>Plots</h2>")
        parts += [_h_plot(p) for p in plots]
    for entry in report["entries"]:
        parts.append(f"<h2>{escape(_entry_title(entry))}</h2>")
        parts += [_h_block(b) for b in entry_blocks(report, entry)]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(report['title'])}</title><style>{CSS}</style></head>\n<body><main>\n"
            + "\n".join(parts) + "\n</main></body></html>\n")


def write_report(report: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Validate ``report`` and write report.json, report.md and report.html into ``out_dir``.

    Everything is rendered before the first file is written, each file atomically."""
    validate_report(report)
    md, page = render_markdown(report), render_html(report)
    d = ensure_writable_dir(out_dir)
    return {"json": write_json_atomic(d / "report.json", report),
            "markdown": write_bytes_atomic(d / "report.md", md.encode("utf-8")),
            "html": write_bytes_atomic(d / "report.html", page.encode("utf-8"))}
