"""Real-text scored pairs: Debian package short descriptions, score = overlap of the packages' tags.

Usage: python benchmarks/debian_pairs.py OUT.csv [--rows 300000] [--texts 0] [--tagged-only] [--queries 0]
                                              [--seed 0]

Needs apt's package lists on this machine: run `apt-get update` first (it writes
/var/lib/apt/lists/*_Packages.lz4; `lz4` must be installed to read them).

Each distinct short description is one text; its tags are its debtags (`Tag:`) plus its archive section
(`section::libs`), so packages without debtags still have one. Pairs: every text picks a partner in
seeded rounds, every other pick a related one (a random text sharing one of its tags, drawn uniformly),
the others a random one, until --rows distinct pairs exist; each text ends up in about 2 * rows / texts pairs (~10 for all
~60k texts at 300k rows), so shared texts chain the rows together the way real data does (one query with
many candidates, a corpus reused across pairs). Score = 5 * Jaccard(tags), two decimals: 0-5, like STS.
--texts N samples N texts first (a denser graph on fewer texts); --tagged-only keeps packages with debtags;
--queries N makes N texts queries with only the other texts as their candidates (bipartite, like retrieval).
Packages without debtags carry their section alone, so their scores are coarse (0 or 5 between two of them).
Writes sentence1,sentence2,score and prints the text count, pairs per text and the score distribution.
"""

from __future__ import annotations

import argparse
import csv
import glob
import random
import subprocess
from collections import defaultdict
from pathlib import Path

LISTS = "/var/lib/apt/lists/*_Packages.lz4"


def read_packages(pattern: str = LISTS) -> dict[str, tuple[frozenset[str], bool]]:
    """Distinct short description -> (tags, has debtags): the first package with debtags wins, else the first
    (security and update lists often carry no `Tag:` for a package the main list tags)."""
    files = sorted(glob.glob(pattern))
    if not files:
        raise SystemExit(f"no apt package lists match {pattern}: run `apt-get update` first")
    texts: dict[str, tuple[frozenset[str], bool]] = {}
    for path in files:
        stanzas = subprocess.run(["lz4", "-dc", path], capture_output=True, text=True, check=True).stdout
        for stanza in stanzas.split("\n\n"):
            fields: dict[str, str] = {}
            key = ""
            for line in stanza.split("\n"):
                if line.startswith(" ") and key:  # a folded continuation line (long Tag: fields)
                    fields[key] += line
                elif ":" in line:
                    key, _, value = line.partition(":")
                    fields[key] = value.strip()
            description = fields.get("Description", "")
            debtags = {tag.strip() for tag in fields.get("Tag", "").split(",") if tag.strip()}
            if not description or (description in texts and (texts[description][1] or not debtags)):
                continue
            texts[description] = (frozenset(debtags | {f"section::{fields.get('Section', 'none')}"}), bool(debtags))
    return texts


def build_pairs(tags: list[frozenset[str]], rows: int, seed: int, queries: int = 0) -> list[tuple[int, int, float]]:
    """`rows` distinct unordered pairs of text indices with their score (5 * Jaccard of the tag sets). With
    `queries`, texts 0..queries-1 are queries (sentence1) and only the others their candidates (sentence2)."""
    rng = random.Random(seed)
    candidates = range(queries, len(tags)) if queries else range(len(tags))
    postings: dict[str, list[int]] = defaultdict(list)
    for index in candidates:
        for tag in sorted(tags[index]):
            postings[tag].append(index)
    own_tags = [sorted(tag for tag in text_tags if postings[tag]) for text_tags in tags]
    order = list(range(queries)) if queries else list(range(len(tags)))
    seen: set[tuple[int, int]] = set()
    pairs: list[tuple[int, int, float]] = []
    round_ = 0
    while len(pairs) < rows:
        before = len(pairs)
        rng.shuffle(order)
        for position, index in enumerate(order):
            if (round_ + position) % 2 == 0 and own_tags[index]:  # related: a text sharing one of its tags
                other = rng.choice(postings[rng.choice(own_tags[index])])
            else:
                other = rng.choice(candidates)
            key = (index, other) if queries else (min(index, other), max(index, other))
            if other == index or key in seen:
                continue
            seen.add(key)
            jaccard = len(tags[index] & tags[other]) / len(tags[index] | tags[other])
            pairs.append((index, other, round(5 * jaccard, 2)))
            if len(pairs) == rows:
                break
        round_ += 1
        if len(pairs) == before:
            break  # too few texts for that many distinct pairs
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--texts", type=int, default=0, help="sample this many texts first (0 = all)")
    parser.add_argument("--tagged-only", action="store_true", help="only packages with debtags")
    parser.add_argument("--queries", type=int, default=0,
                        help="this many texts are queries (sentence1), the rest their candidates (sentence2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    packages = read_packages()
    texts = [text for text, (_, tagged) in packages.items() if tagged or not args.tagged_only]
    if args.texts:
        texts = random.Random(args.seed).sample(texts, min(args.texts, len(texts)))
    pairs = build_pairs([packages[text][0] for text in texts], args.rows, args.seed, args.queries)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence1", "sentence2", "score"])
        writer.writerows((texts[a], texts[b], score) for a, b, score in pairs)
    scores = sorted(score for _, _, score in pairs)
    quantiles = ", ".join(f"p{q}={scores[min(len(scores) - 1, len(scores) * q // 100)]}" for q in (10, 25, 50, 75, 90))
    print(f"{args.out}: {len(pairs):,} pairs of {len(texts):,} texts ({2 * len(pairs) / len(texts):.1f} pairs per "
          f"text); score {quantiles}; {sum(s == 0 for s in scores) / len(scores):.0%} at 0")


if __name__ == "__main__":
    main()
