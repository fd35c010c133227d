import base64
import copy
import json
import sys
from html.parser import HTMLParser

import pytest
from reportdata import NO_ENERGY, make_report

from edgevis.core.errors import EdgevisError, MissingDependencyError
from edgevis.report import format_rows, render_html, render_markdown, summary_rows, write_report
from edgevis.report.table import table_notes

PNG = b"\x89PNG\r\n\x1a\n"


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(page):
    p = _Tags()
    p.feed(page)
    return p


@pytest.fixture(scope="module")
def reports():
    return {"energy": make_report(energy=True), "none": make_report(energy=False)}


@pytest.fixture(scope="module")
def pages(reports):
    return {k: render_html(r) for k, r in reports.items()}


def test_markdown_has_device_table_rows_notes_and_details(reports):
    r = reports["none"]
    md = render_markdown(r)
    rows = summary_rows(r)
    # no energy on this host: its columns are left out, with one note saying why (issue 17)
    headers, cells = format_rows(rows, hide_empty=True)
    assert "| " + " | ".join(headers) + " |" in md and not any("Energy" in h for h in headers)
    for row in cells:
        assert "| " + " | ".join(row) + " |" in md
    for note in table_notes(rows, hide_empty=True):
        assert note in md
    assert "Energy / inference (net of idle), Energy vs fp32, Avg power: not shown, no measurement" in md
    assert "AMD EPYC 7B13" in md and "onnxruntime 1.23.2" in md
    assert "plots" in md.lower() and "report.html" in md
    assert "## int8" in md and "Top-1 agreement" in md and "| QLinearConv | 40 |" in md
    assert "no per-layer profile was taken" in md  # integer_only has per_layer null
    # the sensor's explanation once, under the summary: not again in each variant's section (issue 17)
    assert md.count(NO_ENERGY) == 1 and "### Energy" not in md
    assert "](" not in md and "http" not in md  # nothing external: no links, no images


def test_html_is_self_contained_and_plots_decode_to_png(pages):
    for name, page in pages.items():
        tags = _parse(page).tags
        names = {t for t, _ in tags}
        assert not names & {"script", "link", "iframe", "object", "embed"}
        for tag, attrs in tags:
            for key in ("src", "href"):
                assert not (attrs.get(key) or "").lower().startswith(("http:", "https:", "//")), (tag, attrs)
        imgs = [a for t, a in tags if t == "img"]
        assert len(imgs) == (4 if name == "energy" else 3)
        for a in imgs:
            assert a["src"].startswith("data:image/png;base64,") and a["alt"]
            assert base64.b64decode(a["src"].split(",", 1)[1], validate=True).startswith(PNG)
        assert "http://" not in page and "https://" not in page and "url(" not in page


def test_html_states_why_energy_is_not_plotted(pages):
    text = " ".join(_parse(pages["none"]).text)
    assert "Not drawn: no entry has an energy measurement" in text and text.count(NO_ENERGY) == 1
    assert "reference" in text


def test_run_warnings_repeated_by_the_profile_are_said_once(reports):
    r = copy.deepcopy(reports["none"])
    prof = r["entries"][1]["profile"]
    prof["runs"][0]["warnings"] = ["too noisy for ±2.0%"]
    prof["warnings"] = ["batch 1: too noisy for ±2.0%"]
    prof["runs"][0]["energy"] = {"available": False, "reason": NO_ENERGY, "warnings": ["idle power drifted"]}
    md = render_markdown(r)
    assert md.count("too noisy for ±2.0%") == 1 and "batch 1: batch 1" not in md
    assert "- batch 1: energy: idle power drifted" in md


def test_every_string_from_the_data_is_escaped(reports):
    r = copy.deepcopy(reports["none"])
    r["title"] = "<script>alert(1)</script> & co"
    r["entries"][1]["label"] = "int8<b>|x"
    r["entries"][1]["profile"]["runs"][0]["warnings"] = ["<img src=https://evil.example/x.png>"]
    page = render_html(r)
    assert "<script>" not in page and "<b>" not in page and "<img src=https" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    md = render_markdown(r)
    assert "<script>" not in md and "<img" not in md and "int8&lt;b&gt;\\|x" in md


def test_write_report_writes_three_files(tmp_path, reports):
    out = tmp_path / "new" / "dir"
    paths = write_report(reports["energy"], out)
    assert {p.name for p in paths.values()} == {"report.json", "report.md", "report.html"}
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]
    assert json.loads(paths["json"].read_text()) == reports["energy"]
    assert paths["json"].read_text().startswith('{\n  "schema": "edgevis.report"')
    assert paths["markdown"].read_text(encoding="utf-8") == render_markdown(reports["energy"])


def test_write_report_refuses_an_invalid_report_and_writes_nothing(tmp_path, reports):
    bad = {**reports["none"], "schema_version": 99}
    with pytest.raises(EdgevisError, match="schema version 99"):
        write_report(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_matplotlib_names_the_package(tmp_path, reports, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(MissingDependencyError, match="matplotlib is not installed") as e:
        write_report(reports["none"], tmp_path / "out")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "out" / "report.json").exists()


def test_gpu_memory_column_only_where_measured(reports):
    r = copy.deepcopy(reports["none"])
    assert all(run["memory"].get("gpu_mb") is None for e in r["entries"] for run in e["profile"]["runs"])
    assert "GPU memory" not in render_markdown(r)  # a CPU host: no column of dashes
    r["entries"][1]["profile"]["runs"][0]["memory"]["gpu_mb"] = 123.4
    md = render_markdown(r)
    assert md.count("| GPU memory |") == 1 and "| 123.4 MiB |" in md
