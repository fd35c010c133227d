"""Train a catalog model on the bundled digits: checkpoints whose outputs mean something.

Random-weight models give near-constant logits, so quantization fidelity measured
on them says little. ``train_digits`` downloads nothing: it trains a model from
scratch on scikit-learn's bundled 8x8 digits, upsampled, preprocessed
with exactly the transform the exporter records for the model, and saves
``{"model": state_dict}`` (training form, official names) so that
``edgevis export --model NAME --weights PATH --input-size S S`` loads it as is.

    python -m edgevis.catalog.training --model test_lsnet --epochs 6 --out digits.pth

Epochs that reach about 95 % test accuracy at 64x64 (defaults otherwise): test_lsnet 6,
test_swin 20, test_deit 30, lsnet_t 4. Results are bit-reproducible for one seed and
one thread count (the thread count changes the order of float reductions).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from ..core.files import atomic_output
from ..core.types import Preprocess
from ..data.digits import DIGIT_CLASSES, digits_images
from ..data.preprocess import preprocess
from .factory import create_model


@dataclass
class TrainResult:
    path: Path
    train_acc: float
    test_acc: float
    seconds: float
    # the trained module in eval mode (training form), the one whose state dict was saved
    model: torch.nn.Module = field(repr=False, compare=False)


def digits_tensors(split: str, spec: Preprocess) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, H, W) float32 inputs and (N,) int64 labels of ``split`` for a model's preprocessing.

    The images are upsampled to the model's input size first, so the preprocessing
    (resize to size / crop_pct, center crop, normalize) does what it does at deploy time.
    """
    pairs = digits_images(split, size=max(spec.input_size))
    x = np.stack([preprocess(img, spec) for img, _ in pairs])
    y = np.asarray([label for _, label in pairs], dtype=np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels per axis (edge pixels repeat:
    the digits' background is uniform, so this is a plain shift)."""
    if max_shift <= 0:
        return x
    _, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (x.shape[0], 2), generator=gen).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])


def _loss(out: torch.Tensor | tuple[torch.Tensor, ...], y: torch.Tensor) -> torch.Tensor:
    # distilled LSNet variants return (head, head_dist) in training mode; without a
    # teacher both heads learn the labels
    outs = out if isinstance(out, tuple) else (out,)
    return sum(F.cross_entropy(o, y, label_smoothing=0.1) for o in outs) / len(outs)  # type: ignore[return-value]


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i:i + batch_size]).argmax(-1) == y[i:i + batch_size]).sum())
    return correct / max(1, len(x))


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_digits(
    name: str,
    out_path: str | os.PathLike[str],
    *,
    epochs: int,
    input_size: int = 64,
    seed: int = 0,
    batch_size: int = 64,
    lr: float = 2e-3,
    weight_decay: float = 0.05,
    max_shift: int | None = None,
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
    progress_every_s: float = 10.0,
) -> TrainResult:
    """Train catalog model ``name`` (10 classes, ``input_size`` square) on the digits train
    split, save ``{"model": state_dict}`` atomically to ``out_path``, report accuracies.

    Deterministic for a given ``seed`` and ``threads``: the weights are initialised
    and the batches drawn from seeded generators, inside a forked RNG so that the
    caller's random state is left as it was. ``max_shift`` bounds the random
    translation (pixels, default ``input_size // 32``; 0 turns augmentation off).
    ``log`` gets a line at the start, after each epoch, and within an epoch every
    ``progress_every_s`` seconds (a large model on a small CPU takes minutes per epoch).
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1 (got {epochs})")
    t0 = time.perf_counter()
    with _threads(threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(name, num_classes=len(DIGIT_CLASSES), input_size=(input_size, input_size), seed=None)
        # the transform the exporter records for this model at this size (catalog metadata)
        spec: Preprocess = model.edgevis_info.preprocess  # type: ignore[attr-defined]
        x_train, y_train = digits_tensors("train", spec)
        x_test, y_test = digits_tensors("test", spec)
        gen = torch.Generator().manual_seed(seed)
        steps_per_epoch = math.ceil(len(x_train) / batch_size)
        total = epochs * steps_per_epoch
        warmup = min(steps_per_epoch, total // 5)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, warmup, total))
        if max_shift is None:
            max_shift = max(1, input_size // 32)  # ~ a third of a pixel of the 8x8 digit
        if log is not None:
            log(f"training {name} at {input_size}x{input_size} on {len(x_train)} digits images: "
                f"{epochs} epochs of {steps_per_epoch} steps")
        last = time.perf_counter()
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(len(x_train), generator=gen)
            running = 0.0
            for step, i in enumerate(range(0, len(order), batch_size), 1):
                idx = order[i:i + batch_size]
                loss = _loss(model(random_shift(x_train[idx], max_shift, gen)), y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                running += float(loss.detach()) * len(idx)
                # a large model on a small CPU takes minutes per epoch: say how far it got (timing only, the
                # training itself is the same whatever the clock says)
                if log is not None and step < steps_per_epoch and time.perf_counter() - last >= progress_every_s:
                    last = time.perf_counter()
                    log(f"epoch {epoch + 1}/{epochs}: step {step}/{steps_per_epoch}, loss "
                        f"{running / min(len(order), i + batch_size):.4f} ({last - t0:.1f} s)")
            if log is not None:
                last = time.perf_counter()
                log(f"epoch {epoch + 1}/{epochs}: loss {running / len(x_train):.4f} ({last - t0:.1f} s)")
        model.eval()
        train_acc = accuracy(model, x_train, y_train)
        test_acc = accuracy(model, x_test, y_test)
    path = Path(out_path)
    with atomic_output(path) as tmp:  # creates the folder; no half-written checkpoint on failure
        torch.save({"model": model.state_dict(), "meta": _meta(name, input_size, epochs, seed, test_acc)}, tmp)
    seconds = time.perf_counter() - t0
    return TrainResult(path, train_acc, test_acc, seconds, model)


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _meta(name: str, input_size: int, epochs: int, seed: int, test_acc: float) -> dict[str, object]:
    # plain values only: checkpoints are read with torch.load(weights_only=True)
    return {"model": name, "dataset": "sklearn digits (stratified 80/20, seed 0)", "num_classes": len(DIGIT_CLASSES),
            "input_size": [input_size, input_size], "epochs": epochs, "seed": seed, "test_acc": round(test_acc, 4)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgevis.catalog.training",
                                description="Train a catalog model on scikit-learn's bundled digits.")
    p.add_argument("--model", required=True)
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--input-size", type=int, nargs="+", default=[64], metavar="S",
                   help="square input side (one value, or two equal values as for edgevis export)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if len(args.input_size) > 2 or len(set(args.input_size)) != 1:
        p.error("--input-size takes one side, or two equal sides (training uses square inputs)")
    from ..core.errors import EdgevisError

    try:
        r = train_digits(args.model, args.out, epochs=args.epochs, input_size=args.input_size[0], seed=args.seed,
                         batch_size=args.batch_size, lr=args.lr, threads=args.threads,
                         log=lambda line: print(line, file=sys.stderr, flush=True))
    except EdgevisError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.model} {args.input_size[0]}x{args.input_size[0]}: train acc {r.train_acc:.4f}, "
          f"test acc {r.test_acc:.4f}, {r.seconds:.1f} s -> {r.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
