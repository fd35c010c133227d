"""What a sweep is told, and what it refuses: sweep files, names, resources, versions, a missing Ray. No cells run."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from clihelpers import assert_one_line_error, run

from edgevis.core.errors import EdgevisError
from edgevis.farm import ModelSpec, SweepConfig, load_sweep_file, parse_devices, parse_models
from edgevis.farm.board import version_mismatch
from edgevis.farm.worker import WorkerConfig, parse_resources, ray_start_command

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_sweep_file_loads(tmp_path):
    text = (ROOT / "README.md").read_text()
    block = re.findall(r"```toml\n(.*?)\n```", text[text.index("## Device farm"):], flags=re.S)[0]
    f = tmp_path / "sweep.toml"
    f.write_text(block)
    c = load_sweep_file(f, rounds=1)  # an override wins over the file
    assert c.rounds == 1 and c.cluster == "auto" and c.precisions == ("fp32", "int8")
    assert c.devices == ("orin-nano", "agx-orin", "x86")
    assert c.models == (ModelSpec("test_lsnet", str(tmp_path / "test_lsnet_digits.pth"), (64, 64)),
                        ModelSpec("efficientnet_lite0", "builtin"))
    assert [m.label for m in c.models] == ["test_lsnet@64", "efficientnet_lite0"]
    assert c.calib_dir == tmp_path / "digits/train" and c.profile.iters == 300 and c.profile.warmup == 10
    assert len(c.cells) == 2 * 2 * 3 and c.cells[0] == ("test_lsnet@64", "fp32", "orin-nano")


def test_sweep_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    for text, msg in (("devices = ['a']\nboards = 3\n", "unknown key 'boards'"),
                      ("[profile]\nspeed = 3\n", "unknown \\[profile\\] key 'speed'"),
                      ("[[models]]\nweights = 'x.pth'\n", "name is missing"),
                      ("models = ['lsnet_t']\nprecisions = ['int9']\n", "unknown precision 'int9'"),
                      ("models = [\n", "cannot read sweep file")):
        bad.write_text(text)
        with pytest.raises(EdgevisError, match=msg):
            load_sweep_file(bad)
    assert_one_line_error(run("sweep", "--file", tmp_path / "none.toml", check_ok=False), "sweep file not found")
    assert_one_line_error(run("sweep", "--devices", "a", check_ok=False), "name the models")


def test_names_labels_and_matrix_checks():
    assert [m.label for m in parse_models("lsnet_t,test_lsnet@48,test_lsnet@48x64")] == [
        "lsnet_t", "test_lsnet@48", "test_lsnet@48x64"]
    assert parse_models("test_lsnet@48")[0].input_size == (48, 48)
    assert parse_devices("orin-nano, x86,orin-nano") == ("orin-nano", "x86")
    for bad in ("a/b", "two words", "a__b"):
        with pytest.raises(EdgevisError, match="not a usable name"):
            parse_devices(bad)
    with pytest.raises(EdgevisError, match="size after @"):
        parse_models("lsnet_t@big")
    m = parse_models("test_lsnet@64")
    with pytest.raises(EdgevisError, match="two models are labelled"):
        SweepConfig(models=m + m)
    with pytest.raises(EdgevisError, match="first precision must be fp32"):
        SweepConfig(models=m, precisions=("int8",))
    with pytest.raises(EdgevisError, match="unknown --cluster"):
        SweepConfig(models=m, cluster="somewhere")


def test_worker_resources_and_versions():
    assert parse_resources("board:orin-nano, host") == {"board:orin-nano": 1.0, "host": 1.0}
    with pytest.raises(EdgevisError, match="1 unit"):
        parse_resources("board:x=2")
    with pytest.raises(EdgevisError, match="declares its board"):
        WorkerConfig(address="h:6379", resources={"host": 1.0})
    cmd = ray_start_command(WorkerConfig(address="10.0.0.1:6379", resources={"board:nano": 1.0}, num_gpus=1))
    assert cmd[1:3] == ["start", "--block"] and "--address=10.0.0.1:6379" in cmd and "--num-gpus=1" in cmd
    assert '--resources={"board:nano": 1.0}' in cmd and not any(c.startswith("--include-dashboard") for c in cmd)
    head_cmd = ray_start_command(WorkerConfig(head=True, resources={"host": 1.0}))
    assert {"--head", "--port=6379", "--include-dashboard=false", '--resources={"host": 1.0}'} <= set(head_cmd)
    head = {"edgevis": "0.1.0", "onnxruntime": "1.20.1", "tensorrt": "10.3"}
    assert version_mismatch(head, {**head, "tensorrt": "8.6"}) is None  # engines are built per board
    why = version_mismatch(head, {**head, "onnxruntime": "1.19.0"})
    assert why == "runs onnxruntime 1.19.0 (the head runs 1.20.1)"
    assert "edgevis missing" in version_mismatch(head, {"onnxruntime": "1.20.1"})


def test_without_ray_the_farm_names_its_extra_and_local_needs_none(tmp_path):
    """Ray made unimportable (sys.modules['ray'] = None): the cluster paths name edgevis[farm] in one line."""
    code = ("import sys; sys.modules['ray'] = None; sys.argv = ['edgevis'] + sys.argv[1:]; "
            "from edgevis.cli.app import main; main()")
    for args in (["sweep", "--models", "lsnet_t", "--cluster", "auto", "--report", str(tmp_path / "r")],
                 ["worker", "--address", "127.0.0.1:6379", "--resources", "board:x"]):
        p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
        assert_one_line_error(p, r"ray is not installed.*edgevis\[farm\]")
    assert not (tmp_path / "r").exists()  # refused before anything was written


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_cluster_nobody_runs_is_one_line_before_any_work(tmp_path):
    """ray.init and `ray start` wait minutes for an absent head (ray.init beyond Ctrl-C's reach): the sweep and
    the worker say so at once, and the sweep before exporting anything."""
    pytest.importorskip("ray", reason="the farm extra (ray) is not installed")
    port = _free_port()
    for cluster in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        p = run("sweep", "--models", "test_lsnet", "--cluster", cluster, "--report", tmp_path / "r", "-o",
                tmp_path / "o", check_ok=False, timeout=120)
        assert_one_line_error(p, rf"cannot connect to the Ray cluster at {re.escape(cluster)}: nothing answers at "
                                 rf"127\.0\.0\.1:{port} .*is its head running")
    assert not (tmp_path / "r").exists() and not (tmp_path / "o").exists()
    p = run("worker", "--address", f"127.0.0.1:{port}", "--resources", "board:x", check_ok=False, timeout=120)
    assert_one_line_error(p, rf"nothing answers at 127\.0\.0\.1:{port}")


def test_the_join_check_ends_in_time_when_the_head_does_not_answer():
    """The version check at join runs in a child process: when the head never answers, the join fails with
    its reason after the timeout (ray.init in this process would have blocked on, past any deadline)."""
    pytest.importorskip("ray", reason="the farm extra (ray) is not installed")
    import threading

    from edgevis.farm.worker import _head_versions

    node = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # stands in for `ray start`
    box = {}

    def check():
        try:
            _head_versions(f"127.0.0.1:{_free_port()}", ["x"], node, timeout=3.0)
        except EdgevisError as e:
            box["error"] = str(e)

    try:
        t = threading.Thread(target=check, daemon=True)
        t.start()
        t.join(timeout=120)
        assert not t.is_alive(), "the join check did not end"
        assert re.search(r"did not join the Ray cluster at 127\.0\.0\.1:\d+ .*within 3 s", box.get("error", ""))
        node.kill()
        node.wait()
        # `ray start` failing ends the check too, with that reason
        t = threading.Thread(target=check, daemon=True)
        t.start()
        t.join(timeout=120)
        assert not t.is_alive() and box["error"].startswith("ray start failed (exit code -9)")
    finally:
        node.kill()
        node.wait()
