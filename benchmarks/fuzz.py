"""The big fuzz campaign: thousands of mutated ONNX files through every edgevis command.

    python benchmarks/fuzz.py --mutants 5000 --seed 1 [--start 0] [--commands inspect,lint,...] [--workers 2] [--keep DIR]

Each mutant (structural and byte-level mutations of three tiny seed classifiers, see
tests/fuzz/fuzzlib.py) runs through inspect, lint, simplify, build --runtime ort, predict,
quantize --int8 and profile (``--commands`` picks; ``inspect-int`` is also known). The promise checked for every run: a clean success, or one ``error:`` line with a
non-zero exit - never a traceback, a signal, a hang past the timeout, a temporary file, or a file
left by a failed run. Prints a table of verdicts per command and every problem found (one JSON line
each); exits 1 when there is one. ``--workers`` splits the mutants over worker processes, ``--start``
over separate runs (or machines); SIGTERM ends a run early and still prints its figures. A run past
``--timeout`` is retried with 5x the time before it counts as a hang; one that then finishes is listed
as slow.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fuzz"))

import fuzzlib  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=0, help="first mutant index (split a campaign over machines)")
    ap.add_argument("--commands", default=",".join(fuzzlib.COMMANDS + ("profile",)))
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per command run")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--keep", type=Path, default=None, help="copy every failing mutant here")
    a = ap.parse_args()
    commands = tuple(c for c in a.commands.split(",") if c)
    # SIGTERM (or Ctrl-C) ends the campaign after the mutants in flight: the figures so far are still printed
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    def shard(k: int) -> fuzzlib.Report:
        # worker k takes mutants k, k + workers, ...: the same mutants whatever the number of workers
        with tempfile.TemporaryDirectory(prefix=f"edgevis-fuzz{k}-") as d:
            return fuzzlib.campaign(list(range(a.start, a.mutants)), seed=a.seed, commands=commands, timeout=a.timeout, workdir=Path(d),
                                    log=lambda s: print(s, flush=True), keep_failures=a.keep,
                                    only=lambda i: i % a.workers == k, stop=stopping.is_set)

    with ThreadPoolExecutor(a.workers) as pool:
        reports = list(pool.map(shard, range(a.workers)))
    total = fuzzlib.Report(Counter(), [], max(r.seconds for r in reports))
    for r in reports:
        total.runs.update(r.runs)
        total.findings.extend(r.findings)
        total.cmd_seconds.update(r.cmd_seconds)
        total.slow.extend(r.slow)
        total.done.extend(r.done)
    done = sorted(total.done)
    done_set = set(done)
    complete = next((i for i in range(a.start, a.mutants) if i not in done_set), a.mutants)
    print(f"\n{len(done)} mutants of {a.start}..{a.mutants - 1} (seed {a.seed}; all of {a.start}..{complete - 1}) "
          f"x {len(commands)} commands in {total.seconds:.0f} s" + (" (stopped early)" if stopping.is_set() else ""))
    print(total.table())
    per_cmd = Counter()
    for (c, _), n in total.runs.items():
        per_cmd[c] += n
    print("seconds per run: " + ", ".join(f"{c} {total.cmd_seconds[c] / max(1, per_cmd[c]):.3f}" for c in commands))
    print(f"slow (finished only on the {fuzzlib.SLOW_RETRY}x retry): {sorted(total.slow)}")
    print(f"problems: {len(total.findings)}")
    return 1 if total.findings else 0


if __name__ == "__main__":
    sys.exit(main())
