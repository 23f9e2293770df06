"""Training-speed benchmark: plain sentence-transformers vs the pipeline's train stage, same workload.

Usage: python benchmarks/train_speed.py [--samples 1024] [--base-model sentence-transformers/all-MiniLM-L6-v2]
                                        [--set train.KEY=VALUE ...]   (override (b)'s params, to measure a lever)

Workload: the built-in docstring pairs, 1,024 training samples, MultipleNegativesRankingLoss, batch 32,
1 epoch, seed 42. In one invocation, alternately (--repeats times; times are medians), each run its own
process (so peak RSS is per run):
  (a) a plain SentenceTransformerTrainer script with library defaults (fp32, default batch sampler);
  (b) `python -m pipeline.train` with the pipeline's default settings, without validation passes (as (a)).
Prints wall time, samples/s, real (non-padding) tokens/s, padding fraction, peak RSS, model FLOP
utilisation against the matmul peak of the precision the runs trained in (measured in the same run, bounded
in time: a CPU without bf16 instructions emulates bf16 matmuls slowly), and each result's test Spearman.
Padding is that of the batch tensors; (b)'s feed-forward blocks skip it (pipeline/training/unpad.py), its attention does not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PLAIN_SCRIPT = """
import json, sys, time
from datasets import Dataset
import pandas as pd
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
model_path, train_file, out_dir = sys.argv[1:4]
model = SentenceTransformer(model_path)
train = Dataset.from_pandas(pd.read_parquet(train_file), preserve_index=False)
args = SentenceTransformerTrainingArguments(output_dir=out_dir + "/ckpt", per_device_train_batch_size=32,
                                            num_train_epochs=1, seed=42, report_to="none", save_strategy="no")
trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=MultipleNegativesRankingLoss(model))
started = time.perf_counter()
trainer.train()
seconds = time.perf_counter() - started
model.save(out_dir + "/model")
print(json.dumps({"train_seconds": seconds}))
"""


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB, stdout of one process."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
        out = proc.stdout.read() if proc.stdout else ""
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            stderr.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({status}):\n{out[-2000:]}{stderr.read()[-3000:]}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, out


PEAK_SECONDS = 5.0  # time spent measuring a matmul peak, whatever the CPU


def matmul_peak(dtype_name: str, max_size: int = 2048, budget_s: float = PEAK_SECONDS) -> float:
    """Sustained matmul FLOP/s in this dtype, measured for about `budget_s` seconds at most: products grow from
    256^3 to `max_size`^3 while one takes under a tenth of the budget (an emulated dtype stays small)."""
    import torch

    dtype, size = getattr(torch, dtype_name), 256
    while True:
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        started = time.perf_counter()
        a @ b  # warm-up, and an estimate of one product's time
        one = time.perf_counter() - started
        if size >= max_size or one * 8 > budget_s / 10:  # the next size costs 8x
            break
        size *= 2
    reps = max(1, int(budget_s / 2 / max(one, 1e-6)))
    started = time.perf_counter()
    for _ in range(reps):
        a @ b
    return reps * 2 * size**3 / (time.perf_counter() - started)


def token_stats(model_path: str, frame, batches: list[list[int]]) -> tuple[int, float]:
    """Real tokens in the epoch and the padding fraction of the padded batches (all text columns)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    real, padded = 0, 0
    for column in frame.columns:
        lengths = [len(ids) for ids in tokenizer(frame[column].tolist(), truncation=True, max_length=256)["input_ids"]]
        for batch in batches:
            longest = max(lengths[i] for i in batch)
            real += sum(lengths[i] for i in batch)
            padded += longest * len(batch)
    return real, 1 - real / padded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--base-model", default="sentence-transformers/all-MiniLM-L6-v2")
    parser.add_argument("--set", action="append", default=[], metavar="train.KEY=VALUE",
                        help="override a train param of (b), e.g. --set train.freeze_word_embeddings=false")
    parser.add_argument("--workdir", help="build the benchmark project here and keep it (default: a temporary dir)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="run (a) and (b) alternately this many times; times are medians (the VM's speed drifts)")
    args = parser.parse_args()

    import pandas as pd
    import torch
    from sentence_transformers import SentenceTransformer

    from pipeline.core import paths
    from pipeline.core.handoffs import FileReport, IngestReport, SplitReport, TrainFacts
    from pipeline.core.models import resolve_model
    from pipeline.data.builtin import docstring_pairs
    from pipeline.evaluation.scoring import similarity_scores
    from pipeline.training.sampling import NoDuplicatesLengthBucketBatchSampler

    model_path = resolve_model(args.base_model, "--base-model")
    rows = pd.DataFrame(docstring_pairs(args.samples + 600, seed=42))
    train, validation, test = rows.iloc[:args.samples], rows.iloc[args.samples:args.samples + 200], rows.iloc[args.samples + 200:]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "DVC_ROOT": ""}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(args.workdir or tmp)
        for split, frame in (("train", train), ("validation", validation), ("test", test)):
            (project / paths.split_file("docstrings", split)).parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(project / paths.split_file("docstrings", split), index=False)
        report = FileReport(rows_in=len(rows), rows_out=len(rows), dropped={})
        IngestReport(shape="pairs", source=report, parts={}).write(project / paths.ingest_report("docstrings"))
        sizes = {"train": len(train), "validation": len(validation), "test": len(test)}
        SplitReport(shape="pairs", rows=sizes, rule="grouped", dropped_crossing=0, largest_group=1,
                    leaked_test_rows=0).write(project / paths.split_report("docstrings"))
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["base_models"]["minilm"]["model"] = args.base_model
        params["run"] = {"datasets": ["docstrings"], "base_models": ["minilm"], "losses": ["mnrl"]}
        # no validation passes: (a) runs none, and this compares training speed (select last: nothing to pick)
        params["train"].update({"epochs": 1, "batch_size": 32, "eval_strategy": "no", "select": "last"})
        for override in args.set:
            key, value = override.split("=", 1)
            params["train"][key.removeprefix("train.")] = yaml.safe_load(value)
        params["mlflow"] = {"experiment": "benchmark"}
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
        # train reads it
        run([sys.executable, "-m", "pipeline.baseline", "--dataset", "docstrings", "--base", "minilm"], project, env)

        runs: dict[str, list[tuple[float, float, float]]] = {"(a) plain sentence-transformers": [],
                                                             "(b) pipeline train stage": []}
        for _ in range(args.repeats):
            wall, rss, out = run([sys.executable, "-c", PLAIN_SCRIPT, model_path,
                                  str(project / paths.split_file("docstrings", "train")), str(project / "plain")], project, env)
            runs["(a) plain sentence-transformers"].append((wall, rss, json.loads(out.strip().splitlines()[-1])["train_seconds"]))
            wall, rss, _ = run([sys.executable, "-m", "pipeline.train", "--dataset", "docstrings", "--base", "minilm",
                                "--loss", "mnrl"], project, env)
            facts = TrainFacts.read(project / paths.train_facts("docstrings", "minilm", "mnrl"))
            runs["(b) pipeline train stage"].append((wall, rss, facts.train_seconds))
        model_dirs = {"(a) plain sentence-transformers": project / "plain" / "model",
                      "(b) pipeline train stage": project / paths.model_dir("docstrings", "minilm", "mnrl")}
        for name, measured in runs.items():  # every repeat trains the same seeded model; peak RSS is the worst run's
            results[name] = (statistics.median(m[0] for m in measured), max(m[1] for m in measured),
                             statistics.median(m[2] for m in measured), model_dirs[name])
        ratios = [a[2] / b[2] for a, b in zip(*runs.values())]

        generator = torch.Generator().manual_seed(42)
        order = torch.randperm(len(train), generator=generator).tolist()
        plain_batches = [order[i:i + 32] for i in range(0, len(order), 32)]
        from datasets import Dataset
        from transformers import AutoTokenizer

        bucketed = NoDuplicatesLengthBucketBatchSampler(Dataset.from_pandas(train, preserve_index=False), 32, False, [], None, 42,
                                                        tokenizer=AutoTokenizer.from_pretrained(model_path))
        batches = {"(a) plain sentence-transformers": plain_batches, "(b) pipeline train stage": list(bucketed)}
        trained = facts.precision.split()[0]  # what (b) trained in, e.g. "fp32 (auto: ...)" -> fp32
        dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[trained]
        peak = matmul_peak(dtype)
        reference = SentenceTransformer(model_path)
        non_embedding = sum(p.numel() for n, p in reference.named_parameters() if "embeddings" not in n)
        test_scored = pd.DataFrame({"sentence1": list(test["anchor"]) * 2,
                                    "sentence2": list(test["positive"]) + list(test["positive"].iloc[::-1]),
                                    "score": [1.0] * len(test) + [0.0] * len(test)})
        lines = []
        for name, (wall, rss, seconds, model_dir) in results.items():
            real, padding = token_stats(model_path, train, batches[name])
            mfu = 6 * non_embedding * real / seconds / peak  # (a) trains in fp32; on CPU so does (b) unless bf16 pays
            spearman = similarity_scores(SentenceTransformer(str(model_dir)), test_scored).spearman
            lines.append((name, seconds, len(train) / seconds, real / seconds, padding, rss, mfu, spearman, wall))
    print(f"\n{dtype} matmul peak measured: {peak / 1e9:.0f} GFLOP/s (the precision (b) trained in: {facts.precision}); "
          f"torch threads {torch.get_num_threads()}; "
          f"{args.samples} samples, MNRL, batch 32, 1 epoch; medians of {args.repeats} alternating runs")
    print(f"| run | train s | samples/s | real tokens/s | padding | peak RSS MiB | MFU ({trained} peak) "
          f"| test Spearman | process s |")
    print("|:--|--:|--:|--:|--:|--:|--:|--:|--:|")
    for name, seconds, sps, tps, padding, rss, mfu, spearman, wall in lines:
        print(f"| {name} | {seconds:.1f} | {sps:.1f} | {tps:.0f} | {padding:.1%} | {rss:.0f} | {mfu:.1%} "
              f"| {spearman:.4f} | {wall:.1f} |")
    (a, b) = lines
    print(f"speed-up (b)/(a): {b[2] / a[2]:.2f}x samples/s; Spearman difference {b[7] - a[7]:+.4f}; "
          f"RSS ratio {b[5] / a[5]:.2f}; per-repeat speed-ups {', '.join(f'{r:.2f}x' for r in ratios)}")


if __name__ == "__main__":
    main()
