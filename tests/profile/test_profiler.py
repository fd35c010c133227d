"""edgevis profile on real ONNX Runtime sessions: statistics, batches, memory, per-layer, energy windows."""

import json
import math
import os

import numpy as np
import onnx
import pytest

from edgevis.core.errors import EdgevisError
from edgevis.profile.device import board_info, cpu_info
from edgevis.profile.layers import ort_per_layer
from edgevis.profile.profiler import ProfileConfig, parse_batches, profile_file
from edgevis.profile.stats import iterations_needed, latency_stats, noise_warnings
from handmade_graphs import small_convnet

FAST = dict(warmup=2, iters=15, idle_s=0.05, energy="none")


@pytest.fixture(scope="module")
def convnet(tmp_path_factory):
    path = tmp_path_factory.mktemp("convnet") / "convnet.onnx"
    onnx.save(small_convnet(), path)
    return path


def test_latency_stats_of_known_samples():
    s = latency_stats(list(range(1, 101)))  # 1..100 ms
    assert (s.min, s.max, s.samples) == (1, 100, 100)
    assert s.mean == 50.5
    # linear-interpolated percentiles of 1..100: rank p/100 * 99 from the first sample
    assert s.p50 == pytest.approx(50.5) and s.p90 == pytest.approx(90.1) and s.p99 == pytest.approx(99.01)
    assert s.std == pytest.approx(math.sqrt(sum((x - 50.5) ** 2 for x in range(1, 101)) / 99))
    assert s.cv == pytest.approx(s.std / 50.5)


def test_noise_warning_says_how_many_iterations_would_do():
    rng = np.random.default_rng(0)
    noisy = latency_stats(10 + rng.standard_normal(40) * 2)  # CV ~ 20 %
    (w,) = noise_warnings(noisy, 0.02)
    n = iterations_needed(noisy, 0.02)
    assert "±2.0%" in w and str(n) in w
    # the count it asks for really does reach the tolerance at this CV
    assert 1.96 * noisy.cv / math.sqrt(n) <= 0.02 < 1.96 * noisy.cv / math.sqrt(n - 1)
    quiet = latency_stats(10 + rng.standard_normal(400) * 0.05)
    assert noise_warnings(quiet, 0.02) == []


def test_profile_batches_statistics_and_memory(convnet):
    r = profile_file(convnet, ProfileConfig(batches=(1, 4), threads=1, **FAST))
    assert r["schema"] == "edgevis.profile" and r["schema_version"] == 1
    assert [run["batch"] for run in r["runs"]] == [1, 4]
    assert r["model"]["precision"] == "fp32" and r["model"]["runtime"] == "ort"
    assert r["model"]["file_bytes"] == convnet.stat().st_size
    for run in r["runs"]:
        lat, n = run["latency_ms"], run["iterations"]
        assert n == 15 == len(run["samples_ms"])
        assert run["input_shapes"] == {"x": [run["batch"], 3, 32, 32]}
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert lat["min"] == min(run["samples_ms"]) and lat["max"] == max(run["samples_ms"])
        # the window holds every timed iteration, and throughput is images over that window
        assert run["wall_s"] * 1e3 >= sum(run["samples_ms"])
        assert run["throughput_ips"] == pytest.approx(run["batch"] * n / run["wall_s"])
        mem = run["memory"]
        assert mem["peak_rss_mb"] >= mem["rss_before_mb"] > 0
        assert mem["added_mb"] == pytest.approx(mem["peak_rss_mb"] - mem["rss_before_mb"])
        assert "clear_refs" in mem["method"]  # Linux: the peak belongs to this run
        assert run["energy"] == {"available": False, "reason": "disabled with --energy none"}
        assert run["per_layer"] is None
    assert r["device"]["cpu"]["logical_cores"] == os.cpu_count()
    assert r["device"]["versions"]["onnxruntime"]


def test_duration_bound_run_and_include_io(convnet):
    r = profile_file(convnet, ProfileConfig(warmup=1, duration_s=0.3, include_io=True, energy="none", threads=1))
    run = r["runs"][0]
    assert run["iterations"] >= 10 and run["wall_s"] >= 0.3
    assert r["settings"]["include_io"] is True


def test_per_layer_table_covers_every_executed_node(convnet):
    r = profile_file(convnet, ProfileConfig(per_layer=True, per_layer_runs=5, threads=1, **FAST))
    pl = r["runs"][0]["per_layer"]
    assert pl["source"] == "onnxruntime profiler" and pl["runs"] == 5
    assert sum(row["share"] for row in pl["by_op"]) == pytest.approx(1.0)
    assert sum(row["ms"] for row in pl["by_op"]) == pytest.approx(pl["total_ms"])
    assert sum(row["nodes"] for row in pl["by_op"]) == pl["nodes_total"] == len(pl["by_node"])
    assert {row["op"] for row in pl["by_op"]} <= {"Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm",
                                                   "FusedConv", "FusedGemm", "ReorderInput", "ReorderOutput"}
    # (ORT's CPU provider fuses Conv+Relu and converts to its blocked NCHWc layout with Reorder nodes)
    assert pl["by_node"] == sorted(pl["by_node"], key=lambda row: -row["ms"])
    assert pl["run_ms"] >= pl["total_ms"]


def test_ort_trace_warmup_runs_are_dropped():
    def ev(node, op, us):
        return {"cat": "Node", "name": f"{node}_kernel_time", "dur": us, "args": {"op_name": op, "provider": "CPU"}}

    events = []
    for run, scale in enumerate((100, 1, 1)):  # a slow first (warm-up) run, then two steady ones
        events += [ev("a", "Conv", 300 * scale), ev("b", "Relu", 100 * scale),
                   {"cat": "Session", "name": "model_run", "dur": 450 * scale}]
    pl = ort_per_layer(events, skip=1)
    assert pl["runs"] == 2 and pl["total_ms"] == pytest.approx(0.4)
    assert [(r["op"], r["share"]) for r in pl["by_op"]] == [("Conv", pytest.approx(0.75)), ("Relu", pytest.approx(0.25))]
    assert pl["outside_layers_ms"] == pytest.approx(0.05)


class CounterMeter:
    """Stands in for an energy sensor this VM lacks: a counter rising at ``watts`` (changed by the test)."""

    name, kind, sensor, rails, min_window_s = "test", "energy", "synthetic counter", ["total"], 0.0

    def __init__(self, watts):
        import time

        self.watts, self._t, self._j = watts, time.perf_counter(), 0.0

    def set_watts(self, watts):
        self._j, self._t = self.read(), self._last
        self.watts = watts

    def read(self):
        import time

        self._last = time.perf_counter()
        return self._j + self.watts * (self._last - self._t)

    def close(self):
        pass


def test_energy_is_integrated_over_exactly_the_timed_window(convnet):
    meter = CounterMeter(5.0)  # 5 W while idle power is measured ...

    read = meter.read

    def read_after_warm_up():  # the first reading after the warm-up (the sampler opening) ...
        meter.read = read
        value = read()
        meter.set_watts(8.0)  # ... starts 8 W, which lasts through the timed loop
        return value

    def progress(phase, done, total):
        if phase.startswith("warm-up"):
            meter.set_watts(40.0)  # ... 40 W through the warm-up ...
            meter.read = read_after_warm_up

    r = profile_file(convnet, ProfileConfig(warmup=100, iters=300, idle_s=0.05, threads=1), meter=meter,
                     progress=progress)
    run = r["runs"][0]
    e = run["energy"]
    assert e["available"] and e["sensor"] == "synthetic counter"
    assert e["window_s"] == pytest.approx(run["wall_s"], rel=1e-12)
    # The reading at each end of the window is stamped at the middle of the read, so a scheduler
    # preemption inside a read (a loaded CI machine) moves it: allow 1 ms at each end. Counting the
    # warm-up (100 runs at 40 W) or the idle phase would be off by far more than that.
    slack = 8.0 * 1e-3
    assert e["energy_j"] == pytest.approx(8.0 * run["wall_s"], abs=slack)
    assert e["idle_w"] == pytest.approx(5.0, rel=1e-3)
    assert e["net_energy_j"] == pytest.approx(3.0 * run["wall_s"], abs=slack)
    assert e["j_per_inference"] == pytest.approx(e["net_energy_j"] / 300)
    assert e["inferences_per_j"] == pytest.approx(300 / e["net_energy_j"])


def test_a_load_no_different_from_idle_gets_no_per_inference_figure(convnet):
    meter = CounterMeter(5.0)
    meter.read = lambda: 5.0  # a counter that never moves: zero energy in the window, zero idle
    r = profile_file(convnet, ProfileConfig(warmup=1, iters=5, idle_s=0.02, threads=1), meter=meter)
    e = r["runs"][0]["energy"]
    assert e["energy_j"] == 0 and e["j_per_inference"] is None and e["inferences_per_j"] is None
    assert any("indistinguishable from idle" in w for w in r["warnings"])


def test_fixed_batch_and_option_errors(convnet, tmp_path):
    fixed = tmp_path / "fixed.onnx"
    onnx.save(small_convnet(batch=1), fixed)
    with pytest.raises(EdgevisError, match="fixed batch of 1; batch 8 needs a model exported with --dynamic-batch"):
        profile_file(fixed, ProfileConfig(batches=(8,), **FAST))
    with pytest.raises(EdgevisError, match="exclude each other"):
        ProfileConfig(iters=5, duration_s=1.0)
    with pytest.raises(EdgevisError, match="use auto, nvml, jetson, rapl, none"):
        ProfileConfig(energy="battery")
    with pytest.raises(EdgevisError, match="e.g. 1,8"):
        parse_batches("1;8")
    with pytest.raises(EdgevisError, match="not a TensorRT engine; build one first"):
        profile_file(convnet, ProfileConfig(runtime="trt", **FAST))


def test_cpu_and_board_info_from_fixture_trees(tmp_path):
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    # a 2-socket, 2-core, 2-thread x86 host: 8 logical CPUs, 4 physical cores
    blocks = [f"processor\t: {i}\nmodel name\t: Test CPU\nphysical id\t: {i // 4}\ncore id\t\t: {(i // 2) % 2}\n"
              for i in range(8)]
    (tmp_path / "proc/cpuinfo").write_text("\n".join(blocks) + "\n")
    info = cpu_info(tmp_path)
    assert info["model"] == "Test CPU" and info["physical_cores"] == 4
    (tmp_path / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\0")
    (tmp_path / "etc/nv_tegra_release").write_text("# R35 (release), REVISION: 4.1, GCID: 33958178\n")
    assert board_info(tmp_path) == {"board": "NVIDIA Jetson AGX Orin Developer Kit",
                                    "l4t": "R35 (release), REVISION: 4.1, GCID: 33958178"}
    assert board_info(tmp_path / "nothing") == {"board": None, "l4t": None}


def test_precision_is_read_from_sidecar_or_graph(convnet, tmp_path):
    from edgevis.profile.profiler import model_precision

    from handmade_graphs import twin_qdq_convs

    q = tmp_path / "q.onnx"
    onnx.save(twin_qdq_convs(), q)
    assert model_precision(convnet, "ort") == "fp32" and model_precision(q, "ort") == "int8"
    from edgevis.core.files import sha256_file

    (tmp_path / "q.onnx.json").write_text(json.dumps({"precision": "int8-tensorrt", "sha256": sha256_file(q)}))
    assert model_precision(q, "ort") == "int8-tensorrt"
    # a sidecar that does not describe this very file (another hash, or none) is not trusted: the graph decides
    (tmp_path / "q.onnx.json").write_text(json.dumps({"precision": "fp32", "sha256": "0" * 64}))
    assert model_precision(q, "ort") == "int8"
    (tmp_path / "q.onnx.json").write_text(json.dumps({"precision": "fp32"}))
    assert model_precision(q, "ort") == "int8"
    (tmp_path / "q.onnx.json").write_text("[1, 2]")  # valid JSON, not an object
    assert model_precision(q, "ort") == "int8"


def test_a_single_timed_run_has_no_spread_and_says_so():
    s = latency_stats([4.2])
    assert s.to_dict()["cv"] == 0 and s.to_dict()["mean_ci95_rel"] is None  # JSON has no infinity
    (w,) = noise_warnings(s, 0.02)
    assert "one timed run" in w
