"""Accuracy on labelled images: top-1 and top-5 of model files against ground truth, with intervals.

Agreement with FP32 says what quantization changed; accuracy on labelled data is what
papers and reviewers quote. A validation folder holds one sub-folder per class. The
class index of a folder comes from a ``classes.txt`` in the folder (one class name per
line, line *i* is class *i*; the folders are named by those names, or by each line's
first word as in ImageNet's ``LOC_synset_mapping.txt``), else, where every folder is an
ImageNet synset (``n01440764``), from its ImageNet-1k index, else from the sorted folder
names; the result says which. Images are read and run one small
batch at a time, so memory stays flat whatever the folder's size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..core.compare import wilson_interval
from ..core.errors import EdgevisError, ImageError

BATCH = 16


@dataclass(frozen=True)
class LabelledFolder:
    root: Path
    classes: tuple[str, ...]  # class index -> folder name
    files: tuple[tuple[Path, int], ...]  # (image, class index)
    mapping: str  # how folder names became class indices (said in the output)


def labelled_folder(root: str | os.PathLike[str]) -> LabelledFolder:
    from ..data.imagenet import imagenet_synsets
    from ..data.images import iter_image_files

    r = Path(root)
    if not r.is_dir():
        raise EdgevisError(f"--val must be a folder of class folders (got {'a file' if r.exists() else 'nothing'}: {r})")
    folders = sorted(p for p in r.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise EdgevisError(f"{r} holds no class folders: --val takes one sub-folder of images per class")
    listed = r / "classes.txt"
    synsets = imagenet_synsets()
    if listed.is_file():
        names = [ln.strip() for ln in listed.read_text(errors="replace").splitlines() if ln.strip()]
        how = ""
        known = set(names)
        if any(f.name not in known for f in folders):
            # ImageNet's LOC_synset_mapping.txt style: "n01440764 tench, Tinca tinca", the folder is the first word
            first = [n.split()[0] for n in names]
            known_first = set(first)
            if all(f.name in known_first for f in folders):
                names, how = first, "first word of each line, "
        index = {n: i for i, n in enumerate(names)}
        unknown = [f.name for f in folders if f.name not in index]
        if unknown:
            raise EdgevisError(f"{listed} does not name the folder(s) {', '.join(unknown[:3])}")
        classes, mapping = tuple(names), f"classes.txt ({how}{len(names)} classes)"
    elif set(f.name for f in folders) <= set(synsets):
        # ImageNet's own layout (n01440764/ ...): the class is the synset's ImageNet-1k index, whichever
        # subset of the 1000 folders is present
        index = {n: i for i, n in enumerate(synsets)}
        classes = synsets
        mapping = (f"ImageNet synset folder names ({len(folders)} of {len(synsets)} classes: "
                   f"{folders[0].name} is index {index[folders[0].name]})")
    else:
        index = {f.name: i for i, f in enumerate(folders)}
        classes, mapping = tuple(f.name for f in folders), f"sorted folder names ({len(folders)} classes: index 0 is {folders[0].name!r})"
    files = tuple((p, index[f.name]) for f in folders for p in sorted(iter_image_files(f)))
    if not files:
        raise EdgevisError(f"no images in the class folders of {r} (jpg, jpeg, png, bmp, webp)")
    return LabelledFolder(r, classes, files, mapping)


@dataclass
class Accuracy:
    model: str
    images: int = 0
    top1_hits: int = 0
    top5_hits: int = 0
    agree_hits: int = 0  # top-1 equal to the reference model's (the first one given)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self, reference: str | None) -> dict[str, Any]:
        n = self.images
        d: dict[str, Any] = {"model": self.model, "images": n,
                             "top1": self.top1_hits / n if n else None, "top1_ci95": wilson_interval(self.top1_hits, n),
                             "top5": self.top5_hits / n if n else None, "top5_ci95": wilson_interval(self.top5_hits, n)}
        if reference is not None and reference != self.model:
            d["top1_agreement"] = {"reference": reference, "value": self.agree_hits / n if n else None,
                                   "ci95": wilson_interval(self.agree_hits, n)}
        return d


def evaluate_files(models: list[str | os.PathLike[str]], val: str | os.PathLike[str], *,
                   progress: Callable[[str, int, int | None], None] | None = None,
                   threads: int | None = None) -> dict[str, Any]:
    """Top-1/top-5 of each model file on the labelled folder ``val``; agreement with the first file."""
    from ..data.images import load_image
    from ..data.preprocess import preprocess
    from ..runtimes.ort import OrtRunner
    from ..runtimes.predict import recorded_preprocess

    if not models:
        raise EdgevisError("give at least one model file")
    folder = labelled_folder(val)
    specs = [recorded_preprocess(m)[0] for m in models]
    runners = [OrtRunner(m, threads=threads).open() for m in models]
    results = [Accuracy(str(m)) for m in models]
    skipped: list[str] = []
    mismatch: list[str] = []
    classes_seen: set[int] = set()
    try:
        done = 0
        for chunk in _chunks(folder.files, BATCH):
            imgs, labels = [], []
            for path, label in chunk:
                try:
                    imgs.append(load_image(path))
                    labels.append(label)
                except ImageError as e:
                    skipped.append(f"{path}: {e}")
            if imgs:
                y = np.asarray(labels)
                tops = []
                for spec, runner, acc in zip(specs, runners, results):
                    logits = runner.infer_batched(np.stack([preprocess(im, spec) for im in imgs]))
                    if logits.ndim != 2:
                        raise EdgevisError(f"{acc.model}: output of shape {logits.shape} is not (batch, classes)")
                    if logits.shape[1] < len(folder.classes):
                        raise EdgevisError(f"{acc.model} has {logits.shape[1]} classes but {folder.root} has "
                                           f"{len(folder.classes)} ({folder.mapping})")
                    if logits.shape[1] > len(folder.classes) and not done:
                        # e.g. an ImageNet model on 5 folders named "tabby", "espresso", ...: indices 0-4 are
                        # tench, goldfish, ... for it; say so rather than report a meaningless 0 %
                        how = (f"indexed by their sorted names (index 0 is {folder.classes[0]!r})"
                               if folder.mapping.startswith("sorted") else f"indexed by {folder.mapping}")
                        msg = (f"the model has {logits.shape[1]} classes but {folder.root} has {len(folder.classes)}, "
                               f"{how}; if that is not the model's class order, name the folders by ImageNet synset "
                               "(n01440764, ...) or list all the model's classes in a classes.txt")
                        if msg not in mismatch:  # said once, not once per file
                            mismatch.append(msg)
                    order = np.argsort(-logits, axis=1)[:, :5]
                    acc.images += len(y)
                    acc.top1_hits += int(np.sum(order[:, 0] == y))
                    acc.top5_hits += int(np.sum((order == y[:, None]).any(axis=1)))
                    tops.append(order[:, 0])
                for acc, t in zip(results, tops):
                    acc.agree_hits += int(np.sum(t == tops[0]))
                classes_seen.update(labels)
            done += len(chunk)
            if progress is not None:
                progress("evaluating", done, len(folder.files))
    finally:
        for r in runners:
            r.close()
    if not results[0].images:
        raise EdgevisError(f"no readable image in {folder.root}" + (f" (e.g. {skipped[0]})" if skipped else ""))
    warnings = mismatch + ([f"skipped {len(skipped)} unreadable image(s), e.g. {skipped[0]}"] if skipped else [])
    return {"schema": "edgevis.evaluate", "schema_version": 1, "val": str(folder.root), "class_index": folder.mapping,
            "classes": len(folder.classes), "classes_with_images": len(classes_seen),
            "interval": "95 % Wilson score interval",
            "models": [a.to_dict(str(models[0]) if len(models) > 1 else None) for a in results], "warnings": warnings}


def _chunks(items: tuple[Any, ...], n: int) -> Iterator[tuple[Any, ...]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]
