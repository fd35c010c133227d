"""ImageNet-1k class names (WordNet lemmas in the standard class-index order)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def _rows() -> tuple[tuple[str, str], ...]:
    """(synset, lemmas) per line of the bundled class list; line i is class i of ImageNet-1k."""
    text = resources.files("edgevis.data").joinpath("imagenet_classes.txt").read_text()
    return tuple((synset.strip(), lemma) for synset, lemma in (ln.split("\t", 1) for ln in text.splitlines()
                                                                if ln.strip()))


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """1000 readable names; index i is class i of ImageNet-1k classifiers."""
    return tuple(lemma.split(",")[0].strip() for _synset, lemma in _rows())


@lru_cache(maxsize=1)
def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 WordNet ids (``n01440764`` ...); index i is class i, the order of ImageNet's train folders."""
    return tuple(synset for synset, _lemma in _rows())
