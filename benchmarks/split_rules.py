"""Split rules on connected data: rows kept, fractions reached, leakage, representativeness, time.

Usage: python benchmarks/split_rules.py [--rows 300000] [--seed 42]   (needs `apt-get update` first)

Data, all real text (benchmarks/debian_pairs.py, Debian package short descriptions, score = tag overlap):
  symmetric  --rows pairs of all ~60k descriptions, each in ~10 pairs: one connected group
  queries    --rows pairs, 30,000 descriptions as queries with 10 candidates each from the other ~30k
  dense      8,000 pairs of 2,000 tagged descriptions (~8 a text): the size of a small fine-tuning set
  sparse     30,000 pairs of all descriptions (~1 a text): small groups, where today's rule must hold
and the three built-in sets at 600 rows, with today's rule checked byte for byte against the pipeline's.

Rules (validation 0.1, test 0.2; every rule drops the rows whose texts landed in two splits):
  today               group hash of the rule before this benchmark (main's pipeline/data/splitting.py)
  text hash f         each text to a split by seeded hash, split probabilities = the fractions
  text hash sqrt f    the same with probabilities proportional to sqrt(fraction), which makes the kept
                      rows (both texts in one split: probability p^2) land at the requested fractions
  anchor hash sqrt f  sentence1 texts hashed as above, each other text to the split most of its rows'
                      sentence1 texts landed in
  grow 1 ball         pipeline.data.splitting.partition_texts with one ball per split
  grow N-row balls    the same with balls of N rows (the pipeline's default: BALL_ROWS)
  pipeline            pipeline.data.splitting.grouped_split as the split stage runs it (union-find,
                      hashing small groups, partitioning large ones)
Printed per rule: rows kept, the kept rows' split fractions, the largest relative miss of a requested
fraction, texts in two splits (must be 0), the Kolmogorov-Smirnov distance of the test and validation
scores to the train scores (0 = same distribution; a test set from one corner of the data scores
differently), JS the Jensen-Shannon divergence (bits) of their word distributions to train's (a test set
from one corner of the data has its own vocabulary; hashing shows the sampling floor), and CPU seconds
of this process (the machine is shared; the rule alone, `pipeline` with normalising and union-find).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

FRACTIONS = {"train": 0.7, "validation": 0.1, "test": 0.2}


def today_module() -> Any:
    """pipeline/data/splitting.py where this branch left main: the rule before partitioning, from git."""
    base = subprocess.run(["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], capture_output=True, text=True,
                          check=True).stdout.strip()
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{base}:pipeline/data/splitting.py"],
                            capture_output=True, text=True, check=True).stdout
    path = Path(tempfile.mkdtemp()) / "splitting_main.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("splitting_main", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def text_graph(frame: Any, shape: str) -> tuple[list[list[int]], list[str]]:
    from pipeline.data.splitting import _norm_text

    linked = ("sentence1", "sentence2") if shape == "scored" else ("anchor", "positive")
    ids: dict[str, int] = {}
    edges = [[ids.setdefault(_norm_text(t), len(ids)) for t in texts] for texts in zip(*(frame[c].tolist() for c in linked))]
    return edges, list(ids)


def hashed(texts: list[str], seed: int, probabilities: dict[str, float]) -> list[int]:
    from pipeline.data.splitting import SPLITS, _bucket

    test, validation = probabilities["test"], probabilities["validation"]
    return [SPLITS.index("test" if u < test else "validation" if u < test + validation else "train")
            for u in (_bucket(seed, text) for text in texts)]


def sqrt_fractions() -> dict[str, float]:
    roots = {name: f ** 0.5 for name, f in FRACTIONS.items()}
    return {name: r / sum(roots.values()) for name, r in roots.items()}


def anchor_hashed(edges: list[list[int]], texts: list[str], seed: int) -> list[int]:
    anchors = {first for first, *_ in edges}
    by_hash = hashed(texts, seed, sqrt_fractions())
    part = [by_hash[t] if t in anchors else -1 for t in range(len(texts))]
    votes: dict[int, Counter] = defaultdict(Counter)
    for first, *rest in edges:
        for other in rest:
            if other not in anchors:
                votes[other][part[first]] += 1
    for text, counted in votes.items():
        part[text] = counted.most_common(1)[0][0]
    return part


def assess(name: str, edges: list[list[int]], texts: list[str], part: list[int], scores: list[float] | None,
           seconds: float) -> str:
    from scipy.stats import ks_2samp

    from pipeline.data.splitting import SPLITS

    kept: dict[int, list[float]] = defaultdict(list)
    where: dict[int, set[int]] = defaultdict(set)
    for index, row_texts in enumerate(edges):
        landed = {part[t] for t in row_texts}
        if len(landed) == 1:
            label = landed.pop()
            kept[label].append(scores[index] if scores else 0.0)
            for t in row_texts:
                where[t].add(label)
    total = sum(len(rows) for rows in kept.values())
    reached = {s: len(kept[SPLITS.index(s)]) / total if total else 0.0 for s in SPLITS}
    miss = max(abs(reached[s] - f) / f for s, f in FRACTIONS.items())
    leaked = sum(len(labels) > 1 for labels in where.values())
    words = [Counter() for _ in SPLITS]
    for t, labels in where.items():
        words[next(iter(labels))].update(re.findall(r"[^\W_]+", texts[t].casefold()))
    train = kept[0]
    ks = " | ".join(f"{ks_2samp(kept[SPLITS.index(s)], train).statistic:.3f}" if scores and kept[SPLITS.index(s)]
                    and train else "-" for s in ("test", "validation"))
    js = " | ".join(f"{js_divergence(words[SPLITS.index(s)], words[0]):.3f}" for s in ("test", "validation"))
    return (f"| {name} | {total / len(edges):.1%} | {reached['train']:.3f} / {reached['validation']:.3f} / "
            f"{reached['test']:.3f} | {miss:.1%} | {leaked} | {ks} | {js} | {seconds:.2f} |")


def js_divergence(a: Counter, b: Counter) -> float:
    """Jensen-Shannon divergence (bits, 0..1) of two word-frequency distributions: how far one split's
    vocabulary is from another's (a test set from one corner of the data has its own words)."""
    total_a, total_b = sum(a.values()) or 1, sum(b.values()) or 1
    divergence = 0.0
    for word in a.keys() | b.keys():
        p, q = a[word] / total_a, b[word] / total_b
        m = (p + q) / 2
        divergence += (p * math.log2(p / m) if p else 0.0) + (q * math.log2(q / m) if q else 0.0)
    return divergence / 2


def compare(label: str, frame: Any, shape: str, seed: int, today: Any, grow: bool = True) -> None:
    from pipeline.data.splitting import SPLITS, grouped_split, partition_texts

    scores = frame["score"].tolist() if "score" in frame else None
    edges, texts = text_graph(frame, shape)
    print(f"\n{label}: {len(frame):,} rows, {len(texts):,} texts")
    print("| rule | rows kept | train / validation / test | largest miss | texts in two splits "
          "| KS test | KS validation | JS test | JS validation | CPU s |\n|:--|--:|:-:|--:|--:|--:|--:|--:|--:|--:|")
    started = time.process_time()
    old = today.grouped_split(frame, shape, FRACTIONS["validation"], FRACTIONS["test"], seed)
    seconds = time.process_time() - started
    row_split = {}
    for name, part in old.items():
        for row in part.itertuples(index=False):
            row_split[tuple(row)] = SPLITS.index(name)
    # today's rule keeps every row; score it as the parts it made (texts keep the split of their group)
    part_of_text = [0] * len(texts)
    for texts_of_row, row in zip(edges, frame.itertuples(index=False)):
        for t in texts_of_row:
            part_of_text[t] = row_split[tuple(row)]
    print(assess("today", edges, texts, part_of_text, scores, seconds))
    candidates = {"text hash f": lambda: hashed(texts, seed, FRACTIONS),
                  "text hash sqrt f": lambda: hashed(texts, seed, sqrt_fractions()),
                  "anchor hash sqrt f": lambda: anchor_hashed(edges, texts, seed)}
    if grow:
        pairs = np.array(edges)
        candidates["grow 1 ball"] = lambda: partition_texts(pairs, len(texts), FRACTIONS, seed, ball_rows=10**12)
        for rows in (200, 50, 20, 5):
            candidates[f"grow {rows}-row balls"] = (lambda r: lambda: partition_texts(pairs, len(texts), FRACTIONS,
                                                                                       seed, ball_rows=r))(rows)
    for name, rule in candidates.items():
        started = time.process_time()
        part = rule()
        print(assess(name, edges, texts, part, scores, time.process_time() - started))
    started = time.process_time()
    new = grouped_split(frame, shape, FRACTIONS["validation"], FRACTIONS["test"], seed)
    seconds = time.process_time() - started
    sizes = {name: len(part) for name, part in new.frames.items()}
    kept = sum(sizes.values())
    print(f"pipeline: rule {new.rule}, largest group {new.largest_group:,} rows, kept {kept / len(frame):.1%} "
          f"({new.dropped_crossing:,} dropped), fractions " + " / ".join(f"{sizes[s] / kept:.3f}" for s in SPLITS)
          + f", {seconds:.2f} CPU s")
    if new.rule == "grouped":
        same = all(new.frames[s].equals(old[s]) for s in SPLITS)
        print(f"pipeline vs today: {'identical splits' if same else 'DIFFERENT SPLITS'}")


def debian_frame(rows: int, seed: int, texts: int = 0, queries: int = 0, tagged_only: bool = False) -> Any:
    import pandas as pd
    from debian_pairs import build_pairs, read_packages

    packages = read_packages()
    chosen = [text for text, (_, tagged) in packages.items() if tagged or not tagged_only]
    if texts:
        chosen = random.Random(seed).sample(chosen, min(texts, len(chosen)))
    pairs = build_pairs([packages[t][0] for t in chosen], rows, seed, queries)
    return pd.DataFrame([(chosen[a], chosen[b], s / 5) for a, b, s in pairs], columns=["sentence1", "sentence2", "score"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    from pipeline.core.params import DatasetParams
    from pipeline.data.cleaning import normalise
    from pipeline.data.readers import read_source

    today = today_module()
    compare("symmetric", debian_frame(args.rows, 0), "scored", args.seed, today)
    compare("queries", debian_frame(args.rows, 0, queries=30_000), "scored", args.seed, today)
    compare("dense", debian_frame(8_000, 0, texts=2_000, tagged_only=True), "scored", args.seed, today)
    compare("sparse", debian_frame(30_000, 0), "scored", args.seed, today, grow=False)
    for source, extra in (("docstring_pairs", {}), ("product_triplets", {}), ("similarity_pairs", {"score_range": (0, 5)})):
        config = DatasetParams(source=f"builtin:{source}", rows=600, **extra)
        frame, shape, _ = normalise(read_source(config.source, config, args.seed), config, config.source)
        compare(f"builtin:{source}", frame, shape, args.seed, today, grow=False)


if __name__ == "__main__":
    main()
