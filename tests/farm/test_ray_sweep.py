"""The farm on a real Ray cluster started here: a head (the `host`) and two nodes declaring board:alpha and
board:beta, all on 127.0.0.1. No mocks: cells run as Ray tasks on the node that declares their board, files
travel through Ray's object store, and a node is taken away mid-sweep by killing its raylet.

One test function walks the whole story on one cluster (a cluster per test would cost more start-up than the
cells themselves, and xdist would start one per worker)."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from farmhelpers import farm_config

ray = pytest.importorskip("ray", reason="the farm extra (ray) is not installed: pip install 'edgevis[farm]'")

NODE = dict(num_cpus=1, object_store_memory=100 * 2**20)
NO_TORCH = Path(__file__).parent / "no_torch"  # a `torch` package that raises ImportError: a board's install
GRACE_S = 3.0


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """Head + alpha + beta; always shut down (also when the test fails), with any node the test added.

    The boards run as a board does: without torch (a `torch` that cannot be imported is first on their
    PYTHONPATH), and with their own file cache (EDGEVIS_FARM_CACHE), where the files they receive land."""
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("EDGEVIS_FARM_CACHE", str(tmp_path / "board_cache"))
    c = Cluster(initialize_head=True, head_node_args={
        **NODE, "resources": {"host": 1}, "include_dashboard": False,
        # the head notices a dead node in ~8 s (a loaded 2-core machine delays heartbeats of live ones)
        "_system_config": {"health_check_period_ms": 1000, "health_check_failure_threshold": 8}})
    extra = []
    try:
        with monkeypatch.context() as m:  # the nodes started here inherit this environment
            m.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(NO_TORCH), os.environ.get("PYTHONPATH")) if p))
            nodes = {b: c.add_node(**NODE, resources={f"board:{b}": 1}) for b in ("alpha", "beta")}
        c.wait_for_nodes()
        ray.init(address=c.address, logging_level="ERROR", log_to_driver=False)
        yield c, nodes, extra
    finally:
        for proc in extra:  # `edgevis worker` processes: SIGTERM stops their `ray start --block`
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        ray.shutdown()
        c.shutdown()


def _cells(report_dir):
    return {p.stem: json.loads(p.read_text()) for p in (report_dir / "cells").glob("*.json")}


def _wait_for_board(board, timeout=90.0):
    from edgevis.farm.cluster import alive_boards

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if board in alive_boards(ray):
            return alive_boards(ray)[board]
        time.sleep(0.5)
    raise AssertionError(f"board {board} did not join within {timeout} s")


@pytest.mark.slow
def test_sweep_across_boards_survives_a_board_dropping_out(cluster, farm_files, tmp_path):
    from clihelpers import assert_one_line_error, run

    from edgevis.farm import PARTIAL_EXIT, sweep
    from edgevis.farm.cluster import alive_boards

    c, nodes, extra = cluster
    ckpt, folders, out = farm_files
    rep = tmp_path / "rep"
    config = farm_config(ckpt, folders, out, cluster=c.address, report_dir=rep, board_grace_s=GRACE_S, retries=1)
    node_of = {b: n.node_id for b, n in nodes.items()}

    # 1. the sweep runs in a thread; beta's raylet is killed as soon as beta has finished one cell
    box = {}
    t = threading.Thread(target=lambda: box.update(result=sweep(config)), daemon=True)
    t.start()
    deadline = time.monotonic() + 300
    while not any(k.endswith("__beta") and v["status"] == "done" for k, v in _cells(rep).items()):
        assert t.is_alive() and time.monotonic() < deadline, "beta finished no cell"
        time.sleep(0.2)
    nodes["beta"].kill_raylet()
    t.join(timeout=300)
    assert not t.is_alive(), "the sweep did not end after beta left"
    first = box["result"]

    assert first.status == "partial" and first.exit_code == PARTIAL_EXIT
    cells = {(x["model"], x["precision"], x["board"]): x for x in first.cells}
    assert len(cells) == 8  # every cell of the matrix is in the result and the report, measured or not
    alpha = [x for k, x in cells.items() if k[2] == "alpha"]
    beta = [x for k, x in cells.items() if k[2] == "beta"]
    assert all(x["status"] == "done" for x in alpha)  # the other board completes
    lost = [x for x in beta if x["status"] != "done"]
    assert 1 <= len(lost) <= 3 and len(beta) - len(lost) >= 1
    for x in lost:
        assert x["status"] == "failed" and "board beta left the cluster" in x["reason"], x
    for x in (y for y in first.cells if y["status"] == "done"):
        # each cell ran on the node that declared its board, through the board:NAME resource
        assert x["node"]["node_id"] == node_of[x["board"]], x["node"]
        assert x["node"]["assigned"].get(f"board:{x['board']}") == 1 and x["node"]["resources"][f"board:{x['board']}"] == 1
        assert x["versions"]["edgevis"] == first.boards[x["board"]]["versions"]["edgevis"]
        assert x["profile"]["runs"][0]["iterations"] == 20
        if x["precision"] == "int8":  # fidelity measured on the board, on the head's 359 held-out digits
            assert x["fidelity"]["images"] == 359 and x["fidelity"]["reference"] == "fp32"
        # the file measured came through the object store into the board's cache, checked against its sha256
        assert Path(x["file"]).parent == tmp_path / "board_cache" / x["file_sha256"], x["file"]
        assert not Path(x["file"]).is_relative_to(out)
    # ... on boards that cannot import torch, as a board's device-side install
    def torch_here():
        try:
            import torch  # noqa: F401
        except ImportError as e:
            return str(e)
        return "torch imported"

    probe = ray.remote(torch_here).options(resources={"board:alpha": 0.001}, num_cpus=0)
    assert "not installed on this board" in ray.get(probe.remote())
    # the file written as each cell finished says the same
    on_disk = _cells(rep)
    assert {k: v["status"] for k, v in on_disk.items()} == {
        f"{m}__{p}__{b}": x["status"] for (m, p, b), x in cells.items()}
    report = json.loads((rep / "report.json").read_text())
    assert report["status"] == "partial" and len(report["cells"]) == 8
    md = (rep / "report.md").read_text()
    assert "## Cells not measured" in md and md.count("board beta left the cluster") >= len(lost)

    # 2. a board rejoins with `edgevis worker` (its versions checked against the head's) ...
    log = open(tmp_path / "worker_beta.log", "w")  # noqa: SIM115 - the worker runs to the end of the test
    proc = subprocess.Popen([sys.executable, "-m", "edgevis", "worker", "--address", c.address,
                             "--resources", "board:beta", "--num-cpus", "1", "--object-store-memory",
                             str(100 * 2**20), "--label", "beta, second life"],
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(NO_TORCH)})  # a board's install: no torch
    extra.append(proc)
    new_beta = _wait_for_board("beta")
    assert new_beta != node_of["beta"]

    # ... and the rerun measures only the missing cells, there
    second = sweep(config)
    assert second.status == "complete" and second.exit_code == 0
    assert sorted(second.ran) == sorted(f"{x['model']}__{x['precision']}__beta" for x in lost)
    assert len(second.kept) == 8 - len(lost)
    again = _cells(rep)
    for key in second.kept:  # kept cells are untouched
        assert again[key] == on_disk[key]
    for key in second.ran:
        assert again[key]["status"] == "done" and again[key]["node"]["node_id"] == new_beta
        assert again[key]["node"]["label"] == "beta, second life"
    report = json.loads((rep / "report.json").read_text())
    assert report["status"] == "complete" and all(x["status"] == "done" for x in report["cells"])
    html = (rep / "report.html").read_text()
    assert "Cells not measured" not in html and html.count("data:image/png;base64,") == 1  # accuracy plot
    assert "no board has an energy measurement (alpha: disabled with --energy none; beta: disabled" in html

    # 3. through the CLI, connecting to the cluster itself: a board nobody declared fails its cells, exit 4
    p = run("sweep", "--cluster", c.address, "--models", "test_lsnet@64", "--weights", ckpt, "--precisions", "fp32",
            "--devices", "alpha,ghost", "--calib", folders[0], "--holdout", folders[1], "-o", out,
            "--report", tmp_path / "cli", "--warmup", 2, "--iters", 20, "--rounds", 1, "--energy", "none", "--json",
            check_ok=False)
    assert p.returncode == PARTIAL_EXIT, p.stderr
    doc = json.loads(p.stdout)
    status = {x["board"]: x["status"] for x in doc["report"]["cells"]}
    assert status == {"alpha": "done", "ghost": "failed"}
    ghost = next(x for x in doc["report"]["cells"] if x["board"] == "ghost")
    assert "no node of the cluster declares board:ghost" in ghost["reason"]
    assert "partial:" in p.stderr and "Traceback" not in p.stderr

    # 3b. run where torch is not installed (as on a laptop), the sweep exports on the node declaring `host`
    p = run("sweep", "--cluster", c.address, "--models", "test_lsnet@48", "--weights", ckpt, "--precisions",
            "fp32,int8", "--devices", "alpha", "--calib", folders[0], "--holdout", folders[1], "-o", out,
            "--report", tmp_path / "no_torch_here", "--warmup", 2, "--iters", 20, "--rounds", 1, "--energy", "none",
            env={**os.environ, "PYTHONPATH": str(NO_TORCH)}, check_ok=False)
    assert p.returncode == 0, p.stderr
    assert "test_lsnet@48: exporting or reusing fp32, int8 on the cluster's host node" in p.stderr
    doc = json.loads((tmp_path / "no_torch_here" / "report.json").read_text())
    assert [(x["precision"], x["status"]) for x in doc["cells"]] == [("fp32", "done"), ("int8", "done")]
    assert set(doc["models"]["test_lsnet@48"]["reused"]) == {"fp32", "int8"}  # the host found this session's files
    assert doc["cells"][1]["fidelity"]["images"] == 359

    # 4. a worker that names no board is refused in one line, before anything starts
    assert_one_line_error(run("worker", "--address", c.address, "--resources", "host", check_ok=False),
                          "declares its board")
    # ... and a board whose edgevis differs from the head's is refused at join: its node leaves at once
    other = ("import sys, edgevis; edgevis.__version__ = '0.0.0+other'; sys.argv = ['edgevis'] + sys.argv[1:]; "
             "from edgevis.cli.app import main; main()")
    p = subprocess.run([sys.executable, "-c", other, "worker", "--address", c.address, "--resources", "board:gamma",
                        "--num-cpus", "0", "--object-store-memory", str(80 * 2**20)],
                       capture_output=True, text=True, timeout=300)
    assert_one_line_error(p, r"refused: this board runs edgevis 0\.0\.0\+other \(the head runs "
                             + re.escape(first.boards["alpha"]["versions"]["edgevis"]) + r"\)")
    deadline = time.monotonic() + 60
    while "gamma" in alive_boards(ray):
        assert time.monotonic() < deadline, "the refused board's node stayed in the cluster"
        time.sleep(0.5)
