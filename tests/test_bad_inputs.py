"""The bad-input corpus (tests/bad_inputs/ plus bad params): every case exits non-zero with one line
naming the file and position or the params key, leaves no output DVC would take as valid, and leaves no
MLflow run RUNNING."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import mlflow
import pytest
import yaml

from pipeline import ingest, train
from pipeline.core import paths
from tests.conftest import ROOT

CORPUS = Path(__file__).parent / "bad_inputs"
SHIPPED = yaml.safe_load((ROOT / "params.yaml").read_text())

# file -> (dataset params beyond `source`, regex the one-line message must match)
DATA_CASES: dict[str, tuple[dict, str]] = {
    "empty.csv": ({}, r"empty.csv: file is empty"),
    "header_only.csv": ({}, r"header_only.csv: no data rows"),
    "wrong_field_count.csv": ({}, r"wrong_field_count.csv: malformed CSV: .*Expected 2 fields in line 3, saw 3"),
    "missing_columns.csv": ({}, r"missing_columns.csv: cannot detect the shape from columns question, body"),
    "pairs_declared_scored.csv": ({"shape": "scored"}, r"pairs_declared_scored.csv: shape 'scored' needs column"),
    "non_utf8.csv": ({"bad_rows": "error"}, r"non_utf8.csv: not UTF-8 \(byte 0xe9 on line 3.*set encoding: latin-1"),
    "nan_score.csv": ({"bad_rows": "error", "score_range": [0, 5]}, r"nan_score.csv: row 2, column 'score': score NaN"),
    "inf_score.csv": ({"bad_rows": "error", "score_range": [0, 5]}, r"inf_score.csv: row 2, column 'score': score NaN or infinite"),
    "out_of_range_score.csv": ({"bad_rows": "error", "score_range": [0, 5]},
                               r"out_of_range_score.csv: row 2, column 'score': score outside \[0, 5\]"),
    "text_score.csv": ({"bad_rows": "error", "score_range": [0, 5]}, r"text_score.csv: row 2, column 'score': score not a number"),
    "empty_text.csv": ({"bad_rows": "error"}, r"empty_text.csv: row 2, column 'anchor': empty text"),
    "duplicate_rows.csv": ({"bad_rows": "error"}, r"duplicate_rows.csv: row 2, column '\(all\)': duplicate row"),
    "all_rows_bad.csv": ({"score_range": [0, 5]}, r"all_rows_bad.csv: no valid rows left after dropping bad ones"),
    "broken.jsonl": ({}, r"broken.jsonl: line 2: broken JSON"),
    "array_line.jsonl": ({}, r"array_line.jsonl: line 2: expected a JSON object, got list"),
    "empty.jsonl": ({}, r"empty.jsonl: file is empty"),
    "missing_value.jsonl": ({"bad_rows": "error"}, r"missing_value.jsonl: row 2, column 'positive': missing value"),
    "broken.json": ({}, r"broken.json: line 2: broken JSON"),
    "scalar.json": ({}, r"scalar.json: expected a list of objects or an object of column lists"),
    "not_parquet.parquet": ({}, r"not_parquet.parquet: cannot read as parquet"),
    "empty.tsv": ({}, r"empty.tsv: file is empty"),
    "wrong_field_count.tsv": ({}, r"wrong_field_count.tsv: malformed TSV: .*Expected 2 fields in line 3, saw 3"),
    "unknown_format.xml": ({}, r"unknown_format.xml: unknown format '.xml'"),
    "triplets_missing_negative.jsonl": ({"shape": "triplets"}, r"shape 'triplets' needs column\(s\) negative"),
    "not_a_dataset_dir": ({}, r"not_a_dataset_dir: not a directory written by datasets' save_to_disk"),
    "no_such_file.csv": ({}, r"no_such_file.csv: file not found"),
}


def no_running_runs(store: Path) -> bool:
    if not store.exists():
        return True
    client = mlflow.MlflowClient(f"sqlite:///{store}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    return not any(r.info.status == "RUNNING" for r in client.search_runs(experiments))


def expect_one_line_exit(capsys: pytest.CaptureFixture, call) -> str:
    with pytest.raises(SystemExit) as exited:
        call()
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_corpus_is_complete() -> None:
    on_disk = {p.name for p in CORPUS.iterdir()}
    assert on_disk <= set(DATA_CASES) and len(DATA_CASES) + len(PARAMS_CASES) >= 25


@pytest.mark.parametrize("name", sorted(DATA_CASES))
def test_bad_data_file(name: str, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    extra, expected = DATA_CASES[name]
    raw = workdir / "data" / "raw"
    raw.mkdir(parents=True)
    if (CORPUS / name).is_dir():
        shutil.copytree(CORPUS / name, raw / name)
    elif (CORPUS / name).exists():
        shutil.copy(CORPUS / name, raw / name)
    params = copy.deepcopy(SHIPPED)
    params["datasets"]["mine"] = {"source": f"data/raw/{name}", **extra}
    params["run"]["datasets"] = ["mine"]
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    before = (raw / name).read_bytes() if (raw / name).is_file() else None
    line = expect_one_line_exit(capsys, lambda: ingest.main(["--dataset", "mine"]))
    assert re.search(expected, line), line
    assert not (workdir / paths.ingested("mine")).exists() and not (workdir / paths.ingest_report("mine")).exists()
    if before is not None:
        assert (raw / name).read_bytes() == before  # the raw file is never modified
    assert no_running_runs(workdir / "mlflow.db")


def _params_with(change) -> dict:
    params = copy.deepcopy(SHIPPED)
    change(params)
    return params


PARAMS_CASES: dict[str, tuple[dict | str, str]] = {
    "unknown key": (_params_with(lambda p: p["train"].update(lerning_rate=1e-5)), r"train.lerning_rate = 1e-05: unknown key"),
    "unknown loss": (_params_with(lambda p: p["losses"]["mnrl"].update({"class": "MagicLoss"})),
                     r"losses.mnrl.class = 'MagicLoss': unknown loss 'MagicLoss'; valid: AnglELoss"),
    "negative learning rate": (_params_with(lambda p: p["train"].update(learning_rate=-3e-5)),
                               r"train.learning_rate = -3e-05: Input should be greater than 0"),
    "matrix names missing dataset": (_params_with(lambda p: p["run"].update(datasets=["docstrings", "reviews"])),
                                     r"run.datasets: 'reviews' is not defined under datasets:"),
    "loss cannot use dataset": (_params_with(lambda p: p["losses"]["mnrl"].update({"class": "BatchAllTripletLoss", "params": {}})),
                                r"loss 'mnrl' \(BatchAllTripletLoss\) cannot use dataset 'docstrings'"),
    "bad loss parameter": (_params_with(lambda p: p["losses"]["triplet"]["params"].update(distance_metric="HAMMING")),
                           r"distance_metric must be one of EUCLIDEAN, COSINE, MANHATTAN, got 'HAMMING'"),
    "invalid yaml": ("run: [unclosed\n", r"params.yaml: line \d+: not valid YAML"),
    "unknown builtin": (_params_with(lambda p: p["datasets"]["docstrings"].update(source="builtin:nope")),
                        r"source 'builtin:nope': unknown built-in generator; valid: docstring_pairs"),
}


@pytest.mark.parametrize("case", sorted(PARAMS_CASES))
def test_bad_params(case: str, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    params, expected = PARAMS_CASES[case]
    (workdir / "params.yaml").write_text(params if isinstance(params, str) else yaml.safe_dump(params))
    stage = ingest if case == "unknown builtin" else train
    args = ["--dataset", "docstrings"] + ([] if stage is ingest else ["--loss", "mnrl"])
    line = expect_one_line_exit(capsys, lambda: stage.main(args))
    assert re.search(expected, line), line
    assert not (workdir / "models").exists() and not (workdir / "results").exists() and not (workdir / "data").exists()
    assert no_running_runs(workdir / "mlflow.db")


CELL_STAGES = ["train", "evaluate", "card"]


@pytest.mark.parametrize(("stage", "flag"), [(s, "dataset") for s in ["ingest", "split", "baseline", *CELL_STAGES]]
                         + [(s, "loss") for s in CELL_STAGES])
def test_a_name_params_does_not_define_is_one_line(stage: str, flag: str, workdir: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    import importlib

    module = importlib.import_module(f"pipeline.{stage}")
    takes_loss = stage in CELL_STAGES
    shutil.copy(ROOT / "params.yaml", workdir / "params.yaml")
    names = {"dataset": "docstrings", "loss": "mnrl"} | {flag: "nope"}
    args = ["--dataset", names["dataset"]] + (["--loss", names["loss"]] if takes_loss else [])
    line = expect_one_line_exit(capsys, lambda: module.main(args))
    section, defined = (("datasets", "docstrings, products, sts") if flag == "dataset"
                        else ("losses", "mnrl, triplet, cosine, cosent"))
    assert line == f"error: params.yaml: {section}.nope: not defined; defined: {defined}"
    assert sorted(p.name for p in workdir.iterdir()) == ["params.yaml"]  # nothing written, no MLflow store
