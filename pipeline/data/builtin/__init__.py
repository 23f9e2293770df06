"""The three built-in datasets, generated offline and deterministically from a seed, one module each.

- docstring_pairs (docstrings.py): (anchor, positive) = (a docstring summary, the code signature it documents),
  harvested with `ast` from the Python standard library's own source: real text, present on every machine.
- docstring_search (docstrings.py): the same harvest as a retrieval set (BEIR's terms): every harvested signature
  is its corpus, held-out summaries its test and dev queries (SEARCH_SETS: split generator, corpus).
- product_triplets (products.py): (anchor, positive, negative) = (shopper query, matching listing, hard-negative
  listing) from a small made-up catalog, in English ("en") or Chinese ("zh").
- similarity_pairs (similarity.py): (sentence1, sentence2, score in [0, 5]) STS-B-like pairs built from slot
  paraphrases.

Usage: rows = GENERATORS["product_triplets"](1000, seed=42, language="zh")
Standard library only and nothing computed at import, so importing it takes milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.data.builtin.docstrings import docstring_pairs, docstring_search, docstring_search_corpus
from pipeline.data.builtin.products import product_triplets
from pipeline.data.builtin.similarity import similarity_pairs

GENERATORS: dict[str, Callable[..., list[dict]]] = {
    "docstring_pairs": docstring_pairs,
    "product_triplets": product_triplets,
    "similarity_pairs": similarity_pairs,
    "docstring_search": docstring_search,  # takes split= (train, validation, test): pipeline.data.beir.expand_sources
}
# the built-in retrieval sets: name -> the passages their queries search, (corpus size or None: all, seed,
# the splits read) -> texts
SEARCH_SETS: dict[str, Callable[[int | None, int, tuple[str, ...]], list[str]]] = {"docstring_search": docstring_search_corpus}
