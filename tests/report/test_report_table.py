import copy
import re

import pytest
from reportdata import NO_ENERGY, make_entry, make_report

from edgevis.core.errors import EdgevisError
from edgevis.report import format_rows, new_report, summary_rows
from edgevis.report.table import table_notes


def _run(report, label):
    return next(e for e in report["entries"] if e["label"] == label)["profile"]["runs"][0]


def _col(headers, cells, row, prefix):
    return cells[row][next(i for i, h in enumerate(headers) if h.startswith(prefix))]


def test_ratios_against_the_baseline_with_energy():
    report = make_report(energy=True)
    rows = {r["label"]: r for r in summary_rows(report)}
    base = _run(report, "fp32")
    for label in ("int8", "integer_only"):
        run, row = _run(report, label), rows[label]
        assert row["p50_ms"] == run["latency_ms"]["p50"]
        assert row["speedup_p50"] == pytest.approx(base["latency_ms"]["p50"] / run["latency_ms"]["p50"])
        assert row["throughput_ratio"] == pytest.approx(run["throughput_ips"] / base["throughput_ips"])
        entry = next(e for e in report["entries"] if e["label"] == label)
        assert row["size_ratio"] == pytest.approx(entry["profile"]["model"]["file_bytes"] / 46_300_000)
        j, j0 = run["energy"]["j_per_inference"], base["energy"]["j_per_inference"]
        assert row["energy_ratio"] == pytest.approx(j / j0)
        assert row["energy_j_per_inference"] == run["energy"]["j_per_inference"]
        assert row["top1_agreement"] == entry["fidelity"]["top1_agreement"]
    assert rows["int8"]["speedup_p50"] > 2  # 10.9 ms / 4.8 ms in the data
    fp32 = rows["fp32"]
    assert fp32["is_baseline"] and fp32["speedup_p50"] == 1.0 and fp32["energy_ratio"] == 1.0
    assert fp32["top1_agreement"] is None and fp32["fidelity_reason"] == "reference"


def test_formatted_table_units_baseline_and_reference():
    report = make_report(energy=True)
    rows = summary_rows(report)
    headers, cells = format_rows(rows)
    assert len(cells) == 3 and all(len(c) == len(headers) for c in cells)
    assert "Speedup vs fp32 (p50)" in headers and "Energy / inference (net of idle)" in headers
    base = _run(report, "fp32")
    assert _col(headers, cells, 0, "p50") == f"{base['latency_ms']['p50']:.1f} ms"
    assert _col(headers, cells, 0, "Speedup") == "1.00× (baseline)"
    assert _col(headers, cells, 0, "Top-1") == "reference" and _col(headers, cells, 0, "Cosine") == "reference"
    speed = base["latency_ms"]["p50"] / _run(report, "int8")["latency_ms"]["p50"]
    assert _col(headers, cells, 1, "Speedup") == f"{speed:.2f}×"
    assert _col(headers, cells, 1, "Top-1") == "90.5 %"
    # one byte unit everywhere: MiB, as the profiler's memory figures (12,100,000 bytes = 11.54 MiB)
    assert _col(headers, cells, 1, "File size") == f"{12_100_000 / 2**20:.1f} MiB"
    assert _col(headers, cells, 1, "Energy /").endswith(" J")
    assert _col(headers, cells, 1, "Avg power") == "24.0 W"
    assert table_notes(rows) == []  # everything was measured: nothing to explain


def test_unavailable_energy_shows_the_reason_never_a_number():
    rows = summary_rows(make_report(energy=False))
    assert all(r["energy_j_per_inference"] is None and r["energy_ratio"] is None for r in rows)
    assert all(r["energy_reason"] == NO_ENERGY for r in rows)
    headers, cells = format_rows(rows)
    notes = table_notes(rows)
    assert notes == [f"[1] {NO_ENERGY}"]  # one reason, one footnote
    for prefix in ("Energy /", "Energy vs", "Avg power"):
        for i in range(3):
            assert _col(headers, cells, i, prefix) == "— [1]"
    assert not any(re.search(r"\d\s*J\b", c) for row in cells for c in row)


def test_energy_on_some_entries_only():
    entries = [make_entry("fp32", seed=1, energy=False), make_entry("int8", seed=2, energy=True)]
    report = new_report("bench", "mixed", {}, entries, baseline="fp32")
    rows = summary_rows(report)
    assert rows[1]["energy_j_per_inference"] is not None and rows[1]["energy_ratio"] is None
    headers, cells = format_rows(rows)
    notes = table_notes(rows)
    ratio = _col(headers, cells, 1, "Energy vs")
    assert ratio.startswith("— [")
    assert any("fp32 has no energy measurement" in n and n.startswith(ratio[2:]) for n in notes)


def test_missing_fidelity_and_no_baseline():
    report = make_report(energy=False)
    report = copy.deepcopy(report)
    report["entries"][2]["fidelity"] = None
    headers, cells = format_rows(summary_rows(report))
    assert _col(headers, cells, 2, "Top-1").startswith("— [")
    assert any("no fidelity measurement for integer_only" in n for n in table_notes(summary_rows(report)))

    nobase = {**report, "baseline": None}
    rows = summary_rows(nobase)
    assert all(r["speedup_p50"] is None and r["ratio_reason"] for r in rows)
    headers, _ = format_rows(rows)
    assert not any(" vs " in h or h.startswith("Speedup") for h in headers)
    assert all("baseline" not in n for n in table_notes(rows))  # no footnote for columns not shown


def test_batch_selection_and_mismatch():
    entries = [make_entry("fp32", seed=1, energy=True, batches=(1, 8)),
               make_entry("int8", seed=2, energy=True, batches=(8,))]
    report = new_report("bench", "batches", {}, entries, baseline="fp32")
    rows = summary_rows(report)  # first runs: fp32 at batch 1, int8 at batch 8
    assert rows[1]["batch"] == 8 and rows[1]["speedup_p50"] is None and "batch 8" in rows[1]["ratio_reason"]
    assert rows[1]["size_ratio"] is not None  # file size does not depend on the batch
    at8 = summary_rows(report, batch=8)
    fp32_8 = entries[0]["profile"]["runs"][1]
    assert at8[1]["speedup_p50"] == pytest.approx(fp32_8["latency_ms"]["p50"]
                                                  / entries[1]["profile"]["runs"][0]["latency_ms"]["p50"])
    with pytest.raises(EdgevisError, match="no run at batch 4"):
        summary_rows(report, batch=4)


def test_a_lone_profile_has_no_ratio_or_fidelity_columns():
    report = new_report("profile", "lsnet_t.int8.onnx on ONNX Runtime", {}, [make_entry("fp32", seed=3, energy=False)])
    rows = summary_rows(report)
    headers, cells = format_rows(rows)
    assert not any(h.startswith(("Speedup", "Top-1", "Cosine")) or " vs " in h for h in headers)
    assert table_notes(rows) == [f"[1] {NO_ENERGY}"]
    assert cells[0][:2] == ["fp32", "1"]


def test_memory_cell_keeps_the_sign_of_added_memory():
    report = copy.deepcopy(make_report(energy=False))
    mem = report["entries"][0]["profile"]["runs"][0]["memory"]
    mem.update(peak_rss_mb=609.6, added_mb=-0.113)
    headers, cells = format_rows(summary_rows(report))
    assert _col(headers, cells, 0, "Peak RSS") == "609.6 MiB (-0.113 MiB)"
    assert _col(headers, cells, 1, "Peak RSS").startswith("265.7 MiB (+15.7 MiB")
