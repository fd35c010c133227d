"""Is ``edgevis profile`` telling the truth? Its latency against an independent timer, in the same run.

    python benchmarks/profile_timer.py [--onnx FILE | --model lsnet_t] [--rounds 6] [--iters 100]
                                       [--threads 2] [--work DIR] [--json-out FILE]

The independent timer is a plain ``timeit`` loop around ``session.run`` on an
``onnxruntime.InferenceSession`` this script makes itself (same file, same thread
count, its own random input): none of edgevis's code is on that path. The two are
measured in alternating rounds (edgevis, timeit, timeit, edgevis, ...) so drift of
the machine falls on both alike; each round of edgevis is a whole ``profile_file``
call (warm-up, timed loop, the result it prints). The claim checked: edgevis's mean
and median agree with the independent ones within 5 %.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import timeit
from pathlib import Path

TOLERANCE = 0.05


def independent(path: Path, threads: int | None, iters: int, warmup: int) -> list[float]:
    """Per-run milliseconds from timeit around session.run (no edgevis code involved)."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [1 if not isinstance(d, int) else d for d in inp.shape]
    feed = {inp.name: np.random.default_rng(1).standard_normal(shape).astype(np.float32)}
    timer = timeit.Timer(lambda: sess.run(None, feed))
    timer.repeat(repeat=warmup, number=1)
    return [t * 1e3 for t in timer.repeat(repeat=iters, number=1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onnx", type=Path, help="an ONNX file (default: export --model)")
    ap.add_argument("--model", default="lsnet_t")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--json-out", type=Path)
    a = ap.parse_args()

    from edgevis.profile.profiler import ProfileConfig, profile_file

    path = a.onnx
    if path is None:
        from edgevis.pipeline import export_fp32

        work = a.work or Path(tempfile.mkdtemp(prefix="edgevis-timer-"))
        path = work / f"{a.model}.fp32.onnx"
        if not path.is_file():
            path = export_fp32(a.model, work).artifact.path
    config = ProfileConfig(warmup=a.warmup, iters=a.iters, threads=a.threads, energy="none")
    ev: list[float] = []
    ind: list[float] = []
    rows = []
    for r in range(a.rounds):
        order = ("edgevis", "timeit") if r % 2 == 0 else ("timeit", "edgevis")
        got = {}
        for who in order:
            if who == "edgevis":
                got[who] = profile_file(path, config)["runs"][0]["samples_ms"]
            else:
                got[who] = independent(path, a.threads, a.iters, a.warmup)
        ev += got["edgevis"]
        ind += got["timeit"]
        rows.append({"round": r, "edgevis_mean_ms": statistics.fmean(got["edgevis"]),
                     "timeit_mean_ms": statistics.fmean(got["timeit"]),
                     "edgevis_p50_ms": statistics.median(got["edgevis"]),
                     "timeit_p50_ms": statistics.median(got["timeit"])})
        print(f"round {r}: edgevis mean {rows[-1]['edgevis_mean_ms']:.3f} ms, p50 {rows[-1]['edgevis_p50_ms']:.3f}"
              f" | timeit mean {rows[-1]['timeit_mean_ms']:.3f} ms, p50 {rows[-1]['timeit_p50_ms']:.3f}")
    result = {
        "file": str(path), "rounds": a.rounds, "iters": a.iters, "threads": a.threads,
        "edgevis": {"mean_ms": statistics.fmean(ev), "p50_ms": statistics.median(ev), "n": len(ev)},
        "timeit": {"mean_ms": statistics.fmean(ind), "p50_ms": statistics.median(ind), "n": len(ind)},
        "per_round": rows,
    }
    result["mean_ratio"] = result["edgevis"]["mean_ms"] / result["timeit"]["mean_ms"]
    result["p50_ratio"] = result["edgevis"]["p50_ms"] / result["timeit"]["p50_ms"]
    result["within_5_percent"] = all(abs(result[k] - 1) <= TOLERANCE for k in ("mean_ratio", "p50_ratio"))
    print(f"edgevis / timeit: mean {result['mean_ratio']:.4f}, p50 {result['p50_ratio']:.4f} "
          f"-> {'agree' if result['within_5_percent'] else 'DISAGREE'} within {TOLERANCE:.0%}")
    if a.json_out:
        a.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["within_5_percent"] else 1


if __name__ == "__main__":
    sys.exit(main())
