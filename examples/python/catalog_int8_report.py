"""A catalog model to INT8, profiled side by side with FP32, with a report.

    python examples/python/catalog_int8_report.py --model lsnet_t [--weights lsnet_t.pth] [--out edgevis_out]

Without --weights the model has random weights: the speed figures are real, the
fidelity figures are not (edgevis says so).
"""

import argparse

import edgevis


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="lsnet_t")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--input-size", type=int, nargs=2, default=None)
    ap.add_argument("--calib", default=None, help="calibration images (default: the photos bundled with scikit-image)")
    ap.add_argument("--out", default="edgevis_out")
    ap.add_argument("--iters", type=int, default=200)
    a = ap.parse_args()

    run = edgevis.export(a.model, weights=a.weights, output_dir=a.out,
                         config=edgevis.ExportConfig(input_size=tuple(a.input_size) if a.input_size else None),
                         int8=edgevis.Int8Config(calib_dir=a.calib))
    f = run.int8.fidelity
    print(f"{a.model}: INT8 agrees with FP32 on {f['top1_agreement']:.1%} of {f['images']} held-out images "
          f"(logit cosine {f['cosine_mean']:.4f})")
    result = edgevis.bench(model=a.model, weights=a.weights, input_size=tuple(a.input_size) if a.input_size else None,
                           precisions=("fp32", "int8"), output_dir=a.out, calib_dir=a.calib, rounds=2,
                           profile=edgevis.ProfileConfig(iters=a.iters, warmup=5, energy="none"))
    print(f"INT8 p50 speedup over FP32: {result.speedup('int8'):.2f}x (files reused: "
          f"{[e['label'] for e in result.to_dict()['entries'] if e['reused']]})")
    files = edgevis.write_report(result.to_dict(), f"{a.out}/report")
    print("report:", files["html"])


if __name__ == "__main__":
    main()
