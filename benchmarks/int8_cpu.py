"""INT8 on CPU: edgevis's quantizer against ONNX Runtime's ``quantize_static`` with its defaults.

    python benchmarks/int8_cpu.py [--models NAME ...] [--calib-count 64] [--threads 2] [--rounds 15]
                                  [--work DIR] [--no-trained] [--skip-memory] [--quick] [--json-out FILE]

Per model, in one run: export FP32 at 224; quantize it with edgevis (``quantize_int8_file``,
default config) and with ``quantize_static`` (defaults: only the paths and a calibration
reader), both on the same FP32 file and the same calibration images, each in its own spawned
process so that wall time and peak RSS belong to that quantizer alone; time the three models
side by side (``interleaved_latency``, same thread count); measure INT8 fidelity against FP32
where the weights are trained (builtin ImageNet weights, else a model trained here on digits
at 64x64, quantized and checked the same way). Then, for one model, edgevis's peak RSS when
calibrating on 64 vs 512 images. Ratios are the result: the machine is small and shared.

OpenVINO columns (``--no-openvino`` skips them; needs ``pip install 'edgevis[openvino]'``), in the
same interleaved rounds as the ORT ones, ratios over ORT FP32: the FP32 file compiled by OpenVINO
with the ``f32`` precision hint and with its default hint (bf16 on CPUs that have it; the
precision that ran is read back from the compiled model and printed), NNCF INT8
(``nncf.quantize`` with its defaults on the FP32 model, same calibration images, in a child
process), and edgevis INT8 on OpenVINO: ``--target openvino`` (the Q/DQ file OpenVINO reads as
FakeQuantize; which format that is was decided with these columns, see edgevis/quant/openvino.py)
and the ``ort-cpu`` file timed above. Their fidelity against FP32 (ORT) is measured on the same
held-out images, each run on OpenVINO. OpenVINO's threads suffer more than ORT's (no spinning)
on an oversubscribed machine: compare the OpenVINO columns with each other where the load is high.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

DEFAULT_MODELS = ["lsnet_t", "deit_tiny_patch16_224", "swin_tiny_patch4_window7_224", "efficientnet_lite0"]
# catalog wave 1, part B: the smallest variant of each family
DEFAULT_MODELS += ["casvit_xs", "hornet_tiny_7x7", "moganet_xtiny", "focalnet_tiny_srf"]
# catalog wave 1, part A: the smallest variant of each family
DEFAULT_MODELS += ["convnext_atto", "inceptionnext_atto", "poolformer_s12", "poolformerv2_s12", "convformer_s18",
                   "caformer_s18"]
DIGITS_SIZE = 64
# Swin's 7x7 windows need 224 inputs (at 64 the stage maps do not tile), and training it at
# 224 on two CPU cores takes hours: it gets no trained weights and no fidelity figure.
UNTRAINABLE_FAMILIES = {"swin": "n/a (no trained weights): Swin needs 224 input, too slow to train here"}
# digits training (epochs, lr) per family, tried here: DeiT-Tiny from scratch barely learns at
# train_digits' default lr 2e-3 (34 % test accuracy after 8 epochs) and reaches 84 % at 5e-4;
# LSNet-T reaches 89 % after 3 epochs at 2e-3. --train-epochs overrides the epochs.
TRAINING = {"deit": (8, 5e-4)}
DEFAULT_TRAINING = (10, 2e-3)
Json = dict[str, Any]


# ---- child-process jobs (top-level functions: 'spawn' pickles them by name) -------------------

def _peak_mb() -> float:
    """This process's peak RSS in MB. Not ru_maxrss alone: Linux carries the parent's high-water mark
    through fork+exec into it, so a spawned child reported this script's 1 GB (torch, training) as
    its own peak. VmHWM belongs to the child's post-exec address space only."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux; not inherited elsewhere


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # quantize_static logs to the root logger (per weight, per op) and prints progress
    root, level = logging.getLogger(), logging.getLogger().level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def calib_source(calib_dir: str | None):  # type: ignore[no-untyped-def]
    """The calibration images ``quantize_int8_file`` reads for ``calib_dir`` (same rule as its
    ``_sources``), so the peer is fed exactly those; the parent checks the labels and counts agree."""
    from edgevis.quant.calibration import builtin_sources, folder_source, split_folder

    return builtin_sources()[0] if calib_dir is None else split_folder(folder_source(calib_dir))[0]


def job_edgevis(fp32: str, calib_dir: str | None, count: int, threads: int) -> Json:
    from edgevis.quant.int8 import Int8Config, quantize_int8_file

    after_import = _peak_mb()
    t0 = time.perf_counter()
    marks: list[tuple[float, float, str]] = []  # (seconds, peak RSS so far, message)
    # threads: the count the INT8 model will be timed (deployed) with, so its placement search times that
    cfg = Int8Config(calib_dir=Path(calib_dir) if calib_dir else None, calib_count=count, threads=threads)
    r = quantize_int8_file(fp32, cfg, log=lambda s: marks.append((time.perf_counter() - t0, _peak_mb(), s)))
    total, peak = time.perf_counter() - t0, _peak_mb()

    def at(step: str) -> tuple[float, float]:  # (seconds, peak MB) when quantize_int8_file logged ``step``
        return next(((t, m) for t, m, s in marks if s.startswith(step)), (total, peak))

    # calibration ends where Q/DQ insertion starts; its fidelity report on held-out images is the last
    # step (the peer has none): what comes before it is calibration + placement
    t_fid, m_fid = at("measuring fidelity")
    return {"path": str(r.path), "seconds": total, "seconds_before_fidelity": t_fid, "peak_rss_mb": peak,
            "peak_rss_after_calibration_mb": at("inserting Q/DQ")[1], "peak_rss_before_fidelity_mb": m_fid,
            "rss_after_import_mb": after_import, "settings": r.settings,
            "own_fidelity": r.fidelity, "warnings": r.warnings,
            "log": [f"{t:7.1f}s {m:6.0f}MB {s}" for t, m, s in marks]}


def job_peer(fp32: str, out: str, calib_dir: str | None, count: int) -> Json:
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    from edgevis.quant.calibration import batched
    from edgevis.runtimes.predict import recorded_preprocess

    ort.set_default_logger_severity(3)
    after_import = _peak_mb()
    t0 = time.perf_counter()
    spec, _ = recorded_preprocess(fp32)
    name = onnx.load(fp32, load_external_data=False).graph.input[0].name
    src = calib_source(calib_dir)
    seen = [0]

    class Reader(CalibrationDataReader):  # the exported models have batch 1
        def __init__(self) -> None:
            self._it = batched(src.arrays(spec), 1, count)

        def get_next(self) -> dict[str, Any] | None:
            x = next(self._it, None)
            seen[0] += x is not None
            return None if x is None else {name: x}

    with _quiet():
        quantize_static(fp32, out, Reader())
    return {"path": out, "seconds": time.perf_counter() - t0, "peak_rss_mb": _peak_mb(),
            "rss_after_import_mb": after_import, "calibration_source": src.label, "calibration_images": seen[0]}


def job_edgevis_target(fp32: str, calib_dir: str | None, count: int, threads: int, target: str) -> Json:
    """edgevis INT8 for another --target, written beside the ort-cpu one."""
    from edgevis.quant.int8 import Int8Config, quantize_int8_file

    import shutil

    t0 = time.perf_counter()
    # quantize_int8_file writes NAME.int8.onnx beside its input: a copy of the FP32 file in a folder of its own
    # keeps the ort-cpu file of the same name
    here = Path(fp32).parent / f"target-{target}"
    here.mkdir(exist_ok=True)
    for f in (Path(fp32), Path(fp32 + ".json")):
        if f.is_file():
            shutil.copyfile(f, here / f.name)
    cfg = Int8Config(target=target, calib_dir=Path(calib_dir) if calib_dir else None, calib_count=count,
                     threads=threads)
    r = quantize_int8_file(here / Path(fp32).name, cfg)
    return {"path": str(r.path), "seconds": time.perf_counter() - t0, "peak_rss_mb": _peak_mb(),
            "settings": r.settings, "own_fidelity": r.fidelity, "warnings": r.warnings}


def job_nncf(fp32: str, out_xml: str, calib_dir: str | None, count: int) -> Json:
    """``nncf.quantize`` with its defaults on the FP32 model read by OpenVINO, on the calibration images
    edgevis reads (batch 1, as exported); the result is saved as OpenVINO IR."""
    import nncf
    import openvino as ov

    from edgevis.quant.calibration import batched
    from edgevis.runtimes.predict import recorded_preprocess

    t0 = time.perf_counter()
    spec, _ = recorded_preprocess(fp32)
    src = calib_source(calib_dir)
    xs = list(batched(src.arrays(spec), 1, count))
    with _quiet():
        q = nncf.quantize(ov.Core().read_model(fp32), nncf.Dataset(xs), subset_size=len(xs))
        ov.save_model(q, out_xml)
    return {"path": out_xml, "seconds": time.perf_counter() - t0, "peak_rss_mb": _peak_mb(),
            "nncf": nncf.__version__, "calibration_source": src.label, "calibration_images": len(xs)}


def in_child(fn: Callable[..., Json], *args: Any) -> Json:
    """Run ``fn`` in a fresh spawned interpreter (nothing inherited from this one's heap)."""
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
        return ex.submit(fn, *args).result()


# ---- measurements in this process -------------------------------------------------------------

def int8_ops(path: str) -> list[int]:
    """[ops reading a dequantized tensor, all ops], Q/DQ not counted: how much of the graph really runs
    on int8 data, counted the same way for both quantizers (a placement search may keep nearly all in float)."""
    import onnx

    nodes = [n for n in onnx.load(path, load_external_data=False).graph.node]
    dq = {o for n in nodes if n.op_type == "DequantizeLinear" for o in n.output}
    ops = [n for n in nodes if n.op_type not in ("QuantizeLinear", "DequantizeLinear")]
    return [sum(any(i in dq for i in n.input) for n in ops), len(ops)]


def quantize_both(fp32: Path, calib_dir: Path | None, count: int, threads: int) -> tuple[Json, Json]:
    c = str(calib_dir) if calib_dir else None
    e = in_child(job_edgevis, str(fp32), c, count, threads)
    try:
        p = in_child(job_peer, str(fp32), str(fp32.with_name(fp32.name.replace(".fp32.", ".peer-int8."))), c, count)
    except Exception as exc:  # quantize_static refuses some graphs edgevis quantizes (poolformer_s12's shared
        # GroupNorm weights: "Quantization parameter shared mode is not supported for weight yet"): a result too
        e["int8_ops"] = int8_ops(e["path"])
        return e, {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    same = (e["settings"]["calibration_source"], e["settings"]["calibration_images"])
    if same != (p["calibration_source"], p["calibration_images"]):
        raise SystemExit(f"calibration differs: edgevis {same}, peer {p['calibration_source'], p['calibration_images']}")
    e["int8_ops"], p["int8_ops"] = int8_ops(e["path"]), int8_ops(p["path"])
    return e, p


def _session(path: str, threads: int):  # type: ignore[no-untyped-def]
    """``cpu_session`` plus one setting: ORT's pool threads spin after each run, and on two cores the
    spinning pool of the model just timed slows the next one. interleaved_latency's order (A B C, C B A)
    makes the middle model always the one that follows another: measured here, whichever model sat in
    the middle lost 15-35 % (DeiT-Tiny, 2 threads). Without spinning the position stopped mattering."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def latency3(paths: dict[str, str], threads: int, rounds: int, extra: dict[str, Any] | None = None) -> Json:
    """FP32, edgevis and peer timed in the same rounds, with ``extra`` runners (OpenVINO, ``run(None, feed)``)
    in the same rounds too; ratios are p50 over ORT FP32's p50."""
    from edgevis.runtimes.latency import interleaved_latency
    from edgevis.quant.calibration import builtin_sources
    from edgevis.runtimes.predict import recorded_preprocess

    spec, _ = recorded_preprocess(paths["fp32"])
    x = next(builtin_sources()[1].arrays(spec))[None]  # a real photo: activations in their usual range
    sessions = {k: _session(p, threads) for k, p in paths.items() if k != "peer"}
    sessions.update(extra or {})
    # interleaved_latency's order turns at each end (A..Z, Z..A): the first and the last model run twice in a
    # row there. The ends go to models no OpenVINO column is compared with: ORT FP32 first, the peer (else OV
    # FP32 f32) last. (Not the cause of the 4-8 % by which the ort-cpu file beat the identical graph and weights
    # written by --target openvino on OpenVINO: the gap stayed with this order, and a standalone interleaved
    # timing of the two, both orders, put them within 2 % either way: noise at load 2-6 on two cores.)
    if "peer" in paths:
        sessions["peer"] = _session(paths["peer"], threads)
    elif extra:
        first = next(iter(extra))
        sessions[first] = sessions.pop(first)
    lat = interleaved_latency(sessions, {sessions["fp32"].get_inputs()[0].name: x}, rounds=rounds, iters=5)
    p50 = {k: v.p50_ms for k, v in lat.items()}
    peer = {"speedup_peer": p50["fp32"] / p50["peer"], "edgevis_vs_peer": p50["peer"] / p50["edgevis"]} \
        if "peer" in p50 else {}  # absent where quantize_static failed (quantize_both)
    return {**{k: v.to_dict() for k, v in lat.items()}, "speedup_edgevis": p50["fp32"] / p50["edgevis"], **peer,
            **{f"speedup_{k}": p50["fp32"] / p50[k] for k in (extra or {})}}


def _paths(fp32: Path, e: Json, p: Json) -> dict[str, str]:
    return {"fp32": str(fp32), "edgevis": e["path"], **({"peer": p["path"]} if "path" in p else {})}


def fidelity2(fp32: Path, e: Json, p: Json, held, data: str) -> Json:  # type: ignore[no-untyped-def]
    """Both INT8 models against FP32 on the same held-out images; label accuracy where the folder names classes."""
    import numpy as np

    from edgevis.quant.fidelity import fidelity_report
    from edgevis.runtimes.ort import OrtRunner
    from edgevis.runtimes.predict import recorded_preprocess

    spec, _ = recorded_preprocess(fp32)
    out: Json = {"data": data, "edgevis": fidelity_report(fp32, e["path"], held, spec)}
    if "path" in p:
        out["peer"] = fidelity_report(fp32, p["path"], held, spec)
    labels = [Path(n).parent.name for n, _ in held.loaders]
    if all(s.isdigit() for s in labels):
        x = np.stack(list(held.arrays(spec)))
        y = np.asarray([int(s) for s in labels])
        for k, path in _paths(fp32, e, p).items():
            with OrtRunner(path) as r:
                out.setdefault("accuracy", {})[k] = float((r.infer_batched(x).argmax(-1) == y).mean())
    return out


def digits_run(name: str, args: argparse.Namespace, work: Path, say: Callable[[str], None]) -> Json:
    """Train ``name`` on digits at 64x64 (cached), export, quantize both ways, check on the test split."""
    from edgevis.catalog.registry import model_info
    from edgevis.catalog.training import train_digits
    from edgevis.data.digits import write_digits_folder
    from edgevis.exporters.onnx import ExportConfig
    from edgevis.pipeline import export_fp32
    from edgevis.quant.calibration import folder_source

    family = model_info(name).family
    if family in UNTRAINABLE_FAMILIES:
        return {"note": UNTRAINABLE_FAMILIES[family]}
    epochs, lr = TRAINING.get(family, DEFAULT_TRAINING)
    epochs = args.train_epochs or epochs
    ckpt = work / "checkpoints" / f"{name}-digits{DIGITS_SIZE}-e{epochs}-lr{lr:g}-s0.pth"
    train: Json = {"checkpoint": str(ckpt), "epochs": epochs, "lr": lr, "cached": ckpt.exists()}
    if not ckpt.exists():
        say(f"training {name} on digits {DIGITS_SIZE}px, {epochs} epochs, lr {lr:g} (cached in {ckpt.parent})")
        r = train_digits(name, ckpt, epochs=epochs, input_size=DIGITS_SIZE, lr=lr, threads=args.threads,
                         log=lambda s: say(f"  {name}: {s}"))
        train.update(seconds=r.seconds, train_acc=r.train_acc, test_acc=r.test_acc)
    # The class folders sort 0/, 1/, ...: a whole train split would give both quantizers 64 zeros.
    # The split's order interleaves classes, so its first n images (n chosen so that n minus the
    # every-5th held out by split_folder is the calibration count) are balanced across digits.
    n = args.calib_count + -(-args.calib_count // 4)
    # rewritten every run (a second or two): a folder left half-written by an interrupted run heals
    calib_dir = write_digits_folder(work / "digits" / f"train{n}", "train", size=DIGITS_SIZE, limit=n)
    test_dir = write_digits_folder(work / "digits" / "test", "test", size=DIGITS_SIZE)
    cfg = ExportConfig(input_size=(DIGITS_SIZE, DIGITS_SIZE), num_classes=10)
    fp32 = export_fp32(name, work / name / "digits", weights=ckpt, config=cfg).artifact.path
    say(f"quantizing trained {name} ({DIGITS_SIZE}x{DIGITS_SIZE}) with edgevis and quantize_static")
    e, p = quantize_both(fp32, calib_dir, args.calib_count, args.threads)
    fid = fidelity2(fp32, e, p, folder_source(test_dir), f"digits-trained {DIGITS_SIZE}px / digits test")
    lat = latency3(_paths(fp32, e, p), args.threads, max(5, args.rounds // 2))
    return {**fid, "training": train, "latency_at_64": lat, "edgevis_run": e, "peer_run": p}


OV_COLUMNS = ("ov_f32", "ov_auto", "ov_nncf", "ov_edgevis", "ov_edgevis_ortcpu")


def openvino_models(fp32: Path, e: Json, calib_dir: Path | None, count: int, threads: int) -> Json:
    """The OpenVINO contenders of one model: {column: {"path", "hint", ...}}; quantizes with NNCF and with
    edgevis --target openvino (separate processes, the same calibration images)."""
    c = str(calib_dir) if calib_dir else None
    n = in_child(job_nncf, str(fp32), str(fp32.with_name(fp32.name.replace(".fp32.onnx", ".nncf-int8.xml"))), c, count)
    same = (e["settings"]["calibration_source"], e["settings"]["calibration_images"])
    if same != (n["calibration_source"], n["calibration_images"]):
        raise SystemExit(f"calibration differs: edgevis {same}, nncf {n['calibration_source'], n['calibration_images']}")
    t = in_child(job_edgevis_target, str(fp32), c, count, threads, "openvino")
    return {"ov_f32": {"path": str(fp32), "hint": "f32"}, "ov_auto": {"path": str(fp32), "hint": "auto"},
            "ov_nncf": {"path": n["path"], "hint": "auto", "run": n},
            "ov_edgevis": {"path": t["path"], "hint": "auto", "run": t},
            "ov_edgevis_ortcpu": {"path": e["path"], "hint": "auto"}}


def ov_runners(ov: Json, threads: int) -> dict[str, Any]:
    from edgevis.runtimes.openvino import OvConfig, OvRunner

    return {k: OvRunner(v["path"], OvConfig(precision=v["hint"], threads=threads)).open() for k, v in ov.items()}


def ov_fidelity(fp32: Path, runners: dict[str, Any], held) -> Json:  # type: ignore[no-untyped-def]
    """Each OpenVINO model against FP32 on ONNX Runtime, on the same held-out images."""
    import numpy as np

    from edgevis.core.compare import compare_outputs
    from edgevis.quant.fidelity import top5_overlap
    from edgevis.runtimes.ort import OrtRunner
    from edgevis.runtimes.predict import recorded_preprocess

    spec, _ = recorded_preprocess(fp32)
    xs = list(held.arrays(spec))
    with OrtRunner(fp32) as r:
        ref = np.concatenate([r.infer_batched(x[None]) for x in xs])
    out: Json = {}
    for k, runner in runners.items():
        got = np.concatenate([runner.infer(x[None]) for x in xs])
        c = compare_outputs(ref, got)
        out[k] = {"images": len(xs), "top1_agreement": c.top1_agreement, "top5_overlap": top5_overlap(ref, got),
                  "cosine_mean": c.cosine_mean, "cosine_min": c.cosine_min}
    return out


def bench_model(name: str, args: argparse.Namespace, work: Path, say: Callable[[str], None]) -> Json:
    from edgevis.catalog.registry import has_builtin_weights
    from edgevis.pipeline import export_fp32
    from edgevis.quant.calibration import builtin_sources

    real = has_builtin_weights(name)
    say(f"[bold]{name}[/]: export FP32 224 ({'builtin ImageNet' if real else 'random'} weights)")
    fp32 = export_fp32(name, work / name, weights="builtin" if real else None).artifact.path
    say(f"{name}: quantizing with edgevis and with quantize_static (separate processes)")
    e, p = quantize_both(fp32, None, args.calib_count, args.threads)
    ov: Json = {}
    runners: dict[str, Any] = {}
    if args.openvino:
        say(f"{name}: quantizing with nncf.quantize and edgevis --target openvino (separate processes)")
        ov = openvino_models(fp32, e, None, args.calib_count, args.threads)
        runners = ov_runners(ov, args.threads)
        for k, r in runners.items():
            ov[k]["precision"] = r.precision
    say(f"{name}: timing FP32 / edgevis / peer{' / OpenVINO' if ov else ''} interleaved, {args.threads} threads")
    lat = latency3(_paths(fp32, e, p), args.threads, args.rounds, runners)
    if runners:
        for k, f in ov_fidelity(fp32, runners, builtin_sources()[1]).items():
            ov[k]["fidelity"] = f
        for r in runners.values():
            r.close()
    if real:
        fid = fidelity2(fp32, e, p, builtin_sources()[1], "ImageNet 224px / held-out photos")
    elif args.trained:
        fid = digits_run(name, args, work, say)
    else:
        fid = {"note": "n/a (random weights; --no-trained)"}
    return {"model": name, "weights": "builtin" if real else "random-init", "fp32": str(fp32),
            "latency": lat, "edgevis": e, "peer": p, "fidelity": fid, "openvino": ov}


def photo_folder(root: Path, count: int) -> Path:
    """``count`` deterministic crops (35-100 %), flips and rescalings of the bundled photos, as PNG (cached)."""
    import numpy as np
    from PIL import Image

    from edgevis.core.files import atomic_output
    from edgevis.data.samples import builtin_photos

    if root.is_dir() and len(list(root.glob("*.png"))) == count:
        return root
    photos = [img for _, img in builtin_photos()]
    for i in range(count):
        rng, img = np.random.default_rng(i), photos[i % len(photos)]
        cw, ch = (max(32, int(side * rng.uniform(0.35, 1.0))) for side in img.size)
        x, y = int(rng.integers(0, img.width - cw + 1)), int(rng.integers(0, img.height - ch + 1))
        v = img.crop((x, y, x + cw, y + ch))
        v = v.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else v
        k = rng.integers(160, 321) / min(cw, ch)  # short side 160..320 px
        with atomic_output(root / f"{i:04d}.png") as tmp:
            v.resize((max(1, round(cw * k)), max(1, round(ch * k)))).save(tmp, format="PNG")
    return root


def memory_scaling(name: str, args: argparse.Namespace, work: Path, say: Callable[[str], None]) -> Json:
    from edgevis.pipeline import export_fp32

    big = photo_folder(work / "photos512", 512)
    small = photo_folder(work / "photos64", 64)  # the same generator: the first 64 of the 512
    fp32 = export_fp32(name, work / "memory" / name).artifact.path
    out: Json = {"model": name}
    for key, d in (("images_64", small), ("images_512", big)):
        say(f"memory: edgevis INT8 of {name} calibrated on {d.name}")
        r = in_child(job_edgevis, str(fp32), str(d), 512, args.threads)
        out[key] = {k: v for k, v in r.items() if k not in ("settings", "own_fidelity", "path")}
        out[key].update(calibration_images=r["settings"]["calibration_images"],
                        held_out_images=r["own_fidelity"]["images"],
                        kept_float=sum(k["count"] for k in r["settings"]["kept_float"]))
    a, b = out["images_64"], out["images_512"]
    out["ratio"] = b["peak_rss_mb"] / a["peak_rss_mb"]
    for k in ("after_calibration", "before_fidelity"):
        out[f"ratio_{k}"] = b[f"peak_rss_{k}_mb"] / a[f"peak_rss_{k}_mb"]
    return out


# ---- report -----------------------------------------------------------------------------------

def _share(n: int, total: int) -> str:
    return "<1%" if 0 < n < total / 100 else f"{n / total:.0%}"


def _ms(lat: Json, who: str) -> str:
    return f"{lat[who]['p50_ms']:.2f} ({lat['speedup_' + who]:.2f}x)" if who in lat else "failed"


OV_TITLES = {"ov_f32": "OV FP32 hint f32", "ov_auto": "OV FP32 default hint", "ov_nncf": "OV NNCF INT8",
             "ov_edgevis": "OV edgevis INT8 (openvino)", "ov_edgevis_ortcpu": "OV edgevis INT8 (ort-cpu file)"}


def ov_table(rows: list[Json], console) -> None:  # type: ignore[no-untyped-def]
    """OpenVINO columns: p50 ms (x ORT FP32), the precision that ran (read back), and agreement with FP32."""
    from rich.table import Table

    rows = [r for r in rows if r.get("openvino")]
    if not rows:
        return
    t = Table(title="OpenVINO, same rounds: p50 ms (x ORT FP32) / precision that ran / top-1 agr. & cos vs FP32 "
                    "on held-out photos")
    for col in ("model", "ORT FP32", "ORT edgevis INT8", *OV_TITLES.values()):
        t.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        lat, ov = r["latency"], r["openvino"]
        cells = []
        for k in OV_TITLES:
            f = ov[k].get("fidelity") or {}
            cells.append(f"{lat[k]['p50_ms']:.2f} ({lat['speedup_' + k]:.2f}x)\n{ov[k]['precision']['label']}\n"
                         f"{f.get('top1_agreement', float('nan')):.1%} / {f.get('cosine_mean', float('nan')):.4f}")
        t.add_row(r["model"], f"{lat['fp32']['p50_ms']:.2f}", _ms(lat, "edgevis"), *cells)
    console.print(t)


def report(rows: list[Json], memory: Json | None, console) -> Json:  # type: ignore[no-untyped-def]
    """Print the tables and the summary; return the summary."""
    from rich.table import Table

    t = Table(title="INT8 on CPU, batch 1, p50 ms: edgevis (E) vs onnxruntime quantize_static defaults (P)",
              caption="latency, int8 ops: the 224px models (random weights unless ImageNet); E / P > 1: edgevis "
                      "faster; top-1 / cos: agreement with FP32 of the models in 'fidelity on' (table below)")
    for col in ("model", "weights", "FP32", "E (x FP32)", "P (x FP32)", "E / P", "int8 ops E/P", "E top-1 / cos",
                "P top-1 / cos", "fidelity on", "quant s E/P", "peak MB E/P"):
        t.add_column(col, justify="left" if col in ("model", "weights", "fidelity on") else "right",
                     no_wrap=col == "model")
    for r in rows:
        lat, fid, e, p = r["latency"], r["fidelity"], r["edgevis"], r["peer"]
        agree = [f"{fid[k]['top1_agreement']:.1%} / {fid[k]['cosine_mean']:.4f}" if k in fid else "n/a"
                 for k in ("edgevis", "peer")]
        t.add_row(r["model"], "ImageNet" if r["weights"] == "builtin" else "random", f"{lat['fp32']['p50_ms']:.2f}",
                  _ms(lat, "edgevis"), _ms(lat, "peer"),
                  f"{lat['edgevis_vs_peer']:.2f}x" if "edgevis_vs_peer" in lat else "-",
                  " / ".join(_share(*x["int8_ops"]) if "int8_ops" in x else "-" for x in (e, p)), *agree,
                  fid.get("data", fid.get("note", "")), f"{e['seconds']:.0f} / {p.get('seconds', 0):.0f}",
                  f"{e['peak_rss_mb']:.0f} / {p.get('peak_rss_mb', 0):.0f}")
    console.print(t)
    d = Table(title="fidelity vs FP32 on held-out images (trained weights only)")
    for col in ("model", "data", "quantizer", "int8 ops", "top-1", "top-5", "cos mean", "cos min", "SQNR dB",
                "label acc", "x FP32 here"):
        d.add_column(col, justify="left" if col in ("model", "data", "quantizer") else "right")
    for r in (r for r in rows if "edgevis" in r["fidelity"]):
        fid, acc = r["fidelity"], r["fidelity"].get("accuracy", {})
        lat = fid.get("latency_at_64", r["latency"])  # the latency of the very models measured here
        for who in (w for w in ("edgevis", "peer") if w in fid):
            f, n = fid[who], fid.get(f"{who}_run", r[who])["int8_ops"]
            d.add_row(r["model"], f"{fid['data']} (n={f['images']})", who, f"{n[0]} of {n[1]}",
                      f"{f['top1_agreement']:.1%}", f"{f['top5_overlap']:.1%}", f"{f['cosine_mean']:.4f}",
                      f"{f['cosine_min']:.4f}", f"{f['sqnr_db']:.1f}",
                      f"{acc[who]:.1%} (FP32 {acc['fp32']:.1%})" if acc else "-", f"{lat['speedup_' + who]:.2f}x")
    if d.row_count:
        console.print(d)
    ov_table(rows, console)
    lat = {r["model"]: r["latency"] for r in rows}
    summary: Json = {
        "median_edgevis_speedup": statistics.median(v["speedup_edgevis"] for v in lat.values()),
        "median_peer_speedup": statistics.median([v["speedup_peer"] for v in lat.values() if "speedup_peer" in v]
                                                 or [float("nan")]),
        "peer_failed": {r["model"]: r["peer"]["error"] for r in rows if "error" in r["peer"]},
        "edgevis_at_least_fp32": [m for m, v in lat.items() if v["speedup_edgevis"] >= 1.0],
        "edgevis_beats_peer": [m for m, v in lat.items() if v.get("edgevis_vs_peer", float("inf")) > 1.0],
    }
    ok, win, n = summary["edgevis_at_least_fp32"], summary["edgevis_beats_peer"], len(rows)
    console.print(f"median speedup over FP32: edgevis {summary['median_edgevis_speedup']:.2f}x, peer "
                  f"{summary['median_peer_speedup']:.2f}x; edgevis >= 1.0x FP32 on {len(ok)}/{n} ({', '.join(ok) or '-'}); "
                  f"edgevis faster than peer on {len(win)}/{n} ({', '.join(win) or '-'})")
    for m, err in summary["peer_failed"].items():
        console.print(f"quantize_static failed on {m} (edgevis counted as faster): {err}")
    if memory:
        a, b = memory["images_64"], memory["images_512"]
        console.print(f"memory ({memory['model']}, edgevis): peak RSS {a['peak_rss_mb']:.0f} MB calibrating on "
                      f"{a['calibration_images']} images vs {b['peak_rss_mb']:.0f} MB on {b['calibration_images']} = "
                      f"{memory['ratio']:.3f}x (target <= 1.1); through calibration "
                      f"{memory['ratio_after_calibration']:.3f}x ({a['peak_rss_after_calibration_mb']:.0f} vs "
                      f"{b['peak_rss_after_calibration_mb']:.0f} MB); before its fidelity check on "
                      f"{a['held_out_images']} vs {b['held_out_images']} held-out images "
                      f"{memory['ratio_before_fidelity']:.3f}x")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", help="catalog names (default: %s)" % " ".join(DEFAULT_MODELS))
    ap.add_argument("--calib-count", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--train-epochs", type=int, help="digits training epochs (default: per family; quick 3)")
    ap.add_argument("--work", type=Path, help="exports, digits folders, trained checkpoints (cached across runs); "
                                              "default benchmarks/results/work")
    ap.add_argument("--no-trained", dest="trained", action="store_false", help="skip digits training / fidelity")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--memory-model", default="lsnet_t")
    ap.add_argument("--no-openvino", dest="openvino", action="store_false",
                    help="skip the OpenVINO / NNCF columns (they need the openvino extra)")
    ap.add_argument("--quick", action="store_true", help="smoke run: lsnet_t only, fewer rounds and epochs")
    ap.add_argument("--json-out", type=Path, default=Path(__file__).parent / "results" / "int8_cpu.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.models = args.models or ["lsnet_t"]
        args.rounds = min(args.rounds, 6)
    args.models = args.models or DEFAULT_MODELS
    args.train_epochs = args.train_epochs or (3 if args.quick else None)

    from rich.console import Console

    from edgevis.catalog.registry import model_info
    from edgevis.core.errors import EdgevisError
    from edgevis.core.files import write_json_atomic

    try:
        for n in args.models + ([] if args.skip_memory else [args.memory_model]):
            model_info(n)  # an unknown name fails now, not after an hour of the others
    except EdgevisError as e:
        ap.error(str(e))
    work = (args.work or Path(__file__).parent / "results" / "work").resolve()
    work.mkdir(parents=True, exist_ok=True)
    import onnxruntime

    from edgevis import __version__

    say = Console(stderr=True).log
    result: Json = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                    "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                "python": sys.version.split()[0], "loadavg_start": os.getloadavg()},
                    "versions": {"edgevis": __version__, "onnxruntime": onnxruntime.__version__},
                    "peer": "onnxruntime.quantization.quantize_static(fp32, out, reader), all defaults",
                    "timing": "interleaved_latency, iters 5, batch 1, ORT CPU sessions without thread spinning",
                    "models": [], "memory": None}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every model: a crash an hour in keeps what was measured
        result["machine"]["loadavg_end"] = os.getloadavg()
        write_json_atomic(args.json_out, json.loads(json.dumps(result, default=str)))

    for n in args.models:
        result["models"].append(bench_model(n, args, work, say))
        save()
    if not args.skip_memory:
        result["memory"] = memory_scaling(args.memory_model, args, work, say)
    out = Console()
    if not out.is_terminal:
        out.width = 200  # piped or redirected: rich would wrap the tables at 80 columns
    result["summary"] = report(result["models"], result["memory"], out)
    save()
    out.print(f"raw numbers: {args.json_out}; files in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
