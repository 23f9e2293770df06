"""Search over a whole corpus: the standard library's docstrings as a BEIR folder, through the real pipeline.

    python benchmarks/stdlib_search.py [--queries 600] [--losses mnrl triplet cosine cosent]

Writes a BEIR folder (corpus.jsonl: every harvested function's signature, ~4,300 on CPython 3.11;
queries.jsonl: docstring summaries; qrels/train, dev, test.tsv: a seeded sample of `--queries` summaries split
70/10/20, each answered by its own signature) into a scratch copy of the project, runs one `dvc repro report`
with it as the only dataset, and prints the leaderboard (its winner chosen by validation NDCG@10, report.metric
auto) and the retrieval table: each loss's test NDCG@10 beside the base model's, every test query searching
the whole corpus, every passage nobody asked for included. Prints the CPU and each stage's wall time;
nothing is asserted (a benchmark, run by hand).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.compare_bases import cpu_name, timed_repro  # noqa: E402
from pipeline.data.builtin.docstrings import _stdlib_pairs  # noqa: E402
from scripts.scratch_project import ROOT, commit, scratch_project  # noqa: E402


def write_folder(folder: Path, queries: int, seed: int = 42) -> dict[str, int]:
    """The BEIR folder; returns the judgements per split."""
    pairs = _stdlib_pairs()
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "text": signature}) + "\n"
                                                 for i, (_, signature) in enumerate(pairs)))
    asked = random.Random(seed).sample(range(len(pairs)), min(queries, len(pairs)))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": pairs[i][0]}) + "\n" for i in asked))
    cut = {"train": asked[:int(0.7 * len(asked))], "dev": asked[int(0.7 * len(asked)):int(0.8 * len(asked))],
           "test": asked[int(0.8 * len(asked)):]}
    for split, ids in cut.items():
        (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                                       + "".join(f"q{i}\td{i}\t1\n" for i in ids))
    return {split: len(ids) for split, ids in cut.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=600, help="summaries asked, split 70/10/20 (default 600)")
    parser.add_argument("--losses", nargs="+", default=["mnrl", "triplet", "cosine", "cosent"])
    args = parser.parse_args()

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"]["stdlib_search"] = {"source": "data/raw/stdlib_search", "name": "Python stdlib search"}
    params["run"] = {"datasets": ["stdlib_search"], "base_models": ["minilm"], "losses": args.losses}
    # the shipped eval set of that name (600 of the signatures, held out) would be this dataset twice
    params["eval_sets"] = {}
    with tempfile.TemporaryDirectory(prefix="stdlib-search-") as folder:
        repo = Path(folder)
        env = scratch_project(repo, params, builtin_data=False)
        judged = write_folder(repo / "data" / "raw" / "stdlib_search", args.queries)
        commit(repo, env, "stdlib search")
        times = timed_repro(repo, env, "report").seconds
        corpus = sum(1 for _ in (repo / "data/raw/stdlib_search/corpus.jsonl").open())
        print(f"{cpu_name()}; corpus {corpus} signatures; judgements {judged}\n")
        for name, seconds in times.items():
            print(f"  {name:<40} {seconds:7.1f} s")
        board = (repo / "reports" / "leaderboard.md").read_text()
        print("\n" + board.split("## Transfer")[0])
        shown = ("cosine_ndcg@10", "cosine_mrr@10", "cosine_recall@1", "cosine_recall@10", "cosine_recall@100")
        print("test, whole corpus: " + " / ".join(key.removeprefix("cosine_") for key in shown))
        for loss in args.losses:
            result = json.loads((repo / "results/evaluate/stdlib_search/minilm" / f"{loss}.json").read_text())["test"]
            if loss == args.losses[0]:
                print(f"  {'base model':<12}" + "".join(f"{result['base']['retrieval'][key]:9.4f}" for key in shown))
            print(f"  {loss:<12}" + "".join(f"{result['tuned']['retrieval'][key]:9.4f}" for key in shown))


if __name__ == "__main__":
    main()
