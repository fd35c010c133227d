"""ImageNet-1k class names (WordNet lemmas in the standard class-index order)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """1000 readable names; index i is class i of ImageNet-1k classifiers."""
    text = resources.files("edgevis.data").joinpath("imagenet_classes.txt").read_text()
    names = []
    for line in text.splitlines():
        _synset, lemma = line.split("\t", 1)
        names.append(lemma.split(",")[0].strip())
    return tuple(names)


@lru_cache(maxsize=1)
def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 WordNet ids (``n01440764`` ...); index i is class i, the order of ImageNet's train folders."""
    text = resources.files("edgevis.data").joinpath("imagenet_classes.txt").read_text()
    return tuple(line.split("\t", 1)[0].strip() for line in text.splitlines() if line.strip())
