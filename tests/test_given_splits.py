"""A dataset given as its own train / validation / test files: ingest reads each file alike
and reports each, split keeps the rows as given (validation carved from train when absent), counts and warns
about test rows whose text is in the train file; a missing, empty or differently-shaped file, or a mapping
params cannot take, stops with one line naming it; DVC's ingest depends on each file."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from pipeline import card, evaluate, ingest, split, train
from pipeline.core import paths
from pipeline.core.handoffs import IngestReport, RunRef, SplitReport, TrainFacts
from pipeline.data.splitting import _norm_text, read_split
from scripts.scratch_project import scratch_project
from tests.conftest import ROOT, run, stage_project, tiny_params
from tests.test_bad_inputs import expect_one_line_exit, no_running_runs

SHIPPED = yaml.safe_load((ROOT / "params.yaml").read_text())
TOPICS = ["a cat", "the weather", "a train", "some soup", "a guitar", "the sea", "a bicycle", "the moon"]


def scored(split: str, n: int) -> pd.DataFrame:
    """n scored pairs (scores 0-5) whose texts name their split, so no text is shared across splits."""
    return pd.DataFrame({"sentence1": [f"A {split} sentence {i} about {TOPICS[i % 8]}." for i in range(n)],
                         "sentence2": [f"Another {split} line {i} on {TOPICS[(i * 3) % 8]}." for i in range(n)],
                         "score": [(i * 7) % 6 for i in range(n)]})


def write(frame: pd.DataFrame, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_csv(path, index=False)
    return str(path.relative_to(Path.cwd()))


def given_params(source: dict, **dataset) -> dict:
    params = copy.deepcopy(SHIPPED)
    params["datasets"]["mine"] = {"source": source, "score_range": [0, 5], **dataset}
    params["run"]["datasets"] = ["mine"]
    return params


def ingest_and_split(params: dict) -> tuple[IngestReport, SplitReport]:
    Path("params.yaml").write_text(yaml.safe_dump(params))
    ingest.main(["--dataset", "mine"])
    split.main(["--dataset", "mine"])
    return IngestReport.read(paths.ingest_report("mine")), SplitReport.read(paths.split_report("mine"))


def as_given(frame: pd.DataFrame) -> list[tuple[str, str, float]]:
    """The rows a split should hold for a given file: its texts in file order, scores scaled from [0, 5]."""
    return [(a, b, s / 5) for a, b, s in frame.itertuples(index=False)]


def rows_of(split_name: str) -> list[tuple[str, str, float]]:
    frame, shape = read_split("mine", split_name)
    assert shape == "scored" and list(frame.columns) == ["sentence1", "sentence2", "score"]
    return [tuple(row) for row in frame.itertuples(index=False)]


def texts(rows: list[tuple[str, str, float]]) -> set[str]:
    return {_norm_text(text) for row in rows for text in row[:2]}


def test_three_files_keep_their_rows_exactly(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    files = {"train": scored("train", 50), "validation": scored("validation", 12), "test": scored("test", 15)}
    files["test"] = files["test"].iloc[::-1].reset_index(drop=True)  # an order no sort would give back
    source = {"train": write(files["train"], workdir / "data/raw/train.csv"),
              "validation": write(files["validation"], workdir / "data/raw/validation.csv"),
              "test": write(files["test"], workdir / "data/raw/test.jsonl")}
    before = {name: (workdir / path).read_bytes() for name, path in source.items()}
    ingested, report = ingest_and_split(given_params(source))
    for name, frame in files.items():
        assert rows_of(name) == as_given(frame), name
        assert ingested.parts[name].model_dump() == {"rows_in": len(frame), "rows_out": len(frame), "dropped": {}}
        assert (workdir / source[name]).read_bytes() == before[name]  # raw files untouched
    assert ingested.source.rows_in == 77 and ingested.shape == "scored"
    assert report.rule == "given" and report.rows == {"train": 50, "validation": 12, "test": 15}
    assert report.leaked_test_rows == 0 and report.dropped_crossing == 0
    out = capsys.readouterr().out
    assert "(given splits: train 50, validation 12, test 15)" in out and "warning" not in out


def test_jsonl_test_and_csv_train_validation_carved_from_train(workdir: Path) -> None:
    train_file, test_file = scored("train", 80), scored("test", 20)
    source = {"train": write(train_file, workdir / "data/raw/train.csv"),
              "test": write(test_file, workdir / "data/raw/test.jsonl")}
    params = given_params(source)
    params["split"]["validation"] = 0.25  # of the train file's rows, when validation is carved from it
    _, report = ingest_and_split(params)
    assert rows_of("test") == as_given(test_file)
    train_rows, validation_rows = rows_of("train"), rows_of("validation")
    assert report.rule == "given_carved" and report.rows == {"train": len(train_rows), "validation": len(validation_rows),
                                                             "test": 20}
    assert 10 <= len(validation_rows) <= 30  # about a quarter of 80, by the seeded hash of each group
    assert not texts(train_rows) & texts(validation_rows)
    given = as_given(train_file)
    assert sorted(train_rows + validation_rows) == sorted(given) and report.dropped_crossing == 0
    assert train_rows == [row for row in given if row in set(train_rows)]  # kept in the file's order


def test_test_rows_sharing_a_train_text_are_counted_and_warned(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    train_file, test_file = scored("train", 40), scored("test", 12)
    test_file.loc[3, "sentence1"] = train_file.loc[5, "sentence1"].upper()  # same text once normalised
    test_file.loc[7, "sentence2"] = "  " + train_file.loc[9, "sentence1"]  # a train sentence1 as a sentence2
    source = {"train": write(train_file, workdir / "data/raw/train.csv"),
              "validation": write(scored("validation", 10), workdir / "data/raw/validation.csv"),
              "test": write(test_file, workdir / "data/raw/test.csv")}
    _, report = ingest_and_split(given_params(source))
    assert report.leaked_test_rows == 2 and report.rows["test"] == 12  # counted, not moved
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning")]
    assert warnings == ["warning: split mine: 2 of 12 test rows share a text with the train file, so their test scores "
                        "reward memory, not generalisation; remove those rows from one of the files for a clean test "
                        "(counted as leaked_test_rows in results/split/mine.json)"]


def test_each_file_has_its_own_bad_row_report(workdir: Path) -> None:
    train_file, test_file = scored("train", 40), scored("test", 12)
    test_file.loc[4, "score"] = 9  # outside score_range [0, 5]: one bad row, dropped and counted for the test file
    train_file = pd.concat([train_file, train_file.iloc[:2]], ignore_index=True)  # two duplicate rows
    source = {"train": write(train_file, workdir / "data/raw/train.csv"),
              "test": write(test_file, workdir / "data/raw/test.jsonl")}
    ingested, _ = ingest_and_split(given_params(source, rows=30))
    assert ingested.parts["train"].model_dump() == {"rows_in": 42, "rows_out": 40, "dropped": {"duplicate row": 2}}
    assert ingested.parts["test"].model_dump() == {"rows_in": 12, "rows_out": 11, "dropped": {"score outside [0, 5]": 1}}
    assert ingested.source.dropped == {"duplicate row": 2, "score outside [0, 5]": 1}
    assert rows_of("test") == as_given(test_file.drop(index=4))  # `rows: 30` keeps the first 30 of each file
    assert len(rows_of("train")) + len(rows_of("validation")) == 30


def test_hub_sources_name_their_split(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`hf:<id>:<split>` reads that split through datasets' load_dataset; a local folder of split files stands in
    for a Hub id (the same loader, no network)."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", workdir / "hf-cache")
    train_file, test_file = scored("train", 40), scored("test", 12)
    write(train_file, workdir / "hub/train.csv")
    write(test_file, workdir / "hub/test.csv")
    _, report = ingest_and_split(given_params({"train": "hf:hub:train", "test": "hf:hub:test"}))
    assert rows_of("test") == as_given(test_file) and report.rule == "given_carved"


# --- bad input: one line naming the file or the params key -------------------------------------------------

def _bad_file_case(workdir: Path, case: str) -> tuple[dict, str]:
    train_csv = write(scored("train", 30), workdir / "data/raw/train.csv")
    test = workdir / "data/raw/test.jsonl"
    if case == "missing":
        return {"train": train_csv, "test": "data/raw/test.jsonl"}, "error: data/raw/test.jsonl: file not found"
    if case == "empty":
        test.write_text("")
        return {"train": train_csv, "test": "data/raw/test.jsonl"}, "error: data/raw/test.jsonl: file is empty"
    if case == "header only":
        (workdir / "data/raw/validation.csv").write_text("sentence1,sentence2,score\n")
        return ({"train": train_csv, "validation": "data/raw/validation.csv", "test": write(scored("test", 9), test)},
                "error: data/raw/validation.csv: no data rows")
    pairs = scored("test", 9)[["sentence1", "sentence2"]].set_axis(["anchor", "positive"], axis=1)
    return ({"train": train_csv, "test": write(pairs, test)},
            "error: data/raw/test.jsonl: its columns (anchor, positive) make pairs rows, but the train file "
            "data/raw/train.csv makes scored rows: every split file needs the columns sentence1, sentence2, score "
            "(or the ones mapped under columns: in params.yaml)")


@pytest.mark.parametrize("case", ["missing", "empty", "header only", "other columns"])
def test_a_bad_split_file_is_one_line_naming_it(case: str, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    source, expected = _bad_file_case(workdir, case)
    (workdir / "params.yaml").write_text(yaml.safe_dump(given_params(source)))
    assert expect_one_line_exit(capsys, lambda: ingest.main(["--dataset", "mine"])) == expected
    assert not (workdir / paths.ingested("mine")).exists() and not (workdir / paths.ingest_report("mine")).exists()
    assert no_running_runs(workdir / "mlflow.db")


PARAMS_CASES = {
    "unknown key": ({"train": "a.csv", "tests": "b.csv"},
                    "datasets.mine.source.tests = 'b.csv': not a split; a source mapping takes train, test and optionally "
                    "validation"),
    "no test": ({"train": "a.csv", "validation": "b.csv"},
                "datasets.mine.source.test: missing; a source mapping needs train and test (validation is optional: "
                "carved from train)"),
    "a built-in generator": ({"train": "builtin:similarity_pairs", "test": "b.csv"},
                             "datasets.mine.source.train = 'builtin:similarity_pairs': a built-in generator makes a "
                             "whole dataset; give a file, a folder or hf:<id>[:<split>]"),
    "not a string": ({"train": "a.csv", "test": ["b.csv"]}, "datasets.mine.source.test = ['b.csv']: Input should be a "
                                                             "valid string"),
    "an eval set": ({"train": "a.csv", "test": "b.csv"},
                    "eval_sets.held.source: an eval set is a test set whole; give its one file (or hf:<id>:<split>) as "
                    "source, not a mapping of splits"),
}


@pytest.mark.parametrize("case", sorted(PARAMS_CASES))
def test_a_mapping_params_cannot_take_is_one_line_naming_the_key(case: str, workdir: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    source, expected = PARAMS_CASES[case]
    params = given_params(source)
    if case == "an eval set":
        params = given_params("a.csv")
        params["eval_sets"] = {"held": {"source": source}}
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    assert expect_one_line_exit(capsys, lambda: ingest.main(["--dataset", "mine"])) == f"error: params.yaml: {expected}"
    assert sorted(p.name for p in workdir.iterdir()) == ["params.yaml"]


# --- what reaches the card and MLflow, and DVC's view of the files -----------------------------------------

def test_given_splits_reach_the_card_and_mlflow(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("given")
    train_file, test_file = scored("train", 48), scored("test", 12)
    test_file.loc[0, "sentence1"] = train_file.loc[0, "sentence1"]
    (root / "data/raw").mkdir(parents=True)
    train_file.to_csv(root / "data/raw/train.csv", index=False)
    test_file.to_json(root / "data/raw/test.jsonl", orient="records", lines=True)
    params = tiny_params(tiny_model_dir, ["mine"], ["cosent"])
    params["datasets"]["mine"] = {"source": {"train": "data/raw/train.csv", "test": "data/raw/test.jsonl"},
                                  "score_range": [0, 5], "name": "My own splits"}
    with stage_project(root, params, ["mine"]):
        for stage in (train, evaluate, card):
            stage.main(["--dataset", "mine", "--base", "tiny", "--loss", "cosent"])
    facts = TrainFacts.read(root / paths.train_facts("mine", "tiny", "cosent"))
    assert facts.dataset.source == "train: data/raw/train.csv, test: data/raw/test.jsonl"
    line = ("Split: train and test as the dataset's own files give them; validation carved from the train file, rows "
            "sharing a text kept together; 1 of the 12 test rows share a text with the train file (their test scores "
            "reward memory).")
    assert line in facts.recipe and line in (root / paths.card("mine", "tiny", "cosent")).read_text()
    run_data = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}").get_run(
        RunRef.read(root / paths.mlflow_run("mine", "tiny", "cosent")).run_id).data
    assert run_data.metrics["split_leaked_test_rows"] == 1 and run_data.params["pipeline.split_rule"] == "given_carved"


def test_dvc_ingest_reruns_when_a_split_file_changes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    params = given_params({"train": "data/raw/mine_train.csv", "validation": "data/raw/mine_validation.csv",
                           "test": "data/raw/mine_test.jsonl"})
    env = scratch_project(repo, params)
    scored("train", 30).to_csv(repo / "data/raw/mine_train.csv", index=False)
    scored("validation", 8).to_csv(repo / "data/raw/mine_validation.csv", index=False)
    scored("test", 8).to_json(repo / "data/raw/mine_test.jsonl", orient="records", lines=True)
    dvc = [sys.executable, "-m", "dvc"]
    run([*dvc, "repro", "ingest@mine"], repo, env)  # after the sources stage, which fingerprints the three files
    assert json.loads(run([*dvc, "status", "--json", "ingest@mine"], repo, env).stdout) == {}
    with (repo / "data/raw/mine_test.jsonl").open("a") as handle:
        handle.write(json.dumps({"sentence1": "A new test row.", "sentence2": "One more test row.", "score": 3}) + "\n")
    status = json.loads(run([*dvc, "status", "--json", "sources"], repo, env).stdout)
    assert status == {"sources": [{"changed deps": {"data/raw": "modified"}}]}
    run([*dvc, "repro", "-s", "sources"], repo, env)
    status = json.loads(run([*dvc, "status", "--json", "ingest@mine"], repo, env).stdout)
    assert status == {"ingest@mine": [{"changed deps": {"data/sources/mine.json": "modified"}}]}
