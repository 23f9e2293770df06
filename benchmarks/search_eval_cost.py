"""What the default run's built-in search set costs and shows: the shipped pipeline, run whole, once without
the `stdlib_search` eval set and once per corpus size, in one invocation on one machine.

    python benchmarks/search_eval_cost.py [--corpus 600 all] [--before REV]

Each run is a fresh scratch copy of the project with the shipped params.yaml, `eval_sets` changed only:
none, then `stdlib_search` with each `--corpus` (`all`: every harvested signature); with `--before`, first
the default run of commit REV (its pipeline/, dvc.yaml and params.yaml as they were: "today's time" before
the set was added). Prints each run's wall time (one `dvc repro`, DVC's start-up included) and its ratio to
the run without the set (and to REV's), the stages the set adds or lengthens, and for every run with it the
base model's and each cell's test NDCG@10 / Recall@10 on it (255 held-out queries searching the corpus).
Nothing is asserted (a benchmark, run by hand): the default run's time target (within 10 % of its time
without the set) is read off the ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.compare_bases import cpu_name, timed_repro  # noqa: E402
from scripts.scratch_project import ROOT, commit, scratch_project  # noqa: E402

SET = "stdlib_search"
SHOWN = ("cosine_ndcg@10", "cosine_recall@10")


def one_run(corpus: str | None, before: str | None = None) -> tuple[float, dict[str, float], dict[str, tuple[float, float]]]:
    """The whole default run with the set at `corpus` (None: without it; `before`: commit REV's default run as
    it was): its wall time, seconds per stage, and NDCG@10 / Recall@10 on the set by cell (`base` for the base
    model)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    shipped = params["eval_sets"][SET]
    params["eval_sets"] = {} if corpus is None else {SET: {**{k: v for k, v in shipped.items() if k != "corpus"},
                                                          **({} if corpus == "all" else {"corpus": int(corpus)})}}
    with tempfile.TemporaryDirectory(prefix="search-eval-cost-") as folder:
        repo = Path(folder)
        env = scratch_project(repo, params)
        if before:  # that commit's code, pipeline and params in place of today's
            subprocess.run(["rm", "-rf", str(repo / "pipeline")], check=True)
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", before, "pipeline", "dvc.yaml", "params.yaml"],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
        commit(repo, env, "default run")
        repro = timed_repro(repo, env)
        scores: dict[str, tuple[float, float]] = {}
        for path in sorted((repo / "results" / "evaluate").glob("*/*/*.json")) if corpus is not None else []:
            on_set = json.loads(path.read_text())["transfer"][SET]
            scores.setdefault("base", tuple(on_set["base"]["retrieval"][key] for key in SHOWN))
            scores[f"{path.parent.parent.name} / {path.stem}"] = tuple(on_set["tuned"]["retrieval"][key] for key in SHOWN)
        return repro.total, repro.seconds, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", nargs="+", default=["600", "all"], help="corpus sizes to run (all: every signature)")
    parser.add_argument("--before", help="also time this commit's default run (e.g. the one before the set was added)")
    args = parser.parse_args()
    print(f"{cpu_name()}; the shipped params, eval_sets changed only\n")
    earlier = one_run(None, args.before)[0] if args.before else None
    if earlier:
        print(f"{args.before}'s default run: {earlier:.0f} s")
    without, without_stages, _ = one_run(None)
    print(f"without {SET}: {without:.0f} s" + (f", x{without / earlier:.3f} {args.before}'s" if earlier else ""))
    for corpus in args.corpus:
        total, stages, scores = one_run(corpus)
        added = {name: seconds - without_stages.get(name, 0.0) for name, seconds in stages.items()}
        print(f"\n{SET}, corpus {corpus}: {total:.0f} s, x{total / without:.3f} the run without it"
              + (f", x{total / earlier:.3f} {args.before}'s" if earlier else ""))
        print("  stages it adds or lengthens (s): " + ", ".join(
            f"{name} {extra:+.1f}" for name, extra in added.items() if name not in without_stages or extra > 1.0))
        print(f"  {'test on ' + SET:<34} NDCG@10  Recall@10")
        for cell, (ndcg, recall) in scores.items():
            print(f"  {cell:<34} {ndcg:7.4f}  {recall:9.4f}")


if __name__ == "__main__":
    main()
