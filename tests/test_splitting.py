"""The grouped split: small groups hashed whole (the rule before partitioning, unchanged), groups chained
by shared texts partitioned at the requested fractions with no text in two splits, and the drops reported."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline import ingest, split
from pipeline.core import paths
from pipeline.core.handoffs import SplitReport
from pipeline.data.splitting import SPLITS, _bucket, _norm_text, grouped_split
from tests.conftest import ROOT


def chained(texts: int = 400, per_text: int = 10) -> pd.DataFrame:
    """Scored pairs in which every text is in ~per_text rows and shared texts chain every row into one
    group: text i is paired with texts i+1 .. i+per_text/2 around a ring."""
    rows = [(f"Sentence number {i} about topic {i % 7}.", f"Sentence number {(i + k) % texts} about topic {(i + k) % texts % 7}.",
             (k % 5) / 4) for i in range(texts) for k in range(1, per_text // 2 + 1)]
    return pd.DataFrame(rows, columns=["sentence1", "sentence2", "score"])


def texts_of(frame: pd.DataFrame) -> set[str]:
    return {_norm_text(t) for t in frame["sentence1"].tolist() + frame["sentence2"].tolist()}


def test_chained_rows_split_at_the_requested_fractions_with_no_text_in_two_splits() -> None:
    frame = chained()
    result = grouped_split(frame, "scored", 0.1, 0.2, seed=7)
    assert result.rule == "partitioned" and result.largest_group == len(frame)
    sizes = {name: len(part) for name, part in result.frames.items()}
    kept = sum(sizes.values())
    assert result.dropped_crossing == len(frame) - kept > 0
    assert kept > 0.6 * len(frame)  # a ring cuts few rows; hashing each text would keep ~39%
    for name, wanted in (("train", 0.7), ("validation", 0.1), ("test", 0.2)):
        assert sizes[name] / kept == pytest.approx(wanted, rel=0.15), sizes
    texts = {name: texts_of(part) for name, part in result.frames.items()}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["validation"]
    assert not texts["validation"] & texts["test"]
    again = grouped_split(frame, "scored", 0.1, 0.2, seed=7)
    assert all(result.frames[name].equals(again.frames[name]) for name in SPLITS)
    other = grouped_split(frame, "scored", 0.1, 0.2, seed=8)
    assert not result.frames["test"].equals(other.frames["test"])


def test_small_groups_land_whole_by_the_hash_of_their_smallest_text() -> None:
    # groups of 1-3 rows: (q i, d i), and every fifth query also matches the next document
    rows = [(f"Query {i}", f"doc  {i}") for i in range(300)] + [(f"query {i}", f"Doc {i + 1}") for i in range(0, 300, 5)]
    frame = pd.DataFrame(rows, columns=["anchor", "positive"])
    result = grouped_split(frame, "pairs", 0.1, 0.2, seed=3)
    assert result.rule == "grouped" and result.dropped_crossing == 0 and result.largest_group == 3
    landed = {(a, p): name for name, part in result.frames.items() for a, p in zip(part["anchor"], part["positive"])}
    assert len(landed) == len(frame)
    # the groups, worked out by hand: query i with doc i, and with query i+1 and doc i+1 when 5 divides i
    for i in range(300):
        start = i - 1 if i % 5 == 1 else i
        members = [f"query {j}" for j in (start, start + 1)] + [f"doc {j}" for j in (start, start + 1)]
        u = _bucket(3, min(members if start % 5 == 0 else members[::2]))
        expected = "test" if u < 0.2 else "validation" if u < 0.3 else "train"
        assert landed[(f"Query {i}", f"doc  {i}")] == expected, i


def test_a_large_group_is_partitioned_and_small_groups_keep_their_hash() -> None:
    small = pd.DataFrame({"sentence1": [f"lone question {i}" for i in range(600)],
                          "sentence2": [f"lone answer {i}" for i in range(600)], "score": 0.5})
    alone = grouped_split(small, "scored", 0.1, 0.2, seed=1)
    mixed = grouped_split(pd.concat([small, chained(100, 4)], ignore_index=True), "scored", 0.1, 0.2, seed=1)
    assert alone.rule == "grouped" and mixed.rule == "partitioned" and mixed.dropped_crossing > 0
    for name in SPLITS:
        assert set(alone.frames[name]["sentence1"]) <= set(mixed.frames[name]["sentence1"])


def test_split_stage_reports_the_rule_and_the_rows_dropped(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    (workdir / "data/raw").mkdir(parents=True)
    chained().to_csv(workdir / "data/raw/chained.csv", index=False)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"] = {"ring": {"source": "data/raw/chained.csv", "score_range": [0, 1]}}
    params["run"]["datasets"] = ["ring"]
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    ingest.main(["--dataset", "ring"])
    split.main(["--dataset", "ring"])
    report = SplitReport.read(paths.split_report("ring"))
    assert report.rule == "partitioned" and "dropped" in report.rule_text
    assert report.dropped_crossing > 0 and report.largest_group == len(chained())
    assert sum(report.rows.values()) + report.dropped_crossing == len(chained())
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("split ring: train ") and f"rule partitioned, {report.dropped_crossing} rows dropped" in line
