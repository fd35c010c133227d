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
    assert ("INT8 QDQ for ort-cpu: uint8 activations, int8 weights per channel; minmax calibration on 64 images "
            "(digits/train); 3 op(s) kept in float") in md
    html = render_html(r, plots=[])
    assert 'class="bad"' not in html and "lsnet_t_digits.pth" in html


def test_random_weights_are_said_in_red():
    html = render_html(with_provenance("random-init"), plots=[])
    assert '<span class="bad">random-init (random weights: accuracy and fidelity figures mean nothing)</span>' in html
