"""Energy meters against fixture sysfs trees shaped like real devices, exact integration on synthetic
traces, the background sampler on a meter that follows a known function of time, and NVML through a
stand-in ``pynvml`` module (this machine has no NVIDIA GPU)."""

import errno
import json
import math
import sys
import time
import types
from pathlib import Path

import pytest

from edgevis.core.errors import EdgevisError
from edgevis.profile.energy import (EnergyResult, Sampler, Unavailable, energy_over, idle_power, integrate,
                                    open_meter, unavailable_dict)
from edgevis.profile.energy import sysfs
from edgevis.profile.energy.jetson import JetsonMeter
from edgevis.profile.energy.rapl import RaplMeter

EXACT = dict(rel=1e-12, abs=1e-12)


def put(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{value}\n")


# --- fixture trees: device directories live under /sys/devices, drivers/ and class/ link to them -------------

def ina3221_hwmon(root: Path, i2c: str, bus_addr: str, hwmon: str, channels, update_ms=None) -> Path:
    """JetPack 5/6: mainline ina3221 hwmon. ``channels`` = [(label, mV, mA) or None] for channels 1-3."""
    dev = root / "sys/devices/platform" / i2c / f"i2c-{bus_addr.split('-')[0]}" / bus_addr
    d = dev / "hwmon" / hwmon
    put(d / "name", "ina3221")
    shunt_sum = 0
    for n, ch in enumerate(channels, start=1):
        if ch is None:
            continue
        label, mv, ma = ch
        put(d / f"in{n}_label", label)
        put(d / f"in{n}_input", mv)
        put(d / f"curr{n}_input", ma)
        put(d / f"in{n + 3}_input", ma * 5)  # shunt voltage (uV) over a 5 mOhm shunt: unlabelled, not a rail
        put(d / f"shunt{n}_resistor", 5000)
        shunt_sum += ma * 5
    put(d / "in7_label", "sum of shunt voltages")  # a labelled channel with no current: not a rail
    put(d / "in7_input", shunt_sum)
    put(d / "curr4_input", shunt_sum // 5)  # the summed current: no label, not a rail
    if update_ms is not None:
        put(d / "update_interval", update_ms)
    drivers = root / "sys/bus/i2c/drivers/ina3221"
    drivers.mkdir(parents=True, exist_ok=True)
    for f in ("bind", "unbind", "uevent"):
        put(drivers / f, "")
    (drivers / bus_addr).symlink_to(dev)
    return d


def ina3221x_iio(root: Path, bus_addr: str, rails) -> Path:
    """JetPack 4: NVIDIA's ina3221x IIO driver. ``rails`` = [(name, mV, mA)] for channels 0-2."""
    dev = root / "sys/devices/7000c400.i2c/i2c-1" / bus_addr
    d = dev / "iio:device0"
    put(d / "name", "ina3221x")
    for n, (name, mv, ma) in enumerate(rails):
        put(d / f"rail_name_{n}", name)
        put(d / f"in_voltage{n}_input", mv)
        put(d / f"in_current{n}_input", ma)
        put(d / f"in_power{n}_input", mv * ma // 1000)  # mW, as the driver reports it
        put(d / f"crit_current_limit_{n}", 32760)
        put(d / f"warn_current_limit_{n}", 32760)
    drivers = root / "sys/bus/i2c/drivers/ina3221x"
    drivers.mkdir(parents=True, exist_ok=True)
    (drivers / bus_addr).symlink_to(dev)
    return d


def orin_nano(root: Path) -> Path:  # also Orin NX: one chip, VDD_IN is the module input
    return ina3221_hwmon(root, "c240000.i2c", "1-0040", "hwmon3",
                         [("VDD_IN", 5000, 1200), ("VDD_CPU_GPU_CV", 5000, 320), ("VDD_SOC", 5000, 280)],
                         update_ms=2)


def agx_orin(root: Path) -> tuple[Path, Path]:  # two chips, no VDD_IN, unused channels labelled NC
    a = ina3221_hwmon(root, "c240000.i2c", "1-0040", "hwmon3",
                      [("VDD_GPU_SOC", 19024, 500), ("VDD_CPU_CV", 19024, 250), ("VIN_SYS_5V0", 4968, 1000)])
    b = ina3221_hwmon(root, "c240000.i2c", "1-0041", "hwmon4",
                      [("NC", 0, 0), ("VDDQ_VDD2_1V8AO", 4968, 200), ("NC", 0, 0)])
    return a, b


def rapl_zone(root: Path, parent: Path, zone: str, name: str, uj: int, max_uj: int = 262143328850) -> Path:
    d = parent / zone
    put(d / "name", name)
    put(d / "energy_uj", uj)
    put(d / "max_energy_range_uj", max_uj)
    put(d / "enabled", 1)
    (root / "sys/class/powercap" / zone).symlink_to(d)
    return d


def rapl_host(root: Path) -> dict[str, Path]:
    """Two sockets: package-0/1, each with core/uncore/dram subzones, plus the MMIO view of package-0."""
    (root / "sys/class/powercap").mkdir(parents=True)
    ctl = root / "sys/devices/virtual/powercap/intel-rapl"
    put(ctl / "enabled", 1)
    (root / "sys/class/powercap/intel-rapl").symlink_to(ctl)
    z = {"p0": rapl_zone(root, ctl, "intel-rapl:0", "package-0", 1_000_000),
         "p1": rapl_zone(root, ctl, "intel-rapl:1", "package-1", 2_000_000)}
    for p in (0, 1):
        for m, name in enumerate(("core", "uncore", "dram")):
            z[f"{name}{p}"] = rapl_zone(root, z[f"p{p}"], f"intel-rapl:{p}:{m}", name, 9_000_000_000 + m)
    mmio = root / "sys/devices/virtual/powercap/intel-rapl-mmio"
    z["mmio"] = rapl_zone(root, mmio, "intel-rapl-mmio:0", "package-0", 5_000_000)
    return z


# --- Jetson -------------------------------------------------------------------------------------------------

def test_orin_nano_hwmon_reads_vdd_in_and_follows_the_files(tmp_path):
    d = orin_nano(tmp_path)
    m = open_meter("auto", root=tmp_path)
    assert isinstance(m, JetsonMeter) and (m.name, m.kind) == ("jetson", "power")
    assert m.rails == ["VDD_IN"] and m.all_rails == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    assert m.sensor == "INA3221 rail VDD_IN (hwmon, JetPack 5/6)"
    assert m.read() == pytest.approx(5000 * 1200 / 1e6, **EXACT)  # 6 W; the sum of rails would be 9 W
    put(d / "in1_input", 4992)
    put(d / "curr1_input", 2500)
    assert m.read() == pytest.approx(4.992 * 2.5, **EXACT)
    assert m.min_window_s == pytest.approx(20 * 0.002)  # 20 x the chip's update_interval


def test_agx_orin_sums_its_rails_and_ignores_nc_and_sum_channels(tmp_path):
    a, b = agx_orin(tmp_path)
    m = open_meter("jetson", root=tmp_path)
    assert isinstance(m, JetsonMeter)
    assert m.rails == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0", "VDDQ_VDD2_1V8AO"]
    assert "summed" in m.sensor and "no VDD_IN" in m.sensor
    want = (19024 * 500 + 19024 * 250 + 4968 * 1000 + 4968 * 200) / 1e6
    assert m.read() == pytest.approx(want, **EXACT)
    put(b / "curr2_input", 1200)  # the second chip's rail counts too
    assert m.read() == pytest.approx(want + 4968 * 1000 / 1e6, **EXACT)


def test_xavier_nx_on_jetpack5_hwmon_and_jetpack4_iio(tmp_path):
    nx5 = tmp_path / "jp5"
    ina3221_hwmon(nx5, "c240000.i2c", "7-0040", "hwmon5",
                  [("VDD_IN", 5080, 1100), ("VDD_CPU_GPU_CV", 5080, 300), ("VDD_SOC", 5080, 400)])
    m5 = open_meter("jetson", root=nx5)
    assert m5.rails == ["VDD_IN"] and m5.read() == pytest.approx(5.588, **EXACT)
    nx4 = tmp_path / "jp4"
    d = ina3221x_iio(nx4, "7-0040", [("VDD_IN", 5080, 1100), ("VDD_CPU_GPU_CV", 5080, 300), ("VDD_SOC", 5080, 400)])
    m4 = open_meter("auto", root=nx4)
    assert m4.sensor == "INA3221 rail VDD_IN (IIO, JetPack 4)" and m4.rails == ["VDD_IN"]
    assert m4.read() == pytest.approx(5.588, **EXACT)  # in_power0_input holds 5588 mW
    put(d / "in_power0_input", 7321)
    assert m4.read() == pytest.approx(7.321, **EXACT)


def test_nano_jetpack4_iio_uses_pom_5v_in(tmp_path):
    d = ina3221x_iio(tmp_path, "6-0040", [("POM_5V_IN", 5000, 700), ("POM_5V_GPU", 5000, 100), ("POM_5V_CPU", 5000, 150)])
    m = open_meter("auto", root=tmp_path)
    assert m.rails == ["POM_5V_IN"] and m.all_rails == ["POM_5V_IN", "POM_5V_GPU", "POM_5V_CPU"]
    assert m.read() == pytest.approx(3.5, **EXACT)
    put(d / "in_power0_input", 4250)
    assert m.read() == pytest.approx(4.25, **EXACT)


def test_unreadable_channels_are_skipped_and_named(tmp_path):
    d = ina3221_hwmon(tmp_path, "c240000.i2c", "1-0040", "hwmon3", [("VDD_GPU_SOC", 19000, 100), None, None])
    (d / "curr1_input").unlink()
    (d / "curr1_input").mkdir()  # reading it fails with an OSError, as a disabled channel's ENODATA does
    reason = open_meter("jetson", root=tmp_path)
    assert isinstance(reason, Unavailable) and "VDD_GPU_SOC" in reason.reason and "no rail could be read" in reason.reason


# --- RAPL ---------------------------------------------------------------------------------------------------

def test_rapl_sums_packages_only_and_unwraps(tmp_path):
    z = rapl_host(tmp_path)
    m = open_meter("auto", root=tmp_path)
    assert isinstance(m, RaplMeter) and (m.name, m.kind) == ("rapl", "energy")
    assert m.rails == ["package-0", "package-1"] and m.sensor == "RAPL package-0, package-1"
    assert "dram (intel-rapl:1:2)" in m.all_rails
    assert m.read() == 0.0
    put(z["p0"] / "energy_uj", 1_500_000)
    put(z["p1"] / "energy_uj", 2_250_000)
    for sub in ("core0", "uncore0", "dram1", "mmio"):  # subzones and the MMIO view move too, uncounted
        put(z[sub] / "energy_uj", 99_000_000_000)
    assert m.read() == pytest.approx(0.75, **EXACT)
    put(z["p0"] / "energy_uj", 262143000000)
    assert m.read() == pytest.approx(0.25 + (262143000000 - 1_000_000) / 1e6, **EXACT)
    put(z["p0"] / "energy_uj", 1_000)  # wrapped past max_energy_range_uj = 262143328850
    assert m.read() == pytest.approx(0.25 + (262143328850 - 1_000_000 + 1_000) / 1e6, **EXACT)
    put(z["p0"] / "energy_uj", 2_000)
    assert m.read() == pytest.approx(0.25 + (262143328850 - 1_000_000 + 2_000) / 1e6, **EXACT)


def test_rapl_laptop_psys_is_not_added_to_the_package(tmp_path):
    (tmp_path / "sys/class/powercap").mkdir(parents=True)
    ctl = tmp_path / "sys/devices/virtual/powercap/intel-rapl"
    p0 = rapl_zone(tmp_path, ctl, "intel-rapl:0", "package-0", 10)
    rapl_zone(tmp_path, ctl, "intel-rapl:1", "psys", 10)
    m = open_meter("rapl", root=tmp_path)
    assert m.rails == ["package-0"] and "psys" in m.all_rails
    put(p0 / "energy_uj", 2_000_010)
    assert m.read() == pytest.approx(2.0, **EXACT)


def test_rapl_root_only_energy_uj_becomes_a_reason_with_the_fix(tmp_path, monkeypatch):
    # Since Linux 5.10 energy_uj is mode 0400 and open() fails with EACCES for a user. These tests run as
    # root, which chmod cannot stop, so the one function every meter reads files through raises the
    # very exception open() would; the meter's handling of it is what is under test.
    rapl_host(tmp_path)
    real = sysfs.read_text

    def root_only(path):
        if Path(path).name == "energy_uj":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(sysfs, "read_text", root_only)
    r = open_meter("rapl", root=tmp_path)
    assert isinstance(r, Unavailable)
    assert "intel-rapl:0/energy_uj is readable by root only" in r.reason
    assert "run as root" in r.reason and "chmod a+r" in r.reason and "CVE-2020-8694" in r.reason


# --- detection ----------------------------------------------------------------------------------------------

def test_no_sensor_names_every_source_tried(tmp_path, monkeypatch):
    r = open_meter("auto", root=tmp_path)
    assert isinstance(r, Unavailable) and str(r).startswith("energy: unavailable (")
    assert "no INA3221 rails" in r.reason and "NVML not tried" in r.reason and "no RAPL zones" in r.reason
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py not installed
    r = open_meter("auto", root=tmp_path, gpu=True)
    assert "no INA3221 rails" in r.reason and "nvidia-ml-py is not installed" in r.reason and "RAPL" in r.reason


def test_explicit_choices_give_precise_reasons_and_bad_ones_raise(tmp_path):
    rapl_host(tmp_path / "x86")
    orin_nano(tmp_path / "orin")
    j = open_meter("jetson", root=tmp_path / "x86")
    assert isinstance(j, Unavailable) and j.reason.startswith("no INA3221 rails under ")
    assert str(tmp_path / "x86" / "sys/bus/i2c/drivers") in j.reason
    r = open_meter("rapl", root=tmp_path / "orin")
    assert r.reason == f"no RAPL zones under {tmp_path / 'orin' / 'sys/class/powercap'}"
    assert open_meter("none", root=tmp_path / "orin") == Unavailable("disabled with --energy none")
    with pytest.raises(EdgevisError, match="auto, nvml, jetson, rapl, none"):
        open_meter("tegrastats")


# --- NVML through a stand-in module -------------------------------------------------------------------------

def fake_pynvml(counter=True, power=True, init_error=None):
    """Stands in for nvidia-ml-py on a machine without an NVIDIA GPU: same names, same error classes."""
    nv = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):
        def __str__(self):
            return "Not Supported"

    nv.NVMLError, nv.NVMLError_NotSupported = NVMLError, NVMLError_NotSupported
    nv.state = {"mj": 123_456_789, "mw": 61_250, "shutdowns": 0}

    def init():
        if init_error:
            raise NVMLError(init_error)

    def energy(handle):
        if not counter:
            raise NVMLError_NotSupported()
        return nv.state["mj"]

    def usage(handle):
        if not power:
            raise NVMLError_NotSupported()
        return nv.state["mw"]

    nv.nvmlInit = init
    nv.nvmlShutdown = lambda: nv.state.__setitem__("shutdowns", nv.state["shutdowns"] + 1)
    nv.nvmlDeviceGetHandleByIndex = lambda i: ("handle", i)
    nv.nvmlDeviceGetName = lambda h: b"NVIDIA H100 80GB HBM3"  # older nvidia-ml-py returns bytes
    nv.nvmlDeviceGetTotalEnergyConsumption = energy
    nv.nvmlDeviceGetPowerUsage = usage
    return nv


def test_nvml_counter_in_millijoules(tmp_path, monkeypatch):
    nv = fake_pynvml()
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    m = open_meter("auto", root=tmp_path, gpu=True)
    assert (m.name, m.kind, m.rails) == ("nvml", "energy", ["GPU 0"])
    assert m.sensor == "NVML total-energy counter, GPU 0 (NVIDIA H100 80GB HBM3)"
    assert m.read() == 0.0
    nv.state["mj"] += 1_500
    assert m.read() == pytest.approx(1.5, **EXACT)
    m.close()
    m.close()
    assert nv.state["shutdowns"] == 1


def test_nvml_without_counter_falls_back_to_power(tmp_path, monkeypatch):
    nv = fake_pynvml(counter=False)
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    m = open_meter("nvml", root=tmp_path)
    assert m.kind == "power" and "Not Supported" in m.sensor and m.min_window_s >= 20
    assert m.read() == pytest.approx(61.25, **EXACT)
    nv.state["mw"] = 300_000
    assert m.read() == pytest.approx(300.0, **EXACT)
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(counter=False, power=False))
    r = open_meter("nvml", root=tmp_path)
    assert isinstance(r, Unavailable) and "neither energy" in r.reason and sys.modules["pynvml"].state["shutdowns"] == 1


def test_nvml_missing_or_failing_is_a_reason(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    r = open_meter("nvml", root=tmp_path)
    assert "pip install nvidia-ml-py" in r.reason and "edgevis[tensorrt]" in r.reason
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(init_error="NVML Shared Library Not Found"))
    orin_nano(tmp_path)
    r = open_meter("nvml", root=tmp_path)
    assert "NVML could not start: NVML Shared Library Not Found" in r.reason and "does not work on Jetson" in r.reason
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml())  # on a Jetson, auto takes the rails, not NVML
    assert open_meter("auto", root=tmp_path, gpu=True).name == "jetson"


# --- integration --------------------------------------------------------------------------------------------

def test_power_integration_is_exact_for_piecewise_linear_traces():
    assert integrate([(t, 5.0) for t in range(11)], "power", 2.5, 7.25) == pytest.approx(5 * 4.75, **EXACT)
    ramp = [(t, 2 + 3 * t) for t in (0.0, 0.4, 1.1, 1.7, 3.0, 4.2, 5.0)]  # P = 2 + 3t, irregular samples
    t0, t1 = 0.3, 4.9
    assert integrate(ramp, "power", t0, t1) == pytest.approx(2 * (t1 - t0) + 1.5 * (t1 ** 2 - t0 ** 2), **EXACT)
    steps = [(0.0, 1.0), (1.0, 5.0), (2.0, 5.0), (3.0, 2.0), (4.0, 2.0)]
    # edges fall between samples: [0.5,1] 4 W avg x 0.5 + [1,2] 5 + [2,3] 3.5 + [3,3.5] 2 x 0.5
    assert integrate(steps, "power", 0.5, 3.5) == pytest.approx(2.0 + 5.0 + 3.5 + 1.0, **EXACT)
    assert integrate(list(reversed(steps)), "power", 1.0, 3.0) == pytest.approx(8.5, **EXACT)  # on samples, unsorted
    assert integrate(steps, "power", 2.0, 2.0) == 0.0


def test_energy_counter_is_interpolated_at_the_window_edges():
    counter = [(t, 10 + 4 * t) for t in (0.0, 1.3, 2.9, 4.0)]  # 4 W into a joule counter
    assert integrate(counter, "energy", 0.7, 3.3) == pytest.approx(4 * 2.6, **EXACT)
    assert integrate(counter, "energy", 1.3, 2.9) == pytest.approx(4 * 1.6, **EXACT)


def test_integration_refuses_what_it_cannot_measure():
    trace = [(1.0, 5.0), (2.0, 5.0)]
    for t0, t1 in ((0.5, 1.5), (1.5, 2.5)):
        with pytest.raises(ValueError, match="not the whole window"):
            integrate(trace, "power", t0, t1)
    with pytest.raises(ValueError, match="ends before it starts"):
        integrate(trace, "power", 1.8, 1.2)
    with pytest.raises(ValueError, match="not the whole window"):
        integrate([], "energy", 0, 1)
    with pytest.raises(ValueError, match="unknown meter kind"):
        integrate(trace, "watts", 1.0, 2.0)


# --- sampler ------------------------------------------------------------------------------------------------

class ClockMeter:
    """A meter whose reading is a known function of time.perf_counter()."""

    name, sensor, rails, min_window_s = "clock", "a function of time", ["f"], 0.05

    def __init__(self, kind, f, fail_after=None):
        self.kind, self.f, self.reads, self.fail_after = kind, f, 0, fail_after

    def read(self):
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            raise OSError(errno.ENODATA, "No data available")
        return self.f(time.perf_counter())

    def close(self):
        pass


def test_sampler_collects_timestamped_samples_that_integrate_to_the_analytic_value():
    T = time.perf_counter()
    w = 2 * math.pi / 0.4
    power = ClockMeter("power", lambda t: 5 + 2 * math.sin(w * (t - T)))
    with Sampler(power, period_s=0.005) as s:
        time.sleep(0.05)
        t0 = s.mark()
        time.sleep(0.3)
        t1 = s.mark()
        time.sleep(0.02)
    trace = s.trace
    assert trace == sorted(trace) and {t0, t1} <= {t for t, _ in trace}  # the marks are samples themselves
    inside = [t for t, _ in trace if t0 < t < t1]
    assert len(inside) >= 10 and all(b > a for a, b in zip(inside, inside[1:]))
    want = 5 * (t1 - t0) - 2 / w * (math.cos(w * (t1 - T)) - math.cos(w * (t0 - T)))
    assert integrate(trace, "power", t0, t1) == pytest.approx(want, rel=1e-2)
    n = len(trace)
    time.sleep(0.03)
    assert len(s.trace) == n  # the thread stopped on exit

    counter = ClockMeter("energy", lambda t: 7.0 * (t - T))  # 7 W into a joule counter
    with Sampler(counter, period_s=0.01) as s:
        t0 = s.mark()
        time.sleep(0.1)
        t1 = s.mark()
    # a stamp is the middle of its read, microseconds from the meter's own clock call (more if the
    # thread is preempted mid-read): the tolerances allow for that, a wrong clock would be off by far more
    assert integrate(s.trace, "energy", t0, t1) == pytest.approx(7.0 * (t1 - t0), rel=1e-2)


def test_sampler_survives_a_sensor_that_stops_answering():
    m = ClockMeter("power", lambda t: 1.0, fail_after=3)
    with Sampler(m, period_s=0.005) as s:
        time.sleep(0.1)
    assert len(s.trace) == 3 and s.error.startswith("OSError") and "No data available" in s.error
    with pytest.raises(ValueError):
        Sampler(m, period_s=0)


def test_idle_power_averages_a_quiet_interval():
    assert idle_power(ClockMeter("power", lambda t: 4.2), seconds=0.05, period_s=0.01) == pytest.approx(4.2, **EXACT)
    counter = ClockMeter("energy", lambda t: 3.0 * t)
    assert idle_power(counter, seconds=0.2, period_s=0.01) == pytest.approx(3.0, rel=1e-2)


# --- results ------------------------------------------------------------------------------------------------

def test_energy_result_arithmetic():
    r = EnergyResult(meter="jetson", sensor="INA3221 rail VDD_IN (hwmon, JetPack 5/6)", rails=["VDD_IN"],
                     window_s=10.0, inferences=100, energy_j=50.0, idle_w=2.0, samples=500)
    assert r.avg_power_w == 5.0 and r.net_energy_j == 30.0
    assert r.j_per_inference == pytest.approx(0.3, **EXACT) and r.gross_j_per_inference == 0.5
    assert r.inferences_per_j == pytest.approx(1 / 0.3, **EXACT) and r.warnings == []
    d = json.loads(json.dumps(r.to_dict()))
    assert d["available"] is True and d["net_energy_j"] == 30.0 and d["rails"] == ["VDD_IN"]
    assert d["inferences_per_j"] == pytest.approx(1 / 0.3)

    idle = EnergyResult(meter="rapl", sensor="RAPL package-0", rails=["package-0"], window_s=10.0, inferences=100,
                        energy_j=19.5, idle_w=2.0, samples=2)
    assert idle.net_energy_j == pytest.approx(-0.5) and idle.j_per_inference is None and idle.inferences_per_j is None
    assert any("indistinguishable from idle" in w for w in idle.warnings)
    assert idle.to_dict()["j_per_inference"] is None and idle.gross_j_per_inference == 0.195
    assert unavailable_dict("no RAPL zones") == {"available": False, "reason": "no RAPL zones"}


def test_energy_over_warns_about_short_windows_and_sparse_samples():
    power = ClockMeter("power", lambda t: 0.0)
    power.min_window_s = 0.5
    trace = [(0.0, 10.0), (0.1, 10.0), (0.2, 12.0), (0.3, 12.0)]
    r = energy_over(trace, power, 0.05, 0.25, inferences=8, idle_w=1.0)
    assert r.energy_j == pytest.approx(0.05 * 10 + 0.1 * 11 + 0.05 * 12, **EXACT)
    assert r.window_s == pytest.approx(0.2) and r.samples == 2 and (r.meter, r.rails) == ("clock", ["f"])
    assert any("shorter than 0.5 s" in w for w in r.warnings) and any("only 2 power sample" in w for w in r.warnings)
    counter = ClockMeter("energy", lambda t: 0.0)
    r = energy_over([(0.0, 0.0), (1.0, 9.0)], counter, 0.0, 1.0, inferences=3, idle_w=0.0)
    assert r.warnings == [] and r.j_per_inference == pytest.approx(3.0, **EXACT)
