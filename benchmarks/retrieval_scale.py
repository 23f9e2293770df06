"""Retrieval scoring at scale: a pair split's queries each searching all its passages, before and after the bound.

    python benchmarks/retrieval_scale.py [--sizes 2000 8000 16000 54000] [--before-up-to 16000]

A pair split of N real texts (Debian package short descriptions, benchmarks/debian_pairs.py: each anchor with a
partner sharing a tag) is scored by the evaluators the baseline and evaluate stages use for retrieval (float32,
int8 and binary; pipeline/evaluation/evaluators.py), each size in a fresh process, with a 384-dimension model
(MiniLM's width, two small layers of random weights: embedding is cheap, the scoring is MiniLM's). "after" is as
shipped: score matrices in corpus blocks of at most SCORE_BYTES, and at most `evaluation.max_queries` queries (a
seeded sample, every passage still searched). "before" is the library's defaults as the pipeline used them until
2026-12-05: every query at once against blocks of 50,000 passages; run only up to --before-up-to, since it needs
~24 bytes per query x passage (54,000 rows: ~65 GiB). Prints wall time, peak resident memory and NDCG@10 per
size. Nothing is asserted (a benchmark, run by hand).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.compare_bases import cpu_name  # noqa: E402
from benchmarks.debian_pairs import read_packages  # noqa: E402

MAX_QUERIES = 10_000  # params.yaml's evaluation.max_queries


def pair_split(rows: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """`rows` (anchor, positive) pairs of distinct anchors: each description with another sharing one of its tags."""
    packages = read_packages()
    texts = sorted(packages)
    by_tag: dict[str, list[str]] = {}
    for text in texts:
        for tag in packages[text][0]:
            by_tag.setdefault(tag, []).append(text)
    rng = random.Random(seed)
    anchors = rng.sample(texts, rows)
    positives = []
    for anchor in anchors:
        tag = rng.choice(sorted(packages[anchor][0]))
        partners = by_tag[tag]
        positives.append(rng.choice(partners) if len(partners) > 1 else rng.choice(texts))
    return anchors, positives


def one_size(rows: int, variant: str, model_dir: str) -> dict:
    import pandas as pd
    from sentence_transformers import SentenceTransformer

    from pipeline.evaluation import evaluators

    anchors, positives = pair_split(rows)
    frame = pd.DataFrame({"anchor": anchors, "positive": positives})
    model = SentenceTransformer(model_dir, device="cpu")
    if variant == "before":
        evaluators.SCORE_BYTES = 10**15  # the library's 50,000-passage blocks
    started = time.perf_counter()
    shared: dict = {}
    found = {}
    built = evaluators.retrieval_evaluators(frame, "pairs", "s", ("int8", "binary"), shared=shared,
                                            max_queries=None if variant == "before" else MAX_QUERIES, seed=42)
    for evaluator in built:
        found[evaluator.name] = evaluator(model)[f"{evaluator.name}_cosine_ndcg@10"]
    return {"rows": rows, "variant": variant, "seconds": time.perf_counter() - started,
            "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "queries": len(built[0].queries),
            "chunk": built[0].corpus_chunk_size, "ndcg": found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000, 16000, 54000])
    parser.add_argument("--before-up-to", type=int, default=16000)
    parser.add_argument("--one", nargs=3, metavar=("ROWS", "VARIANT", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(int(args.one[0]), args.one[1], args.one[2])))
        return

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import build_tiny_model

    folder = Path(tempfile.mkdtemp(prefix="retrieval-scale-"))
    model_dir = str(build_tiny_model(folder, hidden_size=384))
    print(f"CPU: {cpu_name()}; a 384-dimension model; float32, int8 and binary retrieval of each split\n")
    print("| rows (queries x passages) | variant | queries scored | block | seconds | peak RSS MiB "
          "| NDCG@10 float / int8 / binary |")
    print("|--:|:--|--:|--:|--:|--:|:--|")
    for rows in args.sizes:
        for variant in ("before", "after"):
            if variant == "before" and rows > args.before_up_to:
                print(f"| {rows:,} | before | {rows:,} | 50,000 | - | - | not run: ~{24 * rows * rows / 2**30:.0f} GiB of "
                      f"score matrices |")
                continue
            done = subprocess.run([sys.executable, __file__, "--one", str(rows), variant, model_dir],
                                  capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            ndcg = " / ".join(f"{value:.4f}" for value in result["ndcg"].values())
            print(f"| {rows:,} | {variant} | {result['queries']:,} | {result['chunk']:,} | {result['seconds']:.1f} | "
                  f"{result['peak_mib']:,.0f} | {ndcg} |", flush=True)


if __name__ == "__main__":
    main()
