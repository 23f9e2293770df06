"""Train / validation / test splits without leakage: no normalised text in two splits."""

from __future__ import annotations

import hashlib
from typing import Any

from pipeline.core import files, paths
from pipeline.data.cleaning import shape_of


def _norm_text(text: str) -> str:
    return " ".join(text.casefold().split())


def grouped_split(frame: Any, shape: str, validation: float, test: float, seed: int) -> dict[str, Any]:
    """Split so that no normalised text (anchor/positive, or sentence1/sentence2) is in two splits:
    rows sharing a text are joined into one group (union-find) and each group lands in a split by a
    seeded hash, so the assignment is deterministic and stable as rows are added."""
    linked = ("sentence1", "sentence2") if shape == "scored" else ("anchor", "positive")
    parent: dict[str, str] = {}

    def root(text: str) -> str:
        while parent.setdefault(text, text) != text:
            parent[text] = parent[parent[text]]
            text = parent[text]
        return text

    keys = [[_norm_text(t) for t in texts] for texts in zip(*(frame[c].tolist() for c in linked))]
    for first, *rest in keys:
        for other in rest:
            a, b = root(first), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)

    def bucket(group: str) -> float:
        digest = hashlib.blake2b(f"{seed}\x00{group}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    assignment = []
    for row_keys in keys:
        u = bucket(root(row_keys[0]))
        assignment.append("test" if u < test else "validation" if u < test + validation else "train")
    frame = frame.assign(_split=assignment)
    splits = {name: frame[frame["_split"] == name].drop(columns="_split").reset_index(drop=True)
              for name in ("train", "validation", "test")}
    return splits


def read_split(name: str, split: str) -> tuple[Any, str]:
    """A split as a DataFrame, and its shape."""
    import pandas as pd

    frame = pd.read_parquet(files.require(paths.split_file(name, split), "split"))
    return frame, shape_of(list(frame.columns))
