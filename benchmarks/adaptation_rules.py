"""Scored -> pairs / triplets adaptation rules on real text: test Spearman gain over the base model.

Usage: python benchmarks/adaptation_rules.py --data dense|sparse [--rules before,lowest,...] [--losses mnrl,triplet]
                                             [--seed 42] [--workdir DIR]      (needs `apt-get update` first)

MultipleNegativesRankingLoss and TripletLoss see a scored dataset only through an adaptation rule
(pipeline/data/adaptation.py). This trains each (rule, loss) with the pipeline's own train stage and
defaults (params.yaml: batch 32, lr 5e-5, 1 epoch, the losses' params, seed) on one real scored set and
scores it with the evaluate stage on the test split (the scored pairs themselves, no adaptation):
  dense   benchmarks/debian_pairs.py --rows 14000 --texts 3000 --tagged-only: each description in ~9
          pairs, so a sentence1 has ~3.5 scored partners in train (one query, many candidates);
          partitioned split, ~6,200 training pairs
  sparse  --rows 9000 --texts 16000 --tagged-only: ~1 pair per description, one partner per sentence1
          (like STS-B); grouped split, ~6,300 training pairs
Scores are 5 x Jaccard of the packages' tags, normalised to 0-1; adapt.positive_threshold 0.5.
The only change from a default cell: train.eval_strategy no and train.select last (the last step is kept),
since validation would cost ~a third of the time and the comparison is of the rule, not of the checkpoint.

Rules (anchor = sentence1; a partner = another sentence2 scored with the same sentence1 in train):
  before       the rule before this study: MNRL gets rows scored >= threshold as (anchor, positive);
               Triplet gets, per such row, a random partner below the threshold, else a random sentence2
  pipeline     what pipeline.data.adaptation.adapt does now (adapt.scored: graded, the default after this
               study): `graded` with a gap of exactly GAP counted (graded's float comparison drops some)
               and, for rows >= threshold without a partner below, a random sentence2 as the negative
               (the row dropped when it is a partner of the same anchor) instead of the lexical one
  lowest       rows >= threshold, with the lowest-scored partner below the threshold as the negative,
               else the other positive sharing the most words with this one (lexical_negatives)
  hardest      the same with the highest-scored partner below the threshold
  random       `lowest` with a random other sentence2 where the anchor has no partner below
  graded       every partner p with a partner scored at least GAP lower (the lowest of them is the
               negative), so pairs below the threshold teach an order too; rows >= threshold without one
               take the lexical negative
  X+both       rule X on both directions: each row also read as (sentence2, sentence1)
Prints one table row per (rule, loss): training rows, test Spearman, gain over the base model, seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

DATA = {"dense": {"rows": 14_000, "texts": 3_000}, "sparse": {"rows": 9_000, "texts": 16_000}}
GAP = 0.2  # normalised score (1 point of 0-5) between a graded positive and its negative


def partners(frame: Any, both: bool) -> dict[str, list[tuple[str, float]]]:
    by_anchor: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for s1, s2, score in zip(frame["sentence1"], frame["sentence2"], frame["score"]):
        by_anchor[s1].append((s2, score))
        if both:
            by_anchor[s2].append((s1, score))
    return by_anchor


def with_negatives(frame: Any, threshold: float, rng: random.Random, pick: str, fallback: str, both: bool,
                   graded: bool = False) -> Any:
    """(anchor, positive, negative) rows by one of the candidate rules (see the module docstring)."""
    import pandas as pd

    from pipeline.data.adaptation import lexical_negatives

    rows = []
    for anchor, found in partners(frame, both).items():
        for positive, score in found:
            if score < threshold and not graded:
                continue
            below = [(s, n) for n, s in found if n != positive and s < (score - GAP if graded else threshold)]
            if below:
                rows.append((anchor, positive, (min(below) if pick == "lowest" else max(below))[1]))
            elif score >= threshold:
                rows.append((anchor, positive, None))
    out = pd.DataFrame(rows, columns=["anchor", "positive", "negative"])
    missing = out["negative"].isna()
    if fallback == "lexical":
        lexical = lexical_negatives(out["positive"].tolist(), rng)
        out.loc[missing, "negative"] = [n for n, m in zip(lexical, missing) if m]
    else:
        seconds = frame["sentence2"].tolist()
        out.loc[missing, "negative"] = [seconds[rng.randrange(len(seconds))] for _ in range(int(missing.sum()))]
    return out[out["negative"] != out["positive"]]


def candidate(rule: str, frame: Any, needs: str, threshold: float, rng: random.Random) -> Any:
    name, both = rule.removesuffix("+both"), rule.endswith("+both")
    settings = {"lowest": ("lowest", "lexical", False), "hardest": ("hardest", "lexical", False),
                "random": ("lowest", "random", False), "graded": ("lowest", "lexical", True)}[name]
    pick, fallback, graded = settings
    return with_negatives(frame, threshold, rng, pick, fallback, both, graded)


def run_cell(rule: str, loss: str) -> None:
    """In the project directory: train and evaluate one cell with `rule` in place of the scored adaptation."""
    import pipeline.data.adaptation as adaptation
    from pipeline import evaluate, train

    original = adaptation.adapt

    def adapt(frame: Any, shape: str, needs: str, adapt_params: Any, seed: int, mining_model: Any = None) -> Any:
        if rule == "pipeline" or shape != "scored" or needs not in ("pairs", "triplets"):
            return original(frame, shape, needs, adapt_params, seed, mining_model)
        if rule.removesuffix("+both") == "before":  # the pipeline keeps it as adapt.scored: threshold
            return original(frame, shape, needs, adapt_params.model_copy(update={"scored": "threshold"}), seed,
                            mining_model)
        out = candidate(rule, frame, needs, adapt_params.positive_threshold, random.Random(seed))
        return out.reset_index(drop=True), f"benchmark rule {rule}"

    # the train stage imports adapt when it builds the training data, so it takes this one (glue for the study only)
    adaptation.adapt = adapt
    train.main(["--dataset", "study", "--base", "minilm", "--loss", loss])
    evaluate.main(["--dataset", "study", "--base", "minilm", "--loss", loss])


def prepare(project: Path, data: str, seed: int) -> None:
    """The project: the Debian set as data/raw/study.csv, params, and the ingest, split and baseline stages."""
    import pandas as pd
    from debian_pairs import build_pairs, read_packages

    from pipeline import baseline, ingest, split

    project.mkdir(parents=True, exist_ok=True)
    source = project / "data" / "raw" / "study.csv"
    if not source.exists():
        packages = read_packages()
        texts = [text for text, (_, tagged) in packages.items() if tagged]
        texts = random.Random(0).sample(texts, DATA[data]["texts"])
        pairs = build_pairs([packages[t][0] for t in texts], DATA[data]["rows"], seed=0)
        source.parent.mkdir(parents=True)
        pd.DataFrame([(texts[a], texts[b], s) for a, b, s in pairs],
                     columns=["sentence1", "sentence2", "score"]).to_csv(source, index=False)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(seed=seed, datasets={"study": {"source": "data/raw/study.csv", "score_range": [0, 5],
                                                  "name": f"Debian descriptions ({data})"}})
    params["run"] = {"datasets": ["study"], "base_models": ["minilm"], "losses": ["mnrl", "triplet"]}
    params["train"].update(eval_strategy="no", select="last", early_stopping_patience=None)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    os.chdir(project)
    if not Path("results/baseline/minilm/study.json").exists():
        ingest.main(["--dataset", "study"])
        split.main(["--dataset", "study"])
        baseline.main(["--dataset", "study", "--base", "minilm"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=sorted(DATA), default="dense")
    parser.add_argument("--rules", default="before,pipeline")
    parser.add_argument("--losses", default="mnrl,triplet")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/adaptation_rules"))
    parser.add_argument("--cell", nargs=2, metavar=("RULE", "LOSS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        run_cell(*args.cell)
        return
    from pipeline.core.handoffs import BaselineScores, EvalResult, TrainFacts

    project = (args.workdir / f"{args.data}-seed{args.seed}").resolve()
    prepare(project, args.data, args.seed)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    base = BaselineScores.read(project / "results/baseline/minilm/study.json").test.spearman
    print(f"\n{args.data}, seed {args.seed}: base model test Spearman {base:.4f}")
    print("| rule | loss | training rows | test Spearman | gain | train s |\n|:--|:--|--:|--:|--:|--:|")
    for rule in args.rules.split(","):
        for loss in args.losses.split(","):
            (project / "logs").mkdir(exist_ok=True)
            with (project / "logs" / f"{rule}-{loss}.log").open("w") as log:
                subprocess.run([sys.executable, __file__, "--cell", rule, loss], cwd=project, env=env, check=True,
                               stdout=log, stderr=subprocess.STDOUT)
            facts = TrainFacts.read(project / f"results/train/study/minilm/{loss}/facts.json")
            result = EvalResult.read(project / f"results/evaluate/study/minilm/{loss}.json")
            line = (f"| {rule} | {loss} | {facts.dataset.train_rows} | {result.test.tuned.spearman:.4f} | "
                    f"{result.test.gain:+.4f} | {facts.train_seconds:.0f} |")
            print(line, flush=True)
            with (project / "results.jsonl").open("a") as log:
                log.write(json.dumps({"rule": rule, "loss": loss, "rows": facts.dataset.train_rows,
                                      "spearman": result.test.tuned.spearman, "gain": result.test.gain,
                                      "seconds": facts.train_seconds, "time": time.time()}) + "\n")


if __name__ == "__main__":
    main()
