"""The bench table on a terminal: within 100 columns by default, numbers never cut; --wide and --csv for the rest."""

import csv
import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))
from reportdata import make_report  # noqa: E402

import edgevis.cli.bench as bench_cli  # noqa: E402


def render(report, width, **kw):
    buf = io.StringIO()
    console = Console(file=buf, width=width, soft_wrap=False, color_system=None)
    old = bench_cli.out
    bench_cli.out = console
    try:
        bench_cli.print_bench(report, **kw)
    finally:
        bench_cli.out = old
    return buf.getvalue()


@pytest.mark.parametrize("energy", [False, True])
def test_default_table_fits_100_columns_and_cuts_no_number(energy):
    report = make_report(energy=energy)
    text = render(report, 100)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "…" not in text  # rich's ellipsis: a cut cell
    assert "integer_only" in text and "2.27×" in text  # the label and the ratio whole
    if not energy:  # empty energy columns leave one note, not a column of dashes with a footnote per cell
        assert "Energy / inference (net of idle): not shown, no measurement (no INA3221" in text
        assert text.count("no RAPL zones") == 1


@pytest.mark.parametrize("energy", [False, True])
def test_with_accuracy_the_table_still_fits_and_says_units_in_headers(energy):
    report = make_report(energy=energy)
    for i, e in enumerate(report["entries"]):  # --val: top-1 accuracy with its 95 % interval, one more column
        e["accuracy"] = {"top1": 0.969 - 0.01 * i, "top1_ci95": [0.946 - 0.01 * i, 0.983 - 0.01 * i]}
    text = render(report, 100)
    assert max(len(line) for line in text.splitlines()) <= 100 and "…" not in text
    lines = text.splitlines()
    if not energy:  # each row on one line, every interval whole on it
        assert any("integer_only" in ln and "94.9 (92.6–96.3)" in ln for ln in lines)
        assert any(ln.startswith("│ fp32 ") and "96.9 (94.6–98.3)" in ln and "reference" in ln for ln in lines)
    else:  # one column more: a cell may wrap at its space, a number never splits
        assert "(92.6–96.3)" in text and "(94.6–98.3)" in text and "0.0783" in text
    assert "MiB" in text and text.count("MiB") <= 2  # in the headers (Size, Peak RSS), not in every cell
    assert " ms " not in text.split("┡")[1]  # the body's numbers carry no unit: the header says ms


def test_wide_and_csv_have_every_column(capsys):
    report = make_report(energy=False)
    wide = render(report, 400, wide=True)
    assert "Avg power" in wide and "Throughput vs fp32" in wide
    bench_cli.print_csv(report)
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][:2] == ["batch", "Variant"] and "Avg power" in rows[0] and len(rows) == 4


def test_profile_latency_table_fits_100_columns_with_numbers_whole():
    import edgevis.cli.profile as profile_cli

    result = make_report(energy=False)["entries"][0]["profile"]
    run = result["runs"][0]
    run["iterations"], run["latency_ms"]["p99"], run["throughput_ips"] = 102204, 1234.567, 9876.5
    buf = io.StringIO()
    Console(file=buf, width=100, soft_wrap=False, color_system=None).print(profile_cli.latency_table(result))
    text = buf.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 100 and "…" not in text
    row = next(ln for ln in text.splitlines() if ln.startswith("│ "))  # the one run on one line, numbers whole
    assert "102204" in row and "1235" in row and "9876" in row and "p95" not in text and "GPU" not in text
    buf = io.StringIO()
    Console(file=buf, width=160, soft_wrap=False, color_system=None).print(profile_cli.latency_table(result, wide=True))
    assert all(k in buf.getvalue() for k in ("p95", "min", "max"))
