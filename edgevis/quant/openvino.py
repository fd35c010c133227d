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
