"""INT8 for OpenVINO: the fidelity of a Q/DQ file measured where it runs.

Why edgevis's own Q/DQ and not NNCF, and why this format (``--target openvino`` in
``targets.py``), measured with ``benchmarks/int8_cpu.py`` on this machine (AMD EPYC, AVX2,
no VNNI/BF16; OpenVINO 2026.4, NNCF 3.4; 42 held-out photos, EfficientNet-Lite0 with its
ImageNet weights, FP32 on ONNX Runtime as the reference):

* edgevis's asymmetric-u8 Q/DQ file (the ``ort-cpu`` format) on OpenVINO: top-1 agreement
  85.7 %, mean cosine 0.984 (on ORT the same file: 83.3 %, 0.984);
* ``nncf.quantize`` with its defaults on the same FP32 model and calibration images: 78.6 %, 0.927;
* the symmetric-s8 (``tensorrt``) format on OpenVINO: 59.5 %, 0.843 - although ORT runs the
  very same file at 92.9 %, 0.990. OpenVINO runs it differently from the Q/DQ arithmetic
  (on CPUs without VNNI its u8 x s8 kernels shift s8 activations to u8 and saturate 16-bit
  pair sums); a fidelity figure taken on ORT says nothing about OpenVINO's.

Speed on OpenVINO, same interleaved rounds, 2 threads (a machine at load 25-29, so ratios only):
asymmetric file 80 ms, NNCF 88 ms, symmetric 88 ms. So the OpenVINO target writes the asymmetric
format - one file that runs on ORT and OpenVINO alike - and its fidelity report carries a second
measurement taken on OpenVINO itself (:func:`openvino_fidelity`). On x86 without VNNI its weights
are 7-bit, as for ort-cpu (``saturating_u8s8`` in int8.py; NNCF's "overflow fix" is the same remedy):
the target as shipped then gives, on OpenVINO, 85.7 % / cosine 0.988 / SQNR 16.2 dB, the same as
ORT on that file (0.988, 16.2 dB) - OpenVINO and ORT agree - and in one interleaved run 128 ms
against NNCF's 148 ms and OpenVINO FP32 (f32) 204 ms.

Placement for OpenVINO is timed on OpenVINO (:class:`OvTiming`, the placement search's clock and
the INT8-vs-FP32 timing), after the ort-cpu fusions OpenVINO reads (:func:`fuse_for_openvino`).
Quantizing every op ORT can, untimed, was slower on OpenVINO than the ort-cpu file (timed on ORT):
deit_small 2.30x ORT FP32 against 4.76x, deit_tiny 1.64x against 3.42x. Q/DQ pairs left on
LayerNorm/Softmax/elementwise ops keep OpenVINO from fusing attention (q.k^T, Softmax, .v) into one
float subgraph: its 24 attention MatMuls ran as separate bf16 MatMul layers. Timed on OpenVINO,
the search takes normalization and the fused contrib ops back to float, as ORT's did.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import numpy as np

from ..core.errors import EdgevisError
from ..core.types import Preprocess
from .calibration import ImageSource


def openvino_fidelity(fp32_path: str | os.PathLike[str], q_path: str | os.PathLike[str], held: ImageSource,
                      spec: Preprocess, threads: int | None = None) -> dict[str, Any]:
    """``q_path`` compiled by OpenVINO (its default precision hint, as deployed) against ``fp32_path`` on
    ONNX Runtime, on the held-out images; with the precision OpenVINO ran, read back."""
    from ..core.compare import compare_outputs
    from ..runtimes.openvino import OvConfig, OvRunner, import_openvino
    from ..runtimes.ort import OrtRunner
    from .fidelity import sqnr_db, top5_overlap

    ov = import_openvino()
    refs, outs = [], []
    arrays = held.arrays(spec)
    with OrtRunner(fp32_path) as r32, OvRunner(q_path, OvConfig(threads=threads)) as rq:
        batch = rq.input_shapes()[rq.input_names[0]][0]
        while chunk := list(itertools.islice(arrays, 16)):
            x = np.stack(chunk)
            refs.append(r32.infer_batched(x))
            # a fixed batch (as exported) runs one image at a time
            outs.append(np.concatenate([rq.infer(x[i:i + 1]) for i in range(len(x))]) if batch == 1 else rq.infer(x))
        precision = rq.precision
    if not refs:
        raise EdgevisError(f"no readable held-out image in {held.label}")
    ref, out = np.concatenate(refs), np.concatenate(outs)
    c = compare_outputs(ref, out)
    return {"runtime": "openvino", "openvino": ov.get_version(), "precision": precision["label"],
            "images": int(len(ref)), "top1_agreement": c.top1_agreement, "top5_overlap": top5_overlap(ref, out),
            "cosine_mean": c.cosine_mean, "cosine_min": c.cosine_min, "sqnr_db": sqnr_db(ref, out)}


def fuse_for_openvino(model: Any) -> tuple[Any, Any]:
    """``graph.fusions.fuse_for_ort``'s fusions (com.microsoft ``Gelu``, ``BiasGelu``,
    ``SkipLayerNormalization``) where OpenVINO's ONNX frontend reads every fused op and the fused graph
    computes, on OpenVINO at f32, what the unfused one does (one random input); else the graph unfused and
    the report says why. ORT's quantizer places Q/DQ around the fused ops as it does for ort-cpu, so the
    OpenVINO target starts from the same graph as the ort-cpu one."""
    from ..graph.fusions import FusionReport, fuse_for_ort

    fused, report = fuse_for_ort(model)
    if not report.changed:
        return fused, report
    why = _ov_runs_alike(model, fused)
    if why is None:
        return fused, report
    n = len(model.graph.node)
    return model, FusionReport({}, n, n, error=why)


def _ov_runs_alike(model: Any, fused: Any) -> str | None:
    from ..graph.fusions import outputs_agree, random_feed
    from ..runtimes.openvino import OpenVinoError, OvConfig, OvSession

    feed = random_feed(model)
    f32 = OvConfig(precision="f32")
    try:
        want = OvSession(model.SerializeToString(), f32, "the unfused graph").run(None, feed)
        got = OvSession(fused.SerializeToString(), f32, "the fused graph").run(None, feed)
    except OpenVinoError as e:
        return f"OpenVINO does not run the fused graph ({e})"
    if outputs_agree(want, got):
        return None
    return "on OpenVINO the fused graph computes other outputs than the unfused one"


class OvTiming:
    """The OpenVINO target's clock for the placement search (``noise.RoundTimer``) and for the INT8-vs-FP32
    timing: every model compiled by OpenVINO for this CPU with the precision hint ``edgevis build --runtime
    openvino`` uses by default (``auto``: bf16 where the CPU has it), the precision each compiled model ran
    in read back from it (``precision_of``) and kept by the model's sha1 (:meth:`precision`)."""

    def __init__(self, threads: int | None, input_name: str, x: np.ndarray, precision: str = "auto") -> None:
        from ..runtimes.openvino import OvConfig
        from .noise import session_round_timer

        self.config = OvConfig(precision=precision, threads=threads)
        self._ran: dict[str, dict[str, Any]] = {}
        # best of 3 runs per round (ORT: 2): OpenVINO's threads do not spin, so a preempted run costs it more
        self._timer = session_round_timer(self.open, input_name, x, iters=3)

    def open(self, blob: bytes) -> Any:
        import hashlib

        from ..runtimes.openvino import OvSession

        s = OvSession(blob, self.config, "a placement candidate")
        self._ran[hashlib.sha1(blob).hexdigest()] = s.precision
        return s

    def __call__(self, models: Any) -> Any:
        return self._timer(models)

    def precision(self, blob: bytes) -> dict[str, Any]:
        """What OpenVINO ran ``blob`` in when it was timed (compiled now if it was not)."""
        import hashlib

        key = hashlib.sha1(blob).hexdigest()
        if key not in self._ran:
            self.open(blob)
        return self._ran[key]

    def describe(self) -> dict[str, Any]:
        """Where the timings were taken, for the record."""
        from ..runtimes.openvino import import_openvino

        hints = sorted({p["hint"] for p in self._ran.values()})
        return {"runtime": "openvino", "openvino": import_openvino().get_version(), "device": "CPU",
                "precision_hint": self.config.precision, "threads": self.config.threads,
                "compiled_float_precision": hints, "models_compiled": len(self._ran)}
