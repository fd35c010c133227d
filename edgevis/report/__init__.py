"""Reports of ``edgevis bench`` and ``edgevis profile``: report.json (versioned), report.md and a
self-contained report.html with plots. matplotlib is needed only for the plots."""

from __future__ import annotations

from .render import render_html, render_markdown, write_report
from .schema import REPORT_SCHEMA, REPORT_VERSION, ReportError, new_report, validate_report
from .table import format_rows, summary_rows, table_notes

__all__ = ["REPORT_SCHEMA", "REPORT_VERSION", "ReportError", "format_rows", "new_report", "render_html",
           "render_markdown", "summary_rows", "table_notes", "validate_report", "write_report"]
