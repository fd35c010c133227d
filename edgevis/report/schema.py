"""The report document: one versioned JSON shape shared by ``bench`` and ``profile``.

A report holds one entry per variant measured (``fp32``, ``int8``, ...), each with its
``edgevis profile`` result and, for quantized variants, its fidelity against the
baseline. Everything the table, the plots and the pages show is read from this dict,
so a report.json written today renders the same way later.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Iterable

from ..core.errors import EdgevisError

REPORT_SCHEMA = "edgevis.report"
REPORT_VERSION = 1

_TOP_KEYS = ("schema", "schema_version", "created", "command", "title", "model", "baseline", "device",
             "entries", "warnings")
_ENTRY_KEYS = ("label", "precision", "profile")
_RUN_KEYS = ("batch", "latency_ms", "samples_ms")
_LATENCY_KEYS = ("p50", "p90", "p99", "mean", "std")


class ReportError(EdgevisError):
    """A report document of another schema or version, or one that lacks what a report needs."""


def _missing(d: dict[str, Any], keys: Iterable[str]) -> list[str]:
    return [k for k in keys if k not in d]


def _check_run(where: str, run: Any) -> None:
    if not isinstance(run, dict):
        raise ReportError(f"{where} is not an object")
    if miss := _missing(run, _RUN_KEYS):
        raise ReportError(f"{where} lacks {', '.join(miss)}")
    lat = run["latency_ms"]
    if not isinstance(lat, dict) or (miss := _missing(lat, _LATENCY_KEYS)):
        raise ReportError(f"{where}.latency_ms lacks {', '.join(miss) if isinstance(lat, dict) else 'p50'}")
    if not isinstance(run["samples_ms"], list):
        raise ReportError(f"{where}.samples_ms is not a list")


def validate_report(d: Any) -> None:
    """Raise :class:`ReportError` (one line) unless ``d`` is a version-1 ``edgevis.report`` with what
    the renderers read: entries with unique labels, each with a profile of at least one run."""
    if not isinstance(d, dict):
        raise ReportError(f"a report must be a JSON object, not {type(d).__name__}")
    if d.get("schema") != REPORT_SCHEMA:
        raise ReportError(f"not an edgevis report: schema is {d.get('schema')!r}, expected {REPORT_SCHEMA!r}")
    version = d.get("schema_version")
    if version != REPORT_VERSION or isinstance(version, bool):
        newer = isinstance(version, int) and not isinstance(version, bool) and version > REPORT_VERSION
        hint = "; it was written by a newer edgevis" if newer else ""
        raise ReportError(f"report schema version {version!r} is not supported (this edgevis reads version "
                          f"{REPORT_VERSION}){hint}")
    if miss := _missing(d, _TOP_KEYS):
        raise ReportError(f"report lacks {', '.join(miss)}")
    entries = d["entries"]
    if not isinstance(entries, list) or not entries:
        raise ReportError("report has no entries: nothing was measured")
    labels: list[str] = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise ReportError(f"entries[{i}] is not an object")
        if miss := _missing(e, _ENTRY_KEYS):
            raise ReportError(f"entries[{i}] lacks {', '.join(miss)}")
        label = str(e["label"])
        if label in labels:
            raise ReportError(f"two entries are labelled {label!r}; labels must be unique")
        labels.append(label)
        runs = e["profile"].get("runs") if isinstance(e["profile"], dict) else None
        if not isinstance(runs, list) or not runs:
            raise ReportError(f"entry {label!r} has a profile with no runs")
        for j, run in enumerate(runs):
            _check_run(f"entry {label!r} runs[{j}]", run)
    if d["baseline"] is not None and d["baseline"] not in labels:
        raise ReportError(f"baseline {d['baseline']!r} is not the label of any entry ({', '.join(labels)})")
    if not isinstance(d["device"], dict):
        raise ReportError("report device is not an object")
    if not isinstance(d["warnings"], list):
        raise ReportError("report warnings is not a list")


def new_report(command: str, title: str, device: dict[str, Any], entries: list[dict[str, Any]], *,
               model: str | None = None, baseline: str | None = None, warnings: Iterable[str] = ()) -> dict[str, Any]:
    """A validated report dict stamped with the schema, its version and the UTC time of creation."""
    report = {
        "schema": REPORT_SCHEMA,
        "schema_version": REPORT_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "title": title,
        "model": model,
        "baseline": baseline,
        "device": device,
        "entries": list(entries),
        "warnings": list(warnings),
    }
    validate_report(report)
    return report


def entry_run(entry: dict[str, Any], batch: int | None = None) -> dict[str, Any]:
    """The run of ``entry`` at ``batch`` (None: its first run)."""
    runs = entry["profile"]["runs"]
    if batch is None:
        return runs[0]  # type: ignore[no-any-return]
    for run in runs:
        if run.get("batch") == batch:
            return run  # type: ignore[no-any-return]
    have = ", ".join(str(r.get("batch")) for r in runs)
    raise ReportError(f"entry {entry['label']!r} has no run at batch {batch} (it has batch {have})")


def baseline_entry(report: dict[str, Any]) -> dict[str, Any] | None:
    """The entry ratios are taken against, or None when the report names none."""
    for e in report["entries"]:
        if e["label"] == report.get("baseline"):
            return e  # type: ignore[no-any-return]
    return None


def energy_of(run: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(the energy measurement, None) when one was made, else (None, why not)."""
    energy = run.get("energy")
    if not energy:
        return None, "energy was not measured"
    if not energy.get("available"):
        return None, str(energy.get("reason") or "no energy meter on this device (no reason recorded)")
    if energy.get("j_per_inference") is None:
        return None, "the energy meter gave no per-inference figure"
    return energy, None
