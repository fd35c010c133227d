"""Reports say what was measured: the command line, the weights (random ones in red), the input, each recipe."""

from reportdata import make_report

from edgevis.report.render import render_html, render_markdown


def with_provenance(weights):
    r = make_report(energy=False)
    r["invocation"] = "edgevis bench --model lsnet_t --precisions fp32,int8 --input-size 64 64"
    for e in r["entries"]:
        q = None if e["precision"] == "fp32" else {
            "format": "QDQ", "target": "ort-cpu", "activations": "uint8", "weights": "int8", "per_channel": True,
            "calibration_method": "minmax", "calibration_images": 64, "calibration_source": "digits/train",
            "kept_float": [{"count": 3, "reason": "latency (pooling slower in int8)"}]}
        e["provenance"] = {"weights": weights, "input_shape": [1, 3, 64, 64], "layout": "NCHW",
                           "precision": e["precision"], "exporter": "dynamo", "quantization": q}
    return r


def test_header_names_weights_input_command_and_recipe():
    r = with_provenance({"path": "lsnet_t_digits.pth", "sha256": "ab" * 32})
    md = render_markdown(r)
    assert "**Command line**: edgevis bench --model lsnet_t --precisions fp32,int8 --input-size 64 64" in md
    assert "**Weights**: lsnet_t_digits.pth (sha256 abababababababab…)" in md
    assert "**Input**: 1 x 3 x 64 x 64 (NCHW)" in md
    # each precision's recipe in the header, before the summary, and the byte unit said there once
    header = md.split("## Summary")[0]
    assert ("**Recipe (int8)**: INT8 QDQ for ort-cpu: uint8 activations, int8 weights per channel; minmax calibration "
            "on 64 images (digits/train); 3 op(s) kept in float") in header
    assert "**Recipe (fp32)**: fp32: exported (dynamo)" in header
    assert "**Units**: sizes in MiB (2^20 = 1,048,576 bytes)" in header
    assert " MB" not in md and "KiB" not in md
    html = render_html(r, plots=[])
    assert 'class="bad"' not in html and "lsnet_t_digits.pth" in html


def test_random_weights_are_said_in_red():
    html = render_html(with_provenance("random-init"), plots=[])
    assert '<span class="bad">random-init (random weights: accuracy and fidelity figures mean nothing)</span>' in html


def test_per_op_comparison_puts_int8_kernels_under_their_float_op_and_flags_slower_ones():
    from edgevis.report.details import op_comparison_block

    r = make_report(energy=False)
    int8 = next(e for e in r["entries"] if e["label"] == "int8")
    by_op = int8["profile"]["runs"][0]["per_layer"]["by_op"]
    by_op.append({"op": "Transpose", "nodes": 12, "ms": 1.0, "share": 0.1})  # fp32 spends 0.5 ms here: slower
    b = op_comparison_block(r)
    rows = {row[0]: row for row in b.rows}
    fp32_conv = next(o["ms"] for o in r["entries"][0]["profile"]["runs"][0]["per_layer"]["by_op"] if o["op"] == "Conv")
    int8_conv = next(o["ms"] for o in by_op if o["op"] == "QLinearConv")
    assert rows["Conv"][3] == f"{fp32_conv / int8_conv:.2f}×"
    assert rows["Q/DQ (added by quantization)"][3] == "only here"
    assert rows["Transpose"][3] == "0.50× slower" and any("Transpose in int8" in ln for ln in b.lines)
    assert "Per op type: fp32 against the others" in render_markdown(r)
    one = make_report(energy=False, labels=("fp32",))
    assert op_comparison_block(one) is None


def test_slowest_nodes_table_in_the_html():
    from edgevis.report.render import render_html

    r = make_report(energy=False)
    node = r["entries"][0]["profile"]["runs"][0]["per_layer"]["by_node"][0]
    html = render_html(r, plots=[])
    assert "<h3>Slowest nodes</h3>" in html and node["node"] in html


def test_a_per_layer_pass_slower_than_fp32_beside_a_faster_timed_p50_is_explained():
    from edgevis.report.details import op_comparison_block

    r = make_report(energy=False)
    fp32, int8 = r["entries"][0], next(e for e in r["entries"] if e["label"] == "int8")
    assert int8["profile"]["runs"][0]["latency_ms"]["p50"] < fp32["profile"]["runs"][0]["latency_ms"]["p50"]
    note = "int8's per-layer pass took longer than fp32's"
    assert not any(note in ln for ln in op_comparison_block(r).lines)  # the fixture's passes agree with p50
    int8["profile"]["runs"][0]["per_layer"]["by_op"].append({"op": "Reshape", "nodes": 40, "ms": 500.0, "share": 0.9})
    lines = op_comparison_block(r).lines
    assert any(note in ln and "timed p50 is 2.27× faster" in ln and "the timed runs are the speed figure" in ln
               for ln in lines), lines
