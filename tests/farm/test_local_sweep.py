"""`edgevis sweep --cluster local` end to end, as the README shows it: the README's block is run as written
(in a folder holding the files it names), and its report is read back."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def readme_block(marker):
    """The README's ```bash block in the Device farm section that contains ``marker``."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Device farm"):]
    section = section[:section.index("\n## ", 4)] if "\n## " in section[4:] else section
    blocks = [b for b in re.findall(r"```bash\n(.*?)\n```", section, flags=re.S) if marker in b]
    assert len(blocks) == 1, f"one README block with {marker!r} expected"
    return blocks[0]


def run_block(block, cwd, **env_extra):
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
           **env_extra}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


def test_readme_local_sweep_two_models_two_precisions_two_boards(farm_files, tmp_path):
    ckpt, (calib, held), out = farm_files
    # the files the README's command names; edgevis_out holds this session's exports, which the sweep reuses
    (tmp_path / "test_lsnet_digits.pth").symlink_to(ckpt)
    (tmp_path / "digits").mkdir()
    (tmp_path / "digits" / "train").symlink_to(calib)
    (tmp_path / "digits" / "test").symlink_to(held)
    (tmp_path / "edgevis_out").symlink_to(out)
    block = readme_block("--cluster local")
    # --cluster local needs no Ray: a `ray` package that cannot be imported shadows the installed one
    no_ray = tmp_path / "no_ray"
    (no_ray / "ray").mkdir(parents=True)
    (no_ray / "ray" / "__init__.py").write_text("raise ImportError('no ray here: the test hides it')\n")
    p = run_block(block, tmp_path, PYTHONPATH=str(no_ray))
    assert p.returncode == 0, p.stderr
    rep = tmp_path / "sweep_report"
    doc = json.loads((rep / "report.json").read_text())
    assert doc["schema"] == "edgevis.sweep" and doc["status"] == "complete"
    assert doc["matrix"] == {"models": ["test_lsnet@64", "test_lsnet@48"], "precisions": ["fp32", "int8"],
                             "boards": ["one", "two"]}
    assert len(doc["cells"]) == 8 and all(c["status"] == "done" for c in doc["cells"])
    assert {c["node"]["cluster"] for c in doc["cells"]} == {"local"}
    for c in doc["cells"]:
        assert (rep / "cells" / f"{c['model']}__{c['precision']}__{c['board']}.json").is_file()
        assert c["profile"]["model"]["precision"] == c["precision"]
        if c["precision"] == "int8":
            assert c["fidelity"]["images"] == 359
    # the files measured are the session's exports, reused (not made again)
    assert all(set(m["reused"]) == {"fp32", "int8"} for m in doc["models"].values())
    md = (rep / "report.md").read_text()
    for board in ("one", "two"):
        for model in ("test_lsnet@64", "test_lsnet@48"):
            assert f"### {model} on {board}" in md
    # ratios against fp32 on the same board; this VM has no energy sensor, and the report says so per board
    assert md.count("1.00× (baseline)") >= 4
    from edgevis.report.sweep import energy_sensor

    for board in ("one", "two"):
        sensor, why = energy_sensor(doc, board)
        assert re.search(rf"\| {board} \| ok \|.*\| {re.escape(sensor or 'none: ' + why)} \|", md)
    html = (rep / "report.html").read_text()
    assert "Accuracy vs latency, by board" in html and "Energy vs latency, by board" in html
    assert "all ran on this machine" in p.stderr
    assert "ran 8, kept 0, not measured 0" in p.stdout

    # the same command again measures nothing: every cell matches its files, images and settings
    again = run_block(block, tmp_path)
    assert again.returncode == 0, again.stderr
    assert "ran 0, kept 8, not measured 0" in again.stdout
    cells = {c["model"] + c["precision"] + c["board"]: c["finished"] for c in doc["cells"]}
    doc2 = json.loads((rep / "report.json").read_text())
    assert {c["model"] + c["precision"] + c["board"]: c["finished"] for c in doc2["cells"]} == cells

    # the same sweep through the Python API keeps every cell too, and hands each back as the typed results
    # of edgevis.profile (a cell) and edgevis.bench (a model on a board, ratios against fp32 there)
    import edgevis
    from edgevis.farm import parse_models

    res = edgevis.sweep(edgevis.SweepConfig(
        models=parse_models("test_lsnet@64,test_lsnet@48", str(tmp_path / "test_lsnet_digits.pth")),
        precisions=("fp32", "int8"), devices=("one", "two"), calib_dir=tmp_path / "digits" / "train",
        holdout_dir=tmp_path / "digits" / "test", output_dir=tmp_path / "edgevis_out", report_dir=rep, rounds=1,
        profile=edgevis.ProfileConfig(runtime="ort", warmup=2, iters=20)))
    assert res.status == "complete" and res.exit_code == 0 and res.ran == () and len(res.kept) == 8
    cell = next(c for c in doc2["cells"] if (c["model"], c["precision"], c["board"]) == ("test_lsnet@48", "int8", "two"))
    prof = res.profile("test_lsnet@48", "int8", "two")
    assert isinstance(prof, edgevis.ProfileResult) and prof.precision == "int8"
    assert prof.latency_ms() == cell["profile"]["runs"][0]["latency_ms"]["p50"]
    b = res.bench("test_lsnet@48", "two")
    assert isinstance(b, edgevis.BenchResult) and b.precisions == ["fp32", "int8"]
    fp32 = next(c for c in doc2["cells"] if (c["model"], c["precision"], c["board"]) == ("test_lsnet@48", "fp32", "two"))
    assert b.speedup("int8") == fp32["profile"]["runs"][0]["latency_ms"]["p50"] / prof.latency_ms()
    assert b.fidelity("int8") == cell["fidelity"]
    with pytest.raises(KeyError, match="boards: one, two"):
        res.profile("test_lsnet@48", "int8", "three")
