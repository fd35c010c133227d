"""What the crash probe (edgevis.runtimes.isolate.check_loads) adds to opening a model, as ratios.

    python benchmarks/isolate.py [--model lsnet_t.fp32.onnx] [--rounds 5]

Without --model, lsnet_t (random weights) is exported to a temporary folder first. Measured in
alternating rounds in one process, medians:

* session: ``session_from_onnx`` in this process (what every command pays anyway);
* probe, edgevis-written: ``check_loads`` on the exported file (its sidecar names edgevis and its
  sha256: hashed, not probed) - the common path;
* probe, foreign, first: ``check_loads`` on a copy without sidecar in a process that has not probed
  before (starts the fork server: a Python start and an onnxruntime import, then the probe);
* probe, foreign, later: the same once the fork server runs (a fork, the session, one run).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    from edgevis.runtimes import isolate
    from edgevis.runtimes.ort import session_from_onnx

    with tempfile.TemporaryDirectory() as d:
        model = a.model
        if model is None:
            from edgevis.exporters.onnx import export_onnx

            model = export_onnx("lsnet_t", d).artifact.path
        import onnx

        foreign = Path(d) / "foreign.onnx"  # the same graph, other bytes (the verdict cache is by sha256)
        m = onnx.load(str(model))
        m.doc_string = "a copy edgevis did not write"
        onnx.save(m, str(foreign))
        times: dict[str, list[float]] = {"session": [], "edgevis-written": [], "foreign, first": [], "foreign, later": []}

        def clock(key: str, fn) -> None:  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t)

        for _ in range(a.rounds):
            isolate._SERVER.close()
            isolate._VERDICTS.clear()
            clock("session", lambda: session_from_onnx(model))
            clock("edgevis-written", lambda: isolate.check_loads(model))
            clock("foreign, first", lambda: isolate.check_loads(foreign))
            isolate._VERDICTS.clear()
            clock("foreign, later", lambda: isolate.check_loads(foreign))
        base = statistics.median(times["session"])
        print(f"{model.name}, {a.rounds} rounds (medians)")
        for k, v in times.items():
            m = statistics.median(v)
            print(f"  {k:<18} {m * 1e3:8.1f} ms  {m / base:5.2f}x the in-process session")


if __name__ == "__main__":
    main()
