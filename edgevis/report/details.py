"""What the report says beyond the summary table, as plain blocks both pages render.

Markdown and HTML draw the same :class:`Block` lists, so the two pages state the same
facts in the same words; only the markup differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .schema import energy_of
from .table import DASH, fmt_ips, fmt_mb, fmt_ms, fmt_pct, sig


@dataclass
class Block:
    """A titled group: ``facts`` (label, value) pairs, then a table, then lines of text."""

    title: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def _opt(v: Any, fmt: Any = str) -> str:
    return DASH if v is None else fmt(v)


def _db(v: float) -> str:
    return "∞ dB (outputs identical)" if v == float("inf") else f"{v:.1f} dB"


def device_facts(report: dict[str, Any]) -> list[tuple[str, str]]:
    dev = report["device"]
    cpu = dev.get("cpu") or {}
    cores = [f"{cpu[k]} {k.split('_')[0]}" for k in ("physical_cores", "logical_cores") if cpu.get(k) is not None]
    facts = [("CPU", f"{cpu.get('model') or 'unknown'}" + (f" ({', '.join(cores)} cores)" if cores else ""))]
    gpus = dev.get("gpu") or []
    facts.append(("GPU", "; ".join(
        f"{g.get('name', 'unknown')} (driver {g.get('driver') or '?'}, {_opt(g.get('memory_total_mb'))} MiB)"
        for g in gpus) or "none"))
    if dev.get("board"):
        facts.append(("Board", str(dev["board"])))
    facts += [("OS", _opt(dev.get("os"))), ("Python", _opt(dev.get("python")))]
    versions = dev.get("versions") or {}
    if versions:
        facts.append(("Versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    return facts


RANDOM_WEIGHTS = "random-init (random weights: accuracy and fidelity figures mean nothing)"


def weights_text(w: Any) -> str:
    if w in (None, "random-init"):
        return RANDOM_WEIGHTS if w else DASH
    if isinstance(w, dict):
        where = w.get("path") or w.get("source") or "?"
        return f"{where} (sha256 {str(w.get('sha256', '?'))[:16]}…)"
    return str(w)


def report_facts(report: dict[str, Any]) -> list[tuple[str, str]]:
    facts = [("Command", f"edgevis {report['command']}")]
    if report.get("invocation"):
        facts.append(("Command line", str(report["invocation"])))
    facts.append(("Model", _opt(report.get("model"))))
    prov = next((e.get("provenance") for e in report["entries"] if e.get("provenance")), None)
    if prov:
        facts.append(("Weights", weights_text(prov.get("weights"))))
        shape = prov.get("input_shape")
        if shape:
            facts.append(("Input", f"{' x '.join(str(d) for d in shape)} ({prov.get('layout') or 'NCHW'})"))
    # each file's recipe up front (a reviewer reads the header, not each variant's section)
    facts += [(f"Recipe ({e['label']})", recipe_text(e["provenance"])) for e in report["entries"]
              if e.get("provenance")]
    facts += [("Baseline", _opt(report.get("baseline"), lambda b: f"{b} (ratios and fidelity are against it)")),
              ("Units", "sizes in MiB (2^20 = 1,048,576 bytes), times in ms per inference call"),
              ("Created", _opt(report.get("created")))]
    return facts


def recipe_text(prov: dict[str, Any]) -> str:
    """How a file was made, in one line (the quantization recipe its sidecar records)."""
    q = prov.get("quantization") or {}
    if not q:
        return f"{prov.get('precision') or 'fp32'}: exported ({prov.get('exporter') or 'exporter unknown'})"
    if prov.get("precision") == "integer-only":
        return (f"integer-only, {q.get('act_bits')}-bit activations into linear ops, calibrated on "
                f"{q.get('calibration_images')} images ({q.get('calibration_source')})")
    kept = sum(int(k.get("count", 0)) for k in q.get("kept_float") or [])
    return (f"INT8 {q.get('format', 'QDQ')} for {q.get('target')}: {q.get('activations')} activations, "
            f"{q.get('weights')} weights{' per channel' if q.get('per_channel') else ''}; {q.get('calibration_method')} "
            f"calibration on {q.get('calibration_images')} images ({q.get('calibration_source')}); "
            f"{kept} op(s) kept in float")


def _model_block(entry: dict[str, Any]) -> Block:
    prof = entry["profile"]
    model, st = prof.get("model") or {}, prof.get("settings") or {}
    nbytes = model.get("file_bytes")
    facts = [("File", _opt(entry.get("file") or model.get("path")))]
    if entry.get("provenance"):
        facts.append(("Recipe", recipe_text(entry["provenance"])))
    facts += [
             ("File size", DASH if nbytes is None else f"{fmt_mb(nbytes / 2**20)} ({nbytes:,} bytes)"),
             ("Runtime", f"{_opt(model.get('runtime'))} ({', '.join(model.get('providers') or []) or 'no provider'})"),
             ("Timing", f"{_opt(st.get('warmup'))} warm-up iterations, then "
                        + (f"{st['duration_s']} s" if st.get("duration_s") else f"{_opt(st.get('iters'))} iterations")
                        + (f", in each of {st['rounds']} rounds (alternating order, a fresh process each)"
                           if st.get("rounds", 1) > 1 else "")
                        + f"; threads {st.get('threads') or 'runtime default'}; "
                        + ("input/output copies included" if st.get("include_io") else "input/output copies excluded"))]
    return Block("Model and settings", facts=facts)


def _latency_block(runs: list[dict[str, Any]]) -> Block:
    headers = ["Batch", "Iterations", "min", "p50", "p90", "p95", "p99", "max", "Mean ± std", "CV", "Throughput"]
    rows = []
    for r in runs:
        lat = r["latency_ms"]
        rows.append([str(r["batch"]), _opt(r.get("iterations")), *(_opt(lat.get(k), fmt_ms) for k in
                                                                    ("min", "p50", "p90", "p95", "p99", "max")),
                     f"{sig(lat['mean'])} ± {sig(lat['std'], 2)} ms", _opt(lat.get("cv"), fmt_pct),
                     _opt(r.get("throughput_ips"), fmt_ips)])
    return Block("Latency per inference call", headers=headers, rows=rows,
                 lines=["Throughput counts images: batch × iterations / wall time."])


def _memory_block(runs: list[dict[str, Any]]) -> Block:
    # GPU memory only where a run measured it (a CPU host would show a column of dashes)
    gpu = any((r.get("memory") or {}).get("gpu_mb") is not None for r in runs)
    headers = ["Batch", "Peak RSS", "RSS before", "Added", *(["GPU memory"] if gpu else []), "Method"]
    rows = []
    for r in runs:
        m = r.get("memory") or {}
        rows.append([str(r["batch"]), _opt(m.get("peak_rss_mb"), fmt_mb), _opt(m.get("rss_before_mb"), fmt_mb),
                     _opt(m.get("added_mb"), fmt_mb), *([_opt(m.get("gpu_mb"), fmt_mb)] if gpu else []),
                     _opt(m.get("method"))])
    return Block("Memory", headers=headers, rows=rows)


def _energy_block(runs: list[dict[str, Any]]) -> Block:
    block = Block("Energy")
    for r in runs:
        energy, reason = energy_of(r)
        who = f"batch {r['batch']}"
        if energy is None:
            block.lines.append(f"{who}: not available — {reason}")
            continue
        block.lines.append(
            f"{who}: {sig(energy['j_per_inference'])} J per inference call net of idle "
            f"({_opt(energy.get('gross_j_per_inference'), sig)} J gross), "
            f"{_opt(energy.get('inferences_per_j'), sig)} inferences per J, average power "
            f"{_opt(energy.get('avg_power_w'), sig)} W (idle {_opt(energy.get('idle_w'), sig)} W); "
            f"{energy.get('meter', '?')} meter, sensor {energy.get('sensor', '?')}, "
            f"rails {', '.join(energy.get('rails') or []) or '?'}, window {_opt(energy.get('window_s'), sig)} s, "
            f"{_opt(energy.get('inferences'))} inferences, {_opt(energy.get('samples'))} power samples")
    return block


def _fidelity_block(report: dict[str, Any], entry: dict[str, Any]) -> Block:
    block = Block("Fidelity")
    fid = entry.get("fidelity")
    acc = entry.get("accuracy")
    if acc and acc.get("top1") is not None:  # --val: accuracy on labelled images, beside agreement
        lo, hi = acc["top1_ci95"]
        block.facts.append(("Top-1 accuracy", f"{fmt_pct(acc['top1'])} (95 % CI {fmt_pct(lo)}–{fmt_pct(hi)}), top-5 "
                            f"{_opt(acc.get('top5'), fmt_pct)}, on {acc.get('images')} labelled images "
                            f"({acc.get('val', '?')}; class index: {acc.get('class_index', '?')})"))
    if entry["label"] == report.get("baseline"):
        block.lines.append("reference: this is the baseline the other variants are compared with")
    elif not fid:
        block.lines.append("not measured")
    else:
        block.facts += [("Against", f"{fid.get('reference', '?')} on {_opt(fid.get('images'))} held-out images"
                                   + (f" ({fid['source']})" if fid.get("source") else "")),
                       ("Top-1 agreement", _opt(fid.get("top1_agreement"), fmt_pct)),
                       ("Top-5 overlap", _opt(fid.get("top5_overlap"), fmt_pct)),
                       ("Cosine of logits", f"mean {_opt(fid.get('cosine_mean'), lambda v: f'{v:.4f}')}, "
                                            f"min {_opt(fid.get('cosine_min'), lambda v: f'{v:.4f}')}"),
                       ("SQNR", _opt(fid.get("sqnr_db"), _db))]
    return block


def _per_layer_block(runs: list[dict[str, Any]]) -> Block:
    run = next((r for r in runs if r.get("per_layer")), None)
    if run is None:
        return Block("Time per op type", lines=["no per-layer profile was taken"])
    pl = run["per_layer"]
    ops = sorted(pl.get("by_op") or [], key=lambda o: -float(o["ms"]))
    rows = [[str(o["op"]), _opt(o.get("nodes")), fmt_ms(float(o["ms"])), _opt(o.get("share"), fmt_pct)]
            for o in ops[:10]]
    lines = [f"batch {run['batch']}: {pl.get('source', 'profiler')} over {_opt(pl.get('runs'))} runs, "
             f"{_opt(pl.get('total_ms'), fmt_ms)} of op time per run"
             + (f"; {len(ops) - 10} more op types not listed" if len(ops) > 10 else "")]
    return Block("Time per op type", headers=["Op type", "Nodes", "Time per run", "Share"], rows=rows, lines=lines)


def _slowest_nodes_block(runs: list[dict[str, Any]], top: int = 15) -> Block | None:
    run = next((r for r in runs if r.get("per_layer")), None)
    nodes = sorted((run or {}).get("per_layer", {}).get("by_node") or [], key=lambda n: -float(n["ms"]))
    if not nodes:
        return None
    rows = [[str(n["node"]), str(n.get("op", "?")), fmt_ms(float(n["ms"])), _opt(n.get("share"), fmt_pct),
             str(n.get("provider") or DASH)] for n in nodes[:top]]
    total = (run or {}).get("per_layer", {}).get("nodes_total")
    return Block("Slowest nodes", headers=["Node", "Op type", "Time per run", "Share", "Provider"], rows=rows,
                 lines=[f"the {min(top, len(nodes))} slowest of {_opt(total)} nodes, batch {run['batch']}"])  # type: ignore[index]


# quantized kernels and the float op they stand for, so FP32 and INT8 time compare op for op
_FLOAT_OF = {"QLinearConv": "Conv", "ConvInteger": "Conv", "QLinearMatMul": "MatMul", "MatMulInteger": "MatMul",
             "MatMulIntegerToFloat": "MatMul", "DynamicQuantizeMatMul": "MatMul", "QGemm": "Gemm",
             "QLinearAdd": "Add", "QLinearMul": "Mul", "QLinearSigmoid": "Sigmoid", "QLinearLeakyRelu": "LeakyRelu",
             "QLinearGlobalAveragePool": "GlobalAveragePool", "QLinearAveragePool": "AveragePool",
             "QLinearConcat": "Concat", "QLinearSoftmax": "Softmax", "FusedConv": "Conv", "FusedMatMul": "MatMul",
             "QuantizeLinear": "Q/DQ (added by quantization)", "DequantizeLinear": "Q/DQ (added by quantization)",
             "DynamicQuantizeLinear": "Q/DQ (added by quantization)"}


def _by_float_op(run: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for o in (run.get("per_layer") or {}).get("by_op") or []:
        k = _FLOAT_OF.get(str(o["op"]), str(o["op"]))
        out[k] = out.get(k, 0.0) + float(o["ms"])
    return out


def op_comparison_block(report: dict[str, Any]) -> Block | None:
    """Baseline vs each other precision, per op type, on one scale (ms per run of the per-layer pass):
    where INT8 gained and where it lost. None where fewer than two entries have a per-layer profile."""
    with_layers = [(e, next((r for r in e["profile"]["runs"] if r.get("per_layer")), None)) for e in report["entries"]]
    with_layers = [(e, r) for e, r in with_layers if r is not None]
    base = next(((e, r) for e, r in with_layers if e["label"] == report.get("baseline")), None)
    others = [(e, r) for e, r in with_layers if base is None or e is not base[0]]
    if base is None or not others:
        return None
    b_ops = _by_float_op(base[1])
    cols = [(e["label"], _by_float_op(r)) for e, r in others]
    keys = sorted(set(b_ops) | {k for _, ops in cols for k in ops}, key=lambda k: -max([b_ops.get(k, 0.0)] +
                                                                                     [ops.get(k, 0.0) for _, ops in cols]))
    headers = ["Op type", base[0]["label"]] + [h for label, _ in cols for h in (label, f"{label} vs {base[0]['label']}")]
    rows, slower = [], []
    for k in keys[:15]:
        row = [k, fmt_ms(b_ops[k]) if k in b_ops else DASH]
        for label, ops in cols:
            v = ops.get(k)
            row.append(fmt_ms(v) if v is not None else DASH)
            if v is not None and k in b_ops and v > 0:
                ratio = b_ops[k] / v
                row.append(f"{ratio:.2f}×" if ratio >= 0.1 else f"{sig(ratio, 2)}×")  # 0.0025×, not 0.00×
                row[-1] += " slower" if ratio < 1 else ""
                if ratio < 0.95:
                    slower.append(f"{k} in {label}")
            else:
                row.append("only here" if v is not None else DASH)
        rows.append(row)
    lines = [f"ms per run in the per-layer pass, quantized kernels under the float op they replace "
             f"(QLinearConv, ConvInteger under Conv; Q/DQ nodes on their own row); ratio = {base[0]['label']} / other"]
    if slower:
        lines.append("slower than " + base[0]["label"] + ": " + ", ".join(slower))
    b_total = sum(b_ops.values())
    for label, ops in cols:
        total = sum(ops.values())
        e_other = next(e for e, _ in others if e["label"] == label)
        timed = _p50_ratio(base[0], e_other)
        if total > b_total and timed is not None and timed > 1.0:
            lines.append(f"{label}'s per-layer pass took longer than {base[0]['label']}'s ({fmt_ms(total)} vs "
                         f"{fmt_ms(b_total)}) while its timed p50 is {timed:.2f}× faster: the profiler's per-node "
                         "overhead weighs more on a graph with more nodes; the timed runs are the speed figure")
    return Block(f"Per op type: {base[0]['label']} against the others", headers=headers, rows=rows, lines=lines)


def _p50_ratio(base: dict[str, Any], other: dict[str, Any]) -> float | None:
    try:
        return float(base["profile"]["runs"][0]["latency_ms"]["p50"]) / float(other["profile"]["runs"][0]["latency_ms"]["p50"])
    except (KeyError, IndexError, TypeError, ZeroDivisionError):
        return None


def entry_blocks(report: dict[str, Any], entry: dict[str, Any]) -> list[Block]:
    runs = entry["profile"]["runs"]
    warnings = [str(w) for w in entry["profile"].get("warnings", [])]
    for r in runs:
        for w in [*r.get("warnings", []), *(f"energy: {w}" for w in (r.get("energy") or {}).get("warnings", []))]:
            # a profile may repeat its runs' warnings ("batch 8: ..."); say each once
            if not any(str(w) in seen for seen in warnings):
                warnings.append(f"batch {r['batch']}: {w}")
    blocks = [_model_block(entry), _latency_block(runs), _memory_block(runs)]
    if any(energy_of(r)[0] is not None for e in report["entries"] for r in e["profile"]["runs"]):
        blocks.append(_energy_block(runs))  # else the note under the summary says, once, why there is none
    blocks += [_fidelity_block(report, entry), _per_layer_block(runs)]
    slowest = _slowest_nodes_block(runs)
    if slowest is not None:
        blocks.append(slowest)
    if warnings:
        blocks.append(Block("Warnings", lines=[str(w) for w in warnings]))
    return blocks
