"""Scale benchmark: ingest + split of a 300,000-row scored-pairs CSV (seed 004 trained on 269,144 rows).

Usage: python benchmarks/ingest_scale.py [--rows 300000] [--csv PATH]

Writes the CSV (0-5 scores, like STS; or copies --csv, e.g. the Debian pairs of benchmarks/debian_pairs.py,
whose shared texts chain every row into one group) into a temporary project, runs the real stage commands
(`python -m pipeline.ingest`, `python -m pipeline.split`) there, and prints wall time and peak RSS of
each. Target on the 2-core machine: under 60 s and under 2 GiB peak memory in total.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_stage(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one stage process."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    _, status, usage = __import__("os").wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{' '.join(args)} failed with status {status}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--csv", type=Path, help="a sentence1,sentence2,score CSV with 0-5 scores to use instead")
    args = parser.parse_args()
    from pipeline.data.builtin import similarity_pairs

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        source = project / "data" / "raw" / "big_sts.csv"
        source.parent.mkdir(parents=True)
        if args.csv:
            shutil.copy(args.csv, source)
        else:
            with source.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=["sentence1", "sentence2", "score"])
                writer.writeheader()
                writer.writerows(similarity_pairs(args.rows, seed=4))
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["datasets"] = {"big": {"source": str(source.relative_to(project)), "score_range": [0, 5]}}
        params["run"]["datasets"] = ["big"]
        (project / "params.yaml").write_text(yaml.safe_dump(params))
        size_mb = source.stat().st_size / 2**20
        ingest_s, ingest_rss = run_stage(["pipeline.ingest", "--dataset", "big"], project)
        split_s, split_rss = run_stage(["pipeline.split", "--dataset", "big"], project)
        rows = sum(1 for _ in source.open(encoding="utf-8")) - 1  # one line per row in these files
    print(f"\n{rows:,} scored pairs, CSV {size_mb:.1f} MiB")
    print("| stage  | wall s | peak RSS MiB |\n|:-------|-------:|-------------:|")
    print(f"| ingest | {ingest_s:6.1f} | {ingest_rss:12.0f} |\n| split  | {split_s:6.1f} | {split_rss:12.0f} |")
    total = ingest_s + split_s
    peak = max(ingest_rss, split_rss)
    print(f"| total  | {total:6.1f} | {peak:12.0f} |")
    print(f"target: < 60 s and < 2048 MiB -> {'met' if total < 60 and peak < 2048 else 'NOT met'}")


if __name__ == "__main__":
    main()
