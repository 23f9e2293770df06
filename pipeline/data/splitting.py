"""Train / validation / test splits without leakage: no normalised text in two splits.

Rows sharing a normalised text are linked into groups (union-find). Small groups go whole to a split by a
seeded hash of the group, so nothing is dropped. On connected data (one query with many candidates, a
corpus reused across pairs) shared texts chain most rows into one group, which no split can take whole;
each group holding more than LARGE_GROUP_SHARE of the smallest requested split is then partitioned: its
texts are assigned to test and validation in many small balls grown greedily (next joins the free text with
the largest share of its rows leading into the part), the rest to train, and the rows whose texts landed in two
splits are dropped and counted. Chosen by measurement on 300,000 real-text pairs (benchmarks/split_rules.py,
benchmarks/README.md): 63.5% of the rows kept at the requested fractions, against 39% for hashing each
text; one big ball per split kept 67% but made each split one region of the data, hence the small balls.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pipeline.core import files, paths
from pipeline.data.cleaning import GIVEN_SPLIT, shape_of

SPLITS = ("train", "validation", "test")
# A group over a quarter of the smallest split (2.5% of the rows at validation 0.1) would move that split's
# size by a quarter wherever it landed; such groups are partitioned instead of hashed whole.
LARGE_GROUP_SHARE = 0.25
# Rows kept inside each ball of the partition: larger balls keep more rows (fewer cut), but fewer balls
# sample fewer regions of the data. 20 rows: 63.5% kept, test vocabulary as close to train's as hashing gives.
BALL_ROWS = 20
PASSES = 3  # rounds of the partition, each aiming its targets at the row count kept by the one before


@dataclass(frozen=True)
class Split:
    frames: dict[str, Any]  # train / validation / test -> rows
    rule: str  # "grouped", or "partitioned" when a large group of linked texts was cut (SplitReport.RULES)
    dropped_crossing: int  # rows dropped because their texts landed in two splits
    largest_group: int  # rows in the largest group of rows linked by shared texts (0: no grouping done)
    leaked_test_rows: int = 0  # given splits: test rows sharing a normalised text with the train file


def _norm_text(text: str) -> str:
    return " ".join(text.casefold().split())


def linked_columns(shape: str) -> tuple[str, str]:
    """The text columns whose shared texts link rows (a negative is another row's text, not the row's own)."""
    return ("sentence1", "sentence2") if shape == "scored" else ("anchor", "positive")


def _bucket(seed: int, key: str) -> float:
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def grouped_split(frame: Any, shape: str, validation: float, test: float, seed: int) -> Split:
    """Split so that no normalised text (anchor/positive, or sentence1/sentence2) is in two splits:
    rows sharing a text are joined into one group (union-find); each small group lands in a split by a
    seeded hash, so the assignment is deterministic and stable as rows are added; groups too large for
    that are partitioned by `partition_texts` and their crossing rows dropped."""
    import numpy as np

    linked = linked_columns(shape)
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
                parent[max(a, b)] = min(a, b)  # so a group's root is its smallest text, the key it is hashed by

    def split_of(group: str) -> int:
        u = _bucket(seed, group)
        return SPLITS.index("test" if u < test else "validation" if u < test + validation else "train")

    groups = [root(row_keys[0]) for row_keys in keys]
    sizes = Counter(groups)
    # test 0 carves validation alone (from given train rows): the smallest split asked for sets the limit
    limit = LARGE_GROUP_SHARE * min(share for share in (validation, test) if share > 0) * len(groups)
    large = {group for group, size in sizes.items() if size > limit}
    labels = np.array([-1 if group in large else split_of(group) for group in groups])  # -1: in no split (yet)
    if large:
        rows = [index for index, group in enumerate(groups) if group in large]
        ids: dict[str, int] = {}
        pairs = np.array([[ids.setdefault(text, len(ids)) for text in keys[index]] for index in rows])
        fractions = {"train": 1 - validation - test, "validation": validation, "test": test}
        parts = np.asarray(partition_texts(pairs, len(ids), fractions, seed))[pairs]
        labels[rows] = np.where(parts[:, 0] == parts[:, 1], parts[:, 0], -1)
    frames = {split: frame[labels == label].reset_index(drop=True) for label, split in enumerate(SPLITS)}
    return Split(frames, "partitioned" if large else "grouped", dropped_crossing=int((labels == -1).sum()),
                 largest_group=max(sizes.values(), default=0))


def given_split(frame: Any, shape: str, validation: float, seed: int) -> Split:
    """The dataset's own splits (column GIVEN_SPLIT), each kept as given, rows and order. Without validation
    rows, validation is carved from train by `grouped_split` at `validation` of the train rows, so no text
    is in both. Counts the test rows sharing a normalised text with the train file: the user's files may
    leak, and the split stage says so rather than move the user's rows."""
    given = {name: frame[frame[GIVEN_SPLIT] == name].drop(columns=GIVEN_SPLIT).reset_index(drop=True)
             for name in SPLITS}
    train_texts = {_norm_text(t) for column in linked_columns(shape) for t in given["train"][column].tolist()}
    tests = zip(*(given["test"][column].tolist() for column in linked_columns(shape)))
    leaked = sum(any(_norm_text(t) in train_texts for t in texts) for texts in tests)
    if len(given["validation"]):
        return Split(given, "given", dropped_crossing=0, largest_group=0, leaked_test_rows=leaked)
    carved = grouped_split(given["train"], shape, validation, 0.0, seed)
    frames = {"train": carved.frames["train"], "validation": carved.frames["validation"], "test": given["test"]}
    return Split(frames, "given_carved", carved.dropped_crossing, carved.largest_group, leaked_test_rows=leaked)


def partition_texts(pairs: Any, n_texts: int, fractions: dict[str, float], seed: int,
                    ball_rows: int = BALL_ROWS) -> list[int]:
    """Assign texts 0..n_texts-1 to splits (an index into SPLITS) so that the rows (`pairs`: a rows x 2 array
    of text ids) kept
    whole come close to `fractions`, cutting few rows. Test, then validation, grows in balls of about
    `ball_rows` rows, each from a seeded random free text, adding the free text with the largest share of
    its rows leading into the part (then the most such rows) until the part's target is met; the rest is
    train. Each pass aims at the rows kept by the previous one, as the cut rows are lost to all splits."""
    import numpy as np

    neighbours: list[list[int]] = [[] for _ in range(n_texts)]
    loops = [0] * n_texts  # rows pairing a text with itself: kept wherever it lands
    for a, b in pairs.tolist():
        if a == b:
            loops[a] += 1
        else:
            neighbours[a].append(b)
            neighbours[b].append(a)
    degree = [max(1, len(n)) for n in neighbours]
    first, second = pairs[:, 0], pairs[:, 1]
    order = list(range(n_texts))  # balls start from texts in this order
    random.Random(seed).shuffle(order)
    targets = {name: fractions[name] * len(pairs) for name in ("test", "validation")}
    for _ in range(PASSES):
        part = [0] * n_texts
        free = [True] * n_texts
        next_seed = 0
        for name, target in targets.items():
            label = SPLITS.index(name)
            links = [0] * n_texts  # rows from each free text into this part
            inside = 0
            balls = max(1, round(target / ball_rows))
            for ball in range(balls):
                heap: list[tuple[float, int, int]] = []
                while inside < target * (ball + 1) / balls:
                    if not heap:
                        while next_seed < n_texts and not free[order[next_seed]]:
                            next_seed += 1
                        if next_seed == n_texts:
                            break
                        start = order[next_seed]  # may already have rows into the part, from an earlier ball
                        heap.append((-links[start] / degree[start], -links[start], start))
                    _, gain, text = heapq.heappop(heap)
                    if not free[text] or -gain != links[text]:
                        continue  # already placed, or an outdated entry
                    free[text], part[text] = False, label
                    inside += links[text] + loops[text]
                    for other in neighbours[text]:
                        if free[other]:
                            links[other] += 1
                            heapq.heappush(heap, (-links[other] / degree[other], -links[other], other))
        labels = np.asarray(part)
        kept = np.bincount(labels[first][labels[first] == labels[second]], minlength=len(SPLITS))
        if not kept.sum():
            break
        for name in targets:
            reached = kept[SPLITS.index(name)] / kept.sum()
            targets[name] *= fractions[name] / reached if reached else 2.0
    return part


def read_corpus(name: str) -> list[str]:
    """The passages a set's test queries are searched among beyond its own (its BEIR corpus; else none)."""
    import pandas as pd

    return pd.read_parquet(files.require(paths.test_corpus(name), "split"))["text"].tolist()


def read_split(name: str, split: str) -> tuple[Any, str]:
    """A split as a DataFrame, and its shape."""
    import pandas as pd

    frame = pd.read_parquet(files.require(paths.split_file(name, split), "split"))
    return frame, shape_of(list(frame.columns))
