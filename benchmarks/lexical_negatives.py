"""Lexical negatives at scale: the rule over the whole split against the shipped blocks, time and hardness.

    python benchmarks/lexical_negatives.py [--sizes 50000 90000 180000 360000] [--whole-up-to 180000]

`adapt.negatives: lexical` gives each pair's positive the other row's positive sharing the most telling words
(pipeline/data/adaptation.py). Counting them over the whole split grows with the square of the rows; past
LEXICAL_BLOCK rows the shipped rule chooses within even blocks of rows grouped by their rarest shared words.
For N positives drawn (seeded, with repeats) from the ~60,000 Debian package descriptions
(benchmarks/debian_pairs.py), prints the seconds each takes and how hard its negatives are: the mean number of
words a negative shares with its positive (all words, telling or not). The whole-split rule runs only up to
--whole-up-to rows (its time grows ~4x per doubling). Nothing is asserted (a benchmark, run by hand).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.compare_bases import cpu_name  # noqa: E402
from benchmarks.debian_pairs import read_packages  # noqa: E402
from pipeline.data.adaptation import LEXICAL_BLOCK, _words, lexical_negatives  # noqa: E402


def shared_words(positives: list[str], negatives: list[str]) -> float:
    return sum(len(_words(a) & _words(b)) for a, b in zip(positives, negatives)) / len(positives)


def timed(positives: list[str], block: int) -> tuple[float, float]:
    start = time.perf_counter()
    negatives = lexical_negatives(positives, random.Random(1), block=block)
    return time.perf_counter() - start, shared_words(positives, negatives)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 90_000, 180_000, 360_000])
    parser.add_argument("--whole-up-to", type=int, default=180_000)
    args = parser.parse_args()
    texts = sorted(read_packages())
    print(f"{cpu_name()}; {len(texts):,} distinct descriptions; LEXICAL_BLOCK = {LEXICAL_BLOCK:,}")
    print("| rows | whole split: s | shared words | shipped (blocks): s | shared words |")
    print("|--:|--:|--:|--:|--:|")
    for size in args.sizes:
        draw = random.Random(0)
        positives = [draw.choice(texts) for _ in range(size)]
        whole = timed(positives, block=size) if size <= args.whole_up_to else None
        shipped = timed(positives, block=LEXICAL_BLOCK)
        whole_cells = f"{whole[0]:.1f} | {whole[1]:.3f}" if whole else "- | -"
        print(f"| {size:,} | {whole_cells} | {shipped[0]:.1f} | {shipped[1]:.3f} |", flush=True)


if __name__ == "__main__":
    main()
