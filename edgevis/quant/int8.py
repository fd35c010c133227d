"""Standard INT8: calibrated Q/DQ through ``onnxruntime.quantization``, placed for speed and accuracy.

ORT inserts the Q/DQ nodes (edgevis does not re-implement that). edgevis adds
what ORT's quantizer lacks: formats chosen per target (``targets.py``),
streaming calibration on real images, a placement search that keeps in float
what int8 makes slower on the target or what damages the outputs
(``placement.py``), a check that the result is faster than its FP32 source, and
a fidelity report on held-out images.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..core.errors import EdgevisError
from ..core.files import sha256_file
from ..core.types import precision_path
from ..core.onnxfile import META_PROVENANCE, load_onnx, read_json_metadata, set_metadata, static_batch
from ..runtimes.predict import recorded_preprocess
from .equalize import correct_biases, prepare_float
from .rounding import optimize_rounding
from .calibration import CalibrationStream, batched, ImageSource, calibrate_ranges, calibration_sources, ort_method
from .fidelity import QuantizedFile, write_checked
from .noise import FASTER, Verdict
from .placement import Searcher
from .qdq_graph import group_counts, unquantize_outputs
from .sensitivity import rank_by_sqnr, tensor_sqnr
from .targets import get_target
from .openvino import LAYERNORMS

# the options and the default accuracy target live in config.py (no onnx to import: the CLI builds them before
# the export's child starts); re-exported here
from .config import DEFAULT_MIN_COSINE, Int8Config  # noqa: E402,F401

# images of the calibration set on which accuracy is checked during placement (bounded, so memory is too)
EVAL_IMAGES = 32
SENSITIVITY_IMAGES = 4
ABSORB_IMAGES = 16  # calibration images whose per-channel ranges decide the offsets absorbed


def saturating_u8s8() -> bool:
    """Whether ONNX Runtime's u8 x s8 kernels saturate on this CPU: x86 without VNNI, where MLAS sums
    pairs of products in 16 bits (VPMADDUBSW), so an int8 weight pair against large u8 activations
    clips. ORT's documented remedy is 7-bit weights (``reduce_range``). Measured on EfficientNet-Lite0
    here (AVX2, no VNNI): logit SQNR of ORT's int8 kernels 7.9 dB against 21.0 dB for the same Q/DQ
    file run as float math; with 7-bit weights kernels and float math agree (14.7 / 14.8 dB)."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return False  # ARM's dot-product kernels accumulate in 32 bits
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return True  # unknown x86: assume the common AVX2 path
    return not ({"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags))


@contextlib.contextmanager
def quantizer_errors(src: Path):  # type: ignore[no-untyped-def]
    """ONNX Runtime's quantizer raises plain exceptions on graphs it cannot handle (e.g. "Quantization
    parameter shared mode is not supported for weight yet"): one line naming the file, never a traceback."""
    from ..core.errors import first_line

    try:
        yield
    except EdgevisError:
        raise
    except Exception as e:  # noqa: BLE001 - the quantizer's failures have no type of their own
        node = failing_node(e)
        raise EdgevisError(f"ONNX Runtime's quantizer cannot quantize {src}{node}: {type(e).__name__}: "
                           f"{first_line(e, 300)}") from None


def failing_node(e: BaseException) -> str:
    """' at node NAME (OpType)' for the graph node ORT's quantizer was handling when it raised, else ''.

    Its exceptions rarely say which node; its op quantizers and graph passes hold that node in a
    local ``node`` (or ``self.node``), so the innermost frame that has one names it."""
    import onnx

    tb, found, tensor = e.__traceback__, None, None
    while tb is not None:
        loc = tb.tb_frame.f_locals
        cand = loc.get("node", getattr(loc.get("self"), "node", None))
        if isinstance(cand, onnx.NodeProto):
            found = cand
        if isinstance(loc.get("tensor_name"), str):
            tensor = loc["tensor_name"]
        tb = tb.tb_next
    if found is not None:
        return f" at node {found.name or '(unnamed)'} ({found.op_type})"
    return f" at tensor {tensor}" if tensor else ""


@contextlib.contextmanager
def _quiet_ort():
    # ORT's quantizer logs a root-logger warning per 1-D weight it cannot quantize per
    # channel (BatchNorm scales) and prints progress; both would bury the report and
    # stdout must stay clean for --json.
    # Its pre-processing also logs a traceback at ERROR level when ORT's optimizer rejects the graph (and then
    # carries on without it): ORT's errors reach the user as one line through ort_errors, so only CRITICAL passes.
    # The sessions the quantizer creates itself (calibration) log a failing kernel in colour on stderr through
    # ORT's default logger before the exception we report: fatal messages only while it runs (2, ORT's default,
    # after).
    import onnxruntime

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)
    onnxruntime.set_default_logger_severity(4)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)
        onnxruntime.set_default_logger_severity(2)


def _constant_ranks(model) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The rank of every constant tensor: initializers and ``Constant`` outputs."""
    ranks = {i.name: len(i.dims) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            a = n.attribute[0] if n.attribute else None
            ranks[n.output[0]] = len(a.t.dims) if a is not None and a.name == "value" else 1
    return ranks


def attention_matmuls(model) -> list[str]:  # type: ignore[no-untyped-def]
    """MatMul nodes whose two inputs are both activations (q.k^T, attn.v)."""
    consts = _constant_ranks(model)
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and not any(i in consts for i in n.input)]


def nd_constant_matmuls(model) -> list[str]:  # type: ignore[no-untyped-def]
    """MatMul nodes with a constant operand of rank > 2 (e.g. an input-independent branch that
    simplification folded): not a weight - ORT's per-channel quantizer gives it a zero point
    QLinearMatMul then rejects at run time."""
    ranks = _constant_ranks(model)
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and any(ranks.get(i, 0) > 2 for i in n.input)]


def speed_warning(speed: float, check: Verdict) -> str:
    """What the job says when INT8's p50 came out slower than FP32's (``speed`` < 1): ``check`` is the noise
    module's verdict on FP32 against INT8 in paired rounds of its own; only FP32 faster beyond their spread is a
    verdict. The sentence gives the check's own ratio (INT8 over FP32 in its rounds), not the p50 ratio beside
    it: the two are different draws, and one sentence holding both read as a contradiction ("0.90x; FP32 faster
    by 60%", "0.98x ... FP32 ahead by -11%")."""
    ratio = 1.0 / (1.0 + check.gain)  # INT8's speed over FP32's in the check's rounds
    bound = f"FP32 ahead by {check.gain:+.0%} +- {check.spread:.0%} over {check.rounds} paired rounds, a 99.9 % bound"
    if check.verdict == FASTER:
        return (f"the INT8 model is not faster than FP32 on this machine: in a check of its own it ran at {ratio:.2f}x "
                f"of FP32 ({bound}); deploy the FP32 model here")
    return (f"INT8's p50 came out at {speed:.2f}x of FP32, but a check in paired rounds puts it at {ratio:.2f}x, "
            f"within this machine's timing noise ({bound}): INT8 may be no faster here; compare both with edgevis "
            "bench on an idle machine before choosing")


def quantize_int8_file(fp32_path: str | os.PathLike[str], config: Int8Config = Int8Config(),
                       log: Callable[[str], None] | None = None, *,
                       sources: tuple[ImageSource, ImageSource] | None = None) -> QuantizedFile:
    """Write ``NAME.int8.onnx`` beside ``NAME.fp32.onnx`` and report its fidelity and speed."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    log = log or (lambda s: None)
    target = get_target(config.target)
    src = Path(fp32_path)
    model = load_onnx(src)
    spec, prov = recorded_preprocess(src, model)
    warnings: list[str] = []
    calib, held = sources or calibration_sources(config.calib_dir, config.holdout_dir, warnings)
    random_init = prov.get("weights") == "random-init"
    if random_init:
        warnings.append("the model has random weights: its outputs are near-constant, so the fidelity figures "
                        "say nothing about INT8 accuracy on a trained model, and the accuracy search was skipped")
    batch = static_batch(model)
    input_name = model.graph.input[0].name
    out_path = precision_path(src, "int8")

    with tempfile.TemporaryDirectory(prefix="edgevis-int8-") as tmpd:
        prepped = Path(tmpd) / "prepped.onnx"
        from ..runtimes.ort import ort_errors

        with _quiet_ort(), ort_errors(src, "prepare for quantization"):
            fusion = None
            quant_src = src
            if config.fuse and target.name in ("ort-cpu", "openvino"):
                from ..graph.fusions import fuse_for_ort
                from .openvino import fuse_for_openvino  # only the fused ops OpenVINO reads and runs alike

                fused_model, fusion = (fuse_for_openvino if target.name == "openvino" else fuse_for_ort)(model)
                if fusion.changed:
                    quant_src = Path(tmpd) / "fused.onnx"
                    onnx.save(fused_model, str(quant_src))
                del fused_model
            # ORT's graph optimizer (on by default here) pushes attention's qkv Transpose through the Gathers that
            # split q, k and v: one 5-D Transpose and k's Transpose become three 4-D ones OpenVINO cannot fold into
            # the Gathers or attention's MatMul (deit_tiny: 37 -> 49 Transposes). OpenVINO optimizes the graph
            # itself, so its layout starts from the graph as exported (one interleaved run of 40 rounds: 1.013 ->
            # 0.916 of NNCF INT8's time; quant/openvino.py)
            quant_pre_process(str(quant_src), str(prepped), skip_symbolic_shape=True,
                              skip_optimization=target.name == "openvino" and not saturating_u8s8())
        del model  # read again from the files from here on: 44 MB on lsnet_t held to the end for nothing
        # a few calibration images, read before calibration: offset absorption changes what is calibrated
        probe_feeds = ([{input_name: b} for b in batched(calib.arrays(spec), batch, ABSORB_IMAGES)]
                       if config.absorb_offsets else [])
        float_model, prep_record = prepare_float(onnx.load(str(prepped)), config.equalize, config.absorb_offsets,
                                                 probe_feeds)
        del probe_feeds
        onnx.save_model(float_model, str(prepped))

        # calibration: a bounded slice of the stream is kept to check accuracy during placement
        stream = CalibrationStream(calib, spec, batch, config.calib_count, EVAL_IMAGES)
        cache = Path(tmpd) / "ranges.json"
        log(f"calibrating ({config.method}) on up to {config.calib_count} images from {calib.label}")
        from ..runtimes.ort import ort_errors

        try:
            with _quiet_ort(), ort_errors(src, "calibrate"):
                seen = calibrate_ranges(prepped, iter(stream), input_name, config.method, cache, tmpd)
        except EdgevisError as e:
            if str(e) != "no calibration data":  # a bad array, or ORT refusing the graph: say that
                raise
            raise stream.no_image_error() from None
        if skipped := stream.skipped_warning():
            warnings.append(skipped)
        used = min(seen * batch, len(calib) - len(calib.skipped), config.calib_count)

        reduce_range = config.reduce_range if config.reduce_range is not None else (
            target.name in ("ort-cpu", "openvino") and saturating_u8s8())  # OpenVINO's oneDNN: the same VPMADDUBSW
        # OpenVINO on a CPU whose u8 x s8 kernels do not saturate: every placement in OpenVINO's own layout
        # (quant/openvino.openvino_layout: zero points 0, no requantization after data movement). Attention's
        # q.k^T and attn.v stay in float there too: OpenVINO would run them in int8, but no faster in that layout,
        # and at a large cost in accuracy (quant/openvino.py, ATTENTION_FLOAT)
        ov_layout = target.name == "openvino" and not saturating_u8s8()
        attention = attention_matmuls(float_model) if config.keep_attention_float else []
        nd_const = nd_constant_matmuls(float_model)
        exclude = attention + nd_const
        base_path = Path(tmpd) / "base.onnx"
        log("inserting Q/DQ (onnxruntime.quantization)")
        with _quiet_ort(), quantizer_errors(src):
            quantize_static(
                str(prepped), str(base_path), None,
                quant_format=QuantFormat.QDQ,
                per_channel=target.per_channel,
                activation_type=QuantType.QUInt8 if target.activation_type == "uint8" else QuantType.QInt8,
                weight_type=QuantType.QInt8,
                reduce_range=reduce_range,
                op_types_to_quantize=list(target.op_types) if target.op_types else None,
                nodes_to_exclude=exclude,
                extra_options=target.quantizer_options(),
                calibrate_method=ort_method(config.method),  # must match the cached ranges
                calibration_cache_path=str(cache),
            )
        base = unquantize_outputs(onnx.load(str(base_path)))
        eval_x = np.concatenate(stream.kept)
        stream.kept.clear()  # eval_x holds them
        feeds = [{input_name: eval_x[i:i + batch]} for i in range(0, len(eval_x), batch)]  # the kept batches
        if config.optimize_rounding:
            log("rounding int8 weights against their FP32 inputs (GPTQ)")
            base, prep_record["rounded_layers"] = optimize_rounding(base, float_model, feeds)
        if config.bias_correction:
            log("correcting int8 biases for the mean shift of rounded weights")
            base, prep_record["bias_corrected_layers"] = correct_biases(base, float_model, feeds)
        del feeds
        # speed is judged against the exported file the user would deploy, with the same fusions as the INT8 one
        # ORT opens the FP32 file itself (43 MB not held through the search on lsnet_t); OpenVINO compiles bytes
        fp32_blob: Any = quant_src.read_bytes() if target.name == "openvino" else str(quant_src)
        from ..runtimes.latency import cpu_session

        if random_init:  # no accuracy search on random weights: FP32 reference outputs would go unread
            eval_ref = np.empty((0,), np.float32)
        else:
            fp32_sess = cpu_session(fp32_blob, config.threads)
            parts = [fp32_sess.run(None, {input_name: eval_x[i:i + batch]})[0] for i in range(0, len(eval_x), batch)]
            if any(np.ndim(p) != 2 for p in parts):  # what runs, not what the graph declares (they can differ)
                raise EdgevisError(f"{src} computes outputs of shape {np.shape(parts[0])} for a batch of "
                                   f"{min(batch, len(eval_x))}; a classifier's scores are (batch, classes)")
            eval_ref = np.concatenate(parts)
            del fp32_sess
        searcher = Searcher(base, float_model, fp32_blob, input_name, eval_x[:batch], eval_x, eval_ref,
                            threads=config.threads, log=log)
        ov_timing = None
        if target.name == "openvino":  # placement and speed timed on OpenVINO itself, not on ORT
            from .openvino import OvTiming

            ov_timing = OvTiming(config.threads, input_name, eval_x[:batch])
            searcher.round_timer, searcher.open_session = ov_timing, ov_timing.open
            if ov_layout:
                from .openvino import int8_nodes, openvino_layout

                searcher.layout, searcher.int8_nodes = openvino_layout, int8_nodes
        kept0 = {n: "accuracy (activation x activation MatMul in attention)" for n in attention}
        kept0.update({n: "MatMul with a constant N-D operand (not a per-channel weight)" for n in nd_const})
        if ov_layout:  # measured in quant/openvino.py (LAYERNORMS): as fast in float there, far more accurate
            kept0.update({n.name: "accuracy (LayerNorm of the residual stream, whose outlier channels per-tensor "
                                  "int8 clips)" for n in float_model.graph.node if n.op_type in LAYERNORMS})
        placement = searcher.placement(kept0)  # with the data movement only they read (qdq_graph.float_feeders)
        if target.timed_here and config.latency_search:
            log("timing which op groups are faster in float on this machine"
                + (" (OpenVINO)" if ov_timing else ""))
            placement = searcher.latency_search(placement)
            if ov_timing:  # the OpenVINO that timed it, and the precision the placement found runs in there
                searcher.latency_summary["timed_on"] = {**ov_timing.describe(),
                                                        "precision": ov_timing.precision(placement.blob)["label"]}

        acc_target = config.accuracy_target()
        accuracy: dict[str, Any] = {"target": acc_target.describe(), "checked_on": f"{len(eval_x)} calibration images"}
        sensitive: list[dict[str, Any]] = []
        if random_init:
            accuracy["searched"] = False
            feeds = [{input_name: eval_x[i:i + batch]} for i in range(0, min(len(eval_x), SENSITIVITY_IMAGES), batch)]
            sensitive = [r.to_dict() for r in rank_by_sqnr(placement.model, tensor_sqnr(
                placement.model, float_model, feeds, config.threads))[:5]]
        else:
            close = searcher.closeness(placement)
            ranked = []
            if not acc_target.met(close):
                log("measuring which int8 ops add the most output error")
                ranked = searcher.op_sensitivity(placement)
                sensitive = [r.to_dict() for r in ranked[:5]]
                log(f"keeping the most damaging ops in float until {acc_target.describe()}")
            placement, close, met = searcher.accuracy_search(placement, ranked, acc_target)
            accuracy.update({"searched": True, "met": met, "top1_agreement": close.top1_agreement,
                             "cosine_mean": close.cosine_mean})
            if not met:
                n_acc = sum(1 for r in placement.kept.values() if r.startswith("accuracy (one of"))
                warnings.append(f"INT8 could not reach {acc_target.describe()} on the calibration images even with "
                                f"{n_acc} more op(s) in float without losing the speedup (top-1 {close.top1_agreement:.3f}, cosine "
                                f"{close.cosine_mean:.4f}); try --calib-method percentile or more calibration images")

        check = None
        if target.timed_here:  # not TensorRT's file on ORT's CPU kernels: that says nothing of it (the CLI says so)
            log("timing INT8 against FP32")
            t = searcher.time({"fp32": fp32_blob, "int8": placement.blob}, rounds=7, iters=3)
            from ..runtimes.latency import speedup_record

            timed = speedup_record(t["fp32"], t["int8"])  # with its 95 % interval: one p50 ratio is one draw
            speed = timed["speedup"]
        if target.timed_here and speed < 1.0:
            # one p50 ratio below 1 on a busy machine can be noise (0.77x once at load 5, 1.3-1.6x in the runs
            # around it): paired rounds decide whether FP32 is faster beyond their spread before the job says
            # to deploy FP32 (noise.py)
            check = searcher.judge_against(placement.blob, fp32_blob)
            warnings.append(speed_warning(speed, check))

        if ov_layout:  # what OpenVINO's layout runs in float besides what the searches kept (kept_float is the graph)
            from .openvino import layout_floated_why

            placement.kept.update(layout_floated_why(searcher.base, placement.model, placement.kept))
        kept_groups: dict[str, dict[str, Any]] = {}
        for node, reason in placement.kept.items():
            kept_groups.setdefault(reason.split(" (")[0] + ": " + reason, {"reason": reason, "nodes": []})["nodes"].append(node)
        settings: dict[str, Any] = {
            "format": "QDQ", "target": target.name, "target_description": target.description,
            "activations": "int8 where a tensor's range is signed, else uint8 (zero point 0)" if ov_layout
            else target.activation_type, "activation_symmetric": target.activation_symmetric or ov_layout,
            "weights": "int8", "weight_range_bits": 7 if reduce_range else 8, "per_channel": target.per_channel,
            "calibration_method": config.method, "calibration_images": used, "calibration_source": calib.label,
            "equalize": config.equalize, "bias_correction": config.bias_correction,
            "optimize_rounding": config.optimize_rounding,
            "absorb_offsets": config.absorb_offsets, "float_rewrites": prep_record,
            "int8_ops": group_counts(n for n in searcher.int8_nodes(placement.model) if n.name not in placement.kept),
            "kept_float": [{"reason": v["reason"], "count": len(v["nodes"]), "nodes": v["nodes"]}
                           for v in kept_groups.values()],
            "accuracy": accuracy,
            "search": searcher.steps,
            # what the latency search decided, above which measured spread (noise.py): null when it did not run
            "latency_search": searcher.latency_summary or None,
            "fusions": fusion.to_dict() if fusion is not None and (fusion.changed or fusion.error) else None,
            "latency": {"device": "this machine (" + ("OpenVINO CPU" if ov_timing else "ONNX Runtime CPU") + ")",
                        **({"timed_on": ov_timing.describe(), "precision": {
                            k: ov_timing.precision(b)["label"] for k, b in (("fp32", fp32_blob),
                                                                            ("int8", placement.blob))}}
                           if ov_timing else {}),
                        "fp32": t["fp32"].to_dict(),
                        "fp32_baseline": "the exported FP32 file" + (" with the same fusions as the INT8 model"
                                                                     if quant_src != src else ""),
                        "int8": t["int8"].to_dict(), **timed,
                        **({"slower_check": {"fp32_gain": round(check.gain, 4), "spread": round(check.spread, 4),
                                             "rounds": check.rounds, "fp32_faster": check.verdict == FASTER}}
                           if check is not None else {})} if target.timed_here else None,
        }
        qmodel = placement.model
        # what the search held (the best placement's session, the float and base graphs, the kept images) goes
        # before the fidelity check runs its two sessions side by side: the job's memory peak is there (issue 18)
        del searcher, placement, base, float_model, eval_x, eval_ref, ov_timing, fp32_blob
        from ..core.heap import release_freed_memory

        release_freed_memory()
        qprov = dict(read_json_metadata(qmodel, META_PROVENANCE) or prov)
        qprov.update({"precision": "int8", "source_sha256": sha256_file(src), "quantization": settings})
        set_metadata(qmodel, {META_PROVENANCE: qprov})
        fid = write_checked(qmodel, out_path, src, held, spec, log, prov=qprov, extra={"most_sensitive": sensitive},
                            on_target=_on_openvino(src, held, spec, config.threads) if target.name == "openvino" else None)
    return QuantizedFile(out_path, fid, settings, warnings)


def _on_openvino(src: Path, held: ImageSource, spec: Any, threads: int | None) -> Callable[[Path], dict[str, Any]]:
    """The OpenVINO target's fidelity measured on OpenVINO too (ORT's figure does not carry over: see quant/openvino.py)."""
    from .openvino import openvino_fidelity

    return lambda q: openvino_fidelity(src, q, held, spec, threads)
