"""Retrieval validation on part of a corpus: does it keep the same checkpoint as the whole corpus?

    python benchmarks/validation_passages.py [--queries 1500] [--losses mnrl cosent] [--caps 250 500 1000 2000]
                                             [--seeds 42]

A cell chosen by validation NDCG@10 (a BEIR set's default) runs a validation pass every ~10 % of its steps.
Searching the whole corpus at every pass costs more than the training on a corpus of thousands of passages, so
`train.validation_passages` cuts what a pass searches to the sampled queries' relevant passages and a seeded
sample of the others (pipeline/evaluation/evaluators.py). This measures what that does to the choice, on real
text: the standard library's signatures as a BEIR corpus (benchmarks/stdlib_search.py's folder, every harvested
signature, ~4,300), `--queries` docstring summaries split 70/10/20. Each cell is the train stage's own (prepare
and fit of pipeline/train.py, the shipped params), except that every validation pass scores, from one encode of
each text: the validation queries against the whole corpus (what chooses here), against each cut, and the test
queries against the whole corpus. Prints per cell and cut the rank correlation of its curve with the whole
corpus's, the step each would keep, and the whole-corpus validation and test NDCG@10 at that step, then every
curve; then the train stage's wall time per loss, as shipped and searching the whole corpus at every pass.
Nothing is asserted (a benchmark, run by hand).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.compare_bases import cpu_name  # noqa: E402
from benchmarks.stdlib_search import write_folder  # noqa: E402
from scripts.scratch_project import ROOT, commit, scratch_project  # noqa: E402

NDCG = "cosine_ndcg@10"


def recording_evaluator(evaluators: dict[str, Any], shared: dict) -> Any:
    """One evaluator for the trainer: every retrieval evaluator given, from one encode per text per pass (the
    shared cache emptied at each pass, as the pipeline's own per-call cache is); keeps each pass's NDCG@10."""
    from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

    class Recording(SentenceEvaluator):
        def __init__(self) -> None:
            super().__init__()
            self.history: list[dict[str, float]] = []
            self.primary_metric = f"whole_retrieval_{NDCG}"

        def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict:
            shared.clear()
            results, row = {}, {"step": steps}
            for name, evaluator in evaluators.items():
                results.update(evaluator(model))
                row[name] = results[f"{name}_retrieval_{NDCG}"]
            shared.clear()
            self.history.append(row)
            return results

    return Recording()


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) if len(set(a)) > 1 and len(set(b)) > 1 else float("nan")


def study(repo: Path, loss: str, caps: list[int], seed: int) -> list[dict[str, float]]:
    from pipeline import train
    from pipeline.core.loading import load_params
    from pipeline.data.splitting import read_corpus, read_split
    from pipeline.evaluation.evaluators import retrieval_evaluators

    params = load_params()
    params = params.model_copy(update={"seed": seed})
    cell = train.prepare(params, "stdlib_search", "minilm", loss, None)
    corpus = read_corpus("stdlib_search")
    shared: dict = {}
    validation, shape = read_split("stdlib_search", "validation")
    test, _ = read_split("stdlib_search", "test")
    evaluators = {"whole": retrieval_evaluators(validation, shape, "whole", corpus=corpus, shared=shared, seed=seed)[0]}
    for cap in caps:
        evaluators[f"cut{cap}"] = retrieval_evaluators(validation, shape, f"cut{cap}", corpus=corpus, shared=shared,
                                                       seed=seed, max_passages=cap)[0]
    evaluators["test"] = retrieval_evaluators(test, shape, "test", corpus=corpus, shared=shared, seed=seed)[0]
    recorder = recording_evaluator(evaluators, shared)
    cell.trainer.evaluator = recorder
    train.fit(cell, params)
    return recorder.history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=1500)
    parser.add_argument("--losses", nargs="+", default=["mnrl", "cosent"])
    parser.add_argument("--caps", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    args = parser.parse_args()

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"]["stdlib_search"] = {"source": "data/raw/stdlib_search", "name": "Python stdlib search"}
    params["run"] = {"datasets": ["stdlib_search"], "base_models": ["minilm"], "losses": args.losses}
    params["eval_sets"] = {}  # the shipped eval set of that name would be this dataset twice
    params["train"]["select_metric"] = "ndcg@10"
    shipped = params["train"]["validation_passages"]
    params["train"]["validation_passages"] = 10**9  # the trainer's own chooser unused: the recorder replaces it
    with tempfile.TemporaryDirectory(prefix="validation-passages-") as folder:
        repo = Path(folder)
        env = scratch_project(repo, params, builtin_data=False)
        judged = write_folder(repo / "data" / "raw" / "stdlib_search", args.queries)
        commit(repo, env, "stdlib search")
        for stage in ("ingest", "split", "baseline"):
            subprocess.run([sys.executable, "-m", f"pipeline.{stage}", "--dataset", "stdlib_search",
                            *(["--base", "minilm"] if stage == "baseline" else [])], cwd=repo, env=env, check=True,
                           capture_output=True)
        os.chdir(repo)
        os.environ.update(env)
        corpus = sum(1 for _ in (repo / "data/raw/stdlib_search/corpus.jsonl").open())
        print(f"{cpu_name()}; corpus {corpus:,} signatures; judgements {judged}; cuts {args.caps}\n")
        print("| loss | seed | passages searched | rank corr. with whole | kept step | whole-corpus val NDCG@10 "
              "| test NDCG@10 |")
        print("|:--|--:|--:|--:|--:|--:|--:|")
        for loss in args.losses:
            for seed in args.seeds:
                history = study(repo, loss, args.caps, seed)
                whole = [row["whole"] for row in history]
                for name in ["whole", *(f"cut{cap}" for cap in args.caps)]:
                    curve = [row[name] for row in history]
                    kept = max(range(len(history)), key=lambda i: (curve[i], -i))  # the first best, as BestCheckpoint
                    print(f"| {loss} | {seed} | {name} | {spearman(curve, whole):.3f} | {history[kept]['step']} "
                          f"| {history[kept]['whole']:.4f} | {history[kept]['test']:.4f} |", flush=True)
                names = ["whole", *(f"cut{cap}" for cap in args.caps), "test"]
                print(f"  curves ({loss}, seed {seed}; {' '.join(names)}): " + "; ".join(
                    f"step {row['step']}: " + " ".join(f"{row[name]:.3f}" for name in names) for row in history))
        print("\nThe train stage itself (a process per run, warm starts off), as shipped and searching the whole corpus:")
        for loss in args.losses:
            for passages, label in ((shipped, f"validation_passages {shipped:,} (shipped)"), (10**9, "the whole corpus")):
                params["train"]["validation_passages"] = passages
                (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "pipeline.train", "--dataset", "stdlib_search", "--base", "minilm",
                                "--loss", loss], cwd=repo, env={**env, "PIPELINE_WARM_START": "0"}, check=True,
                               capture_output=True)
                print(f"  {loss}, {label}: {time.perf_counter() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
