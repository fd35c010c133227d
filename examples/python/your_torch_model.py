"""Your own torch module, exported (verified on ONNX Runtime) and quantized to INT8.

    python examples/python/your_torch_model.py [--out edgevis_out]

The same works from the command line with a factory function:
    edgevis export --model examples/python/your_torch_model.py:make_model --input-size 64 64 --int8
"""

import argparse

import torch
from torch import nn

import edgevis


class TinyNet(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_model() -> nn.Module:
    """The factory `edgevis export --model this_file.py:make_model` calls."""
    torch.manual_seed(0)
    return TinyNet().eval()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="edgevis_out")
    a = ap.parse_args()
    run = edgevis.export(make_model(), name="tinynet", output_dir=a.out,
                         preprocess=edgevis.PreprocessOptions(input_size=(64, 64)),
                         int8=edgevis.Int8Config(latency_search=False))
    p = run.fp32.parity
    print(f"wrote {run.artifacts['fp32']} (torch vs ONNX Runtime max|diff| {p.max_abs_diff:.2g}) and {run.artifacts['int8']}")
    print("weights:", run.fp32.artifact.provenance["weights"])


if __name__ == "__main__":
    main()
