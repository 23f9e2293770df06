"""The bad-input corpus (tests/bad_inputs/ plus bad params): every case exits non-zero with one line
naming the file and position or the params key, leaves no output DVC would take as valid, and leaves no
MLflow run RUNNING."""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from pipeline import ingest, train
from pipeline.core import paths
from pipeline.core.handoffs import IngestReport
from pipeline.core.params import ParamsError, parse_params
from tests.conftest import ROOT, prepare_set, tiny_params

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
    "inf_score.csv": ({"bad_rows": "error", "score_range": [0, 5]},
                      r"inf_score.csv: row 2, column 'score': score NaN or infinite"),
    "out_of_range_score.csv": ({"bad_rows": "error", "score_range": [0, 5]},
                               r"out_of_range_score.csv: row 2, column 'score': score outside \[0, 5\]"),
    "text_score.csv": ({"bad_rows": "error", "score_range": [0, 5]},
                       r"text_score.csv: row 2, column 'score': score not a number"),
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
    "loss cannot use dataset": (_params_with(lambda p: p["losses"]["mnrl"].update({"class": "BatchAllTripletLoss",
                                                                                    "params": {}})),
                                r"loss 'mnrl' \(BatchAllTripletLoss\) cannot use dataset 'docstrings'"),
    "bad loss parameter": (_params_with(lambda p: p["losses"]["triplet"]["params"].update(distance_metric="HAMMING")),
                           r"distance_metric must be one of EUCLIDEAN, COSINE, MANHATTAN, got 'HAMMING'"),
    "invalid yaml": ("run: [unclosed\n", r"params.yaml: line \d+: not valid YAML"),
    "unknown builtin": (_params_with(lambda p: p["datasets"]["docstrings"].update(source="builtin:nope")),
                        r"source 'builtin:nope': unknown built-in generator; valid: docstring_pairs"),
    # names become folder names, dvc.yaml arguments and params key paths
    "dataset name escaping the project": (_params_with(lambda p: p["datasets"].update({"../../x": {"source": "x.csv"}})),
                                          r"datasets: dataset name '../../x' is not allowed: it becomes a folder name"),
    "dataset name with a space": (_params_with(lambda p: p["datasets"].update({"my sts": {"source": "x.csv"}})),
                                  r"datasets: dataset name 'my sts' is not allowed.*letters, digits, _ and -"),
    "loss name with a dot": (_params_with(lambda p: p["losses"].update({"cos.v2": {"class": "CoSENTLoss"}})),
                             r"losses: loss name 'cos.v2' is not allowed"),
    "loss name read as an option": (_params_with(lambda p: p["losses"].update({"-v": {"class": "CoSENTLoss"}})),
                                    r"losses: loss name '-v' is not allowed"),
    "source outside data/raw": (_params_with(lambda p: p["datasets"]["docstrings"].update(source="../elsewhere/x.csv")),
                                r"datasets.docstrings.source = '../elsewhere/x.csv': local data must lie under data/raw/"),
    "given split outside data/raw": (_params_with(lambda p: p["datasets"]["docstrings"].update(
        source={"train": "data/raw/train.csv", "test": "/tmp/test.csv"})),
        r"datasets.docstrings.source.test = '/tmp/test.csv': local data must lie under data/raw/"),
    "unknown encoding": (_params_with(lambda p: p["datasets"]["docstrings"].update(encoding="klingon")),
                         r"datasets.docstrings.encoding = 'klingon': unknown encoding 'klingon'"),
}


@pytest.mark.parametrize("case", sorted(PARAMS_CASES))
def test_bad_params(case: str, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    params, expected = PARAMS_CASES[case]
    (workdir / "params.yaml").write_text(params if isinstance(params, str) else yaml.safe_dump(params))
    stage = ingest if case == "unknown builtin" else train
    args = ["--dataset", "docstrings"] + ([] if stage is ingest else ["--base", "minilm", "--loss", "mnrl"])
    line = expect_one_line_exit(capsys, lambda: stage.main(args))
    assert re.search(expected, line), line
    assert not (workdir / "models").exists() and not (workdir / "results").exists() and not (workdir / "data").exists()
    assert no_running_runs(workdir / "mlflow.db")


CELL_STAGES = ["train", "evaluate", "card"]


@pytest.mark.parametrize(("stage", "flag"), [(s, "dataset") for s in ["ingest", "split", "baseline", *CELL_STAGES]]
                         + [(s, "base") for s in ["baseline", *CELL_STAGES]] + [(s, "loss") for s in CELL_STAGES])
def test_a_name_params_does_not_define_is_one_line(stage: str, flag: str, workdir: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    import importlib

    module = importlib.import_module(f"pipeline.{stage}")
    shutil.copy(ROOT / "params.yaml", workdir / "params.yaml")
    names = {"dataset": "docstrings", "base": "minilm", "loss": "mnrl"} | {flag: "nope"}
    args = (["--dataset", names["dataset"]] + (["--base", names["base"]] if stage in ("baseline", *CELL_STAGES) else [])
            + (["--loss", names["loss"]] if stage in CELL_STAGES else []))
    line = expect_one_line_exit(capsys, lambda: module.main(args))
    section, defined = {"dataset": ("datasets", "docstrings, products, sts"), "base": ("base_models", "minilm, mpnet"),
                        "loss": ("losses", "mnrl, triplet, cosine, cosent")}[flag]
    if flag == "dataset" and stage in ("ingest", "split", "baseline"):  # these take an eval set too, each section named
        section, defined = "datasets.nope or eval_sets", f"datasets: {defined}; eval_sets: stdlib_search"
    assert line == f"error: params.yaml: {section}.nope: not defined; defined: {defined}"
    assert sorted(p.name for p in workdir.iterdir()) == ["params.yaml"]  # nothing written, no MLflow store


# --- problems of a whole file, written by the test -------------------------------------------------

def _lines(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


SENTENCES = [f"A person plays instrument number {i}." for i in range(30)]
OTHERS = [f"Someone is playing a tune on instrument {i}." for i in range(30)]
SCORED_0_5 = {"score_range": [0, 5]}


def _scored(score, header: str = "sentence1,sentence2,score", sep: str = ",") -> bytes:
    """30 scored pairs, the i-th scored `score(i)`."""
    return _lines(header, [sep.join([a, b, str(score(i))]) for i, (a, b) in enumerate(zip(SENTENCES, OTHERS))]).encode()


def _pairs(pair, header: str = "anchor,positive", encoding: str = "utf-8") -> bytes:
    return _lines(header, [pair(i) for i in range(30)]).encode(encoding)


# file -> (content, dataset params, regex of the one line, params that fix it (the line's advice) or None)
WRITTEN_CASES: dict[str, tuple[bytes, dict, str, dict | None]] = {
    "comma_decimal.tsv": (
        _scored(lambda i: f"{i % 5},{i % 10}", "sentence1\tsentence2\tscore", "\t"), SCORED_0_5,
        r"comma_decimal.tsv: column 'score' writes scores with a decimal comma \('0,0', 30 rows\): set decimal: ','",
        {"decimal": ","}),
    "percent_scale.csv": (
        _scored(lambda i: round(i * 100 / 29)), SCORED_0_5,
        r"percent_scale.csv: 28 of 30 scores in column 'score' lie outside score_range \[0, 5\] \(they span 0 to 100\): "
        r"set score_range: \[0, 100\]", {"score_range": [0, 100]}),
    "binary_labels_declared_0_5.csv": (
        _scored(lambda i: i % 2, "sentence1,sentence2,label"), SCORED_0_5,
        r"every score in column 'label' lies in the bottom fifth of score_range \[0, 5\] \(they span 0 to 1\).*"
        r"set score_range: \[0, 1\]", {"score_range": [0, 1]}),
    "latin1.csv": (
        _pairs(lambda i: f"Où est le café {i} ?,Le café {i} est près de la gare.", encoding="latin-1"), {},
        r"latin1.csv: not UTF-8 \(byte 0xf9 on line 2, and no UTF-8 text anywhere\); it reads as latin-1: "
        r"set encoding: latin-1", {"encoding": "latin-1"}),
    "cp1252.csv": (
        _pairs(lambda i: f"“Best” kettle {i},A kettle {i} that’s quick to boil", encoding="cp1252"), {},
        r"cp1252.csv: not UTF-8 \(byte 0x93 on line 2.*it reads as cp1252: set encoding: cp1252", {"encoding": "cp1252"}),
    "utf16.csv": (
        _pairs(lambda i: f"question {i},answer {i}", encoding="utf-16"), {},
        r"utf16.csv: the file is UTF-16 .*set encoding: utf-16", {"encoding": "utf-16"}),
    "duplicate_header.csv": (
        _scored(lambda i: f"{i % 6},{5 - i % 6}", "sentence1,sentence2,score,score"), SCORED_0_5,
        r"duplicate_header.csv: the header names column 'score' 2 times; give every column its own name", None),
    "duplicate_key.jsonl": (
        b'{"anchor": "a", "positive": "b"}\n{"anchor": "c", "positive": "d", "anchor": "e"}\n', {},
        r"duplicate_key.jsonl: line 2: key 'anchor' appears twice in one object", None),
    "duplicate_key.json": (
        b'[{"anchor": "a", "positive": "b", "positive": "c"}]', {},
        r"duplicate_key.json: key 'positive' appears twice in one object", None),
    "mapped_column_missing.csv": (
        _scored(lambda i: i % 6, "text_a,text_b,rating"),
        {**SCORED_0_5, "columns": {"sentence1": "text_a", "sentence2": "text_b", "score": "ratng"}},
        r"mapped_column_missing.csv: columns.score = 'ratng': no such column; the file's columns: text_a, text_b, rating$",
        {"columns": {"sentence1": "text_a", "sentence2": "text_b", "score": "rating"}}),
    "list_column.jsonl": (
        "".join(f'{{"sentence1": ["{a}"], "sentence2": "{b}", "score": {i % 6}}}\n'
                for i, (a, b) in enumerate(zip(SENTENCES, OTHERS))).encode(), SCORED_0_5,
        r"list_column.jsonl: 30 of 30 rows \(100%\) fail for one reason, not text \(list\) in column 'sentence1'.*"
        r"map a column of text under columns:", None),
    "mostly_empty_column.csv": (
        _pairs(lambda i: f"{SENTENCES[i]},{OTHERS[i] if i % 3 else ''}"), {},
        r"10 of 30 rows \(33%\) fail for one reason, missing value in column 'positive'", None),
    "text_labels.csv": (
        _scored(lambda i: "entailment" if i % 2 else "neutral", "sentence1,sentence2,label"), SCORED_0_5,
        r"score not a number in column 'label'.*map a numeric score column.*'neutral'", None),
    "constant_scores.csv": (
        _scored(lambda i: 4), SCORED_0_5,
        r"constant_scores.csv: every row has the same score in column 'score'; Spearman, the test metric, needs scores "
        r"that vary", None),
    "contradictory_triplet.csv": (
        _lines("anchor,positive,negative", ["red mug,a red mug,a blue mug", "green cup,a green cup,a green cup"]).encode(),
        {"bad_rows": "error"}, r"row 2, column 'negative': negative equals positive", None),
    "negative_column_is_positive.csv": (
        _pairs(lambda i: f"query {i},{OTHERS[i]},{OTHERS[i]}", "anchor,positive,negative"), {},
        r"30 of 30 rows \(100%\) fail for one reason, negative equals positive in column 'negative'", None),
}


def _write_case(workdir: Path, name: str, dataset: dict) -> Path:
    raw = workdir / "data" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / name).write_bytes(WRITTEN_CASES[name][0])
    params = copy.deepcopy(SHIPPED)
    params["datasets"]["mine"] = {"source": f"data/raw/{name}", **dataset}
    params["run"]["datasets"] = ["mine"]
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    return raw / name


@pytest.mark.parametrize("name", sorted(WRITTEN_CASES))
def test_file_wide_problem_stops_ingest_with_one_line(name: str, workdir: Path, capsys: pytest.CaptureFixture) -> None:
    content, dataset, expected, _ = WRITTEN_CASES[name]
    source = _write_case(workdir, name, dataset)
    line = expect_one_line_exit(capsys, lambda: ingest.main(["--dataset", "mine"]))
    assert re.search(expected, line), line
    assert not (workdir / paths.ingested("mine")).exists() and not (workdir / paths.ingest_report("mine")).exists()
    assert source.read_bytes() == content


@pytest.mark.parametrize("name", sorted(n for n, case in WRITTEN_CASES.items() if case[3]))
def test_the_params_the_line_suggests_read_the_whole_file(name: str, workdir: Path) -> None:
    _, dataset, _, fix = WRITTEN_CASES[name]
    _write_case(workdir, name, {**dataset, **fix})
    ingest.main(["--dataset", "mine"])
    report = IngestReport.read(workdir / paths.ingest_report("mine"))
    assert report.source.rows_in == report.source.rows_out == 30 and report.source.dropped == {}
    frame = pd.read_parquet(workdir / paths.ingested("mine"))
    if "score" in frame:  # every score kept and spread over [0, 1], not squeezed into a corner of it
        assert frame["score"].between(0, 1).all() and frame["score"].max() - frame["score"].min() >= 0.8
    if name == "latin1.csv":
        assert frame["anchor"][0] == "Où est le café 0 ?"


def test_a_file_wide_problem_is_dropped_when_accepted_on_purpose(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    from pipeline.core.params import DatasetParams
    from pipeline.training.recipe import dropped_at_ingest

    name = "mostly_empty_column.csv"
    _, dataset, _, _ = WRITTEN_CASES[name]
    _write_case(workdir, name, dataset)
    line = expect_one_line_exit(capsys, lambda: ingest.main(["--dataset", "mine"]))
    assert line.endswith("(to drop them on purpose: max_bad_share: 0.34 for this dataset)"), line
    _write_case(workdir, name, {**dataset, "max_bad_share": 0.34})
    ingest.main(["--dataset", "mine"])
    report = IngestReport.read(workdir / paths.ingest_report("mine"))
    assert (report.source.rows_in, report.source.rows_out, report.source.dropped) == (30, 20, {"missing value": 10})
    assert len(pd.read_parquet(workdir / paths.ingested("mine"))) == 20
    assert dropped_at_ingest(report, DatasetParams(source="x", max_bad_share=0.34)) == (
        "Source rows dropped at ingest: 10 of 30 (missing value 10); more than 20% failing for one reason, accepted "
        "on purpose (`max_bad_share: 0.34`).")  # the card's recipe says so
    assert dropped_at_ingest(report, DatasetParams(source="x")) == "Source rows dropped at ingest: 10 of 30 (missing value 10)."


def test_no_share_is_offered_when_every_row_fails(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    name = "negative_column_is_positive.csv"
    _write_case(workdir, name, WRITTEN_CASES[name][1])
    assert "max_bad_share" not in expect_one_line_exit(capsys, lambda: ingest.main(["--dataset", "mine"]))


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, "most"])
def test_max_bad_share_out_of_range_is_one_line(bad: object) -> None:
    params = copy.deepcopy(SHIPPED)
    params["datasets"]["sts"]["max_bad_share"] = bad
    with pytest.raises(ParamsError) as error:
        parse_params(params)
    assert "datasets.sts.max_bad_share" in str(error.value) and "\n" not in str(error.value)


def test_row_problems_stay_row_problems(workdir: Path) -> None:
    """One damaged row in a UTF-8 file (valid accents elsewhere), one contradictory triplet: dropped and counted."""
    raw = workdir / "data" / "raw"
    raw.mkdir(parents=True)
    good = [f"Où est la gare {i} ?,La gare {i} est au nord." for i in range(20)]
    (raw / "damaged.csv").write_bytes(_lines("anchor,positive", good).encode() + b"caf\xe9 \xff broken,fine\n")
    (raw / "triplets.csv").write_text(_lines("anchor,positive,negative", [f"query {i},match {i},other {i}" for i in range(20)]
                                             + ["query x,Match  X,match x"]))
    params = copy.deepcopy(SHIPPED)
    params["datasets"].update(damaged={"source": "data/raw/damaged.csv"}, triplets={"source": "data/raw/triplets.csv"})
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    ingest.main(["--dataset", "damaged"])
    ingest.main(["--dataset", "triplets"])
    damaged = IngestReport.read(workdir / paths.ingest_report("damaged")).source
    assert (damaged.rows_in, damaged.rows_out, damaged.dropped) == (21, 20, {"undecodable text": 1})
    triplets = IngestReport.read(workdir / paths.ingest_report("triplets")).source
    assert (triplets.rows_in, triplets.rows_out, triplets.dropped) == (21, 20, {"negative equals positive": 1})


def _tree(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if not p.is_relative_to(skip)}


@pytest.mark.parametrize("stage", ["ingest", "split", "train"])
def test_a_name_that_escapes_the_project_changes_nothing_outside_it(stage: str, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture) -> None:
    # `datasets: {"../../victim": ...}` would make ingest write outside the project, and a train stage
    # started with --dataset ../../victim delete a folder outside it
    import importlib

    project, victim = tmp_path / "work" / "project", tmp_path / "victim"
    for folder in ("models", "results/train", "data/ingested"):
        (victim / folder).mkdir(parents=True)
        (victim / folder / "keep.txt").write_text("the user's own files")
    project.mkdir(parents=True)
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
    module = importlib.import_module(f"pipeline.{stage}")
    args = ["--dataset", "../../victim"] + (["--base", "minilm", "--loss", "mnrl"] if stage == "train" else [])
    before = _tree(tmp_path, project)

    params = copy.deepcopy(SHIPPED)
    params["datasets"]["../../victim"] = {"source": "builtin:docstring_pairs", "rows": 20}
    params["run"]["datasets"] = ["../../victim"]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    line = expect_one_line_exit(capsys, lambda: module.main(args))
    assert "dataset name '../../victim' is not allowed" in line

    (project / "params.yaml").write_text(yaml.safe_dump(SHIPPED))  # valid params, the name only on the command line
    line = expect_one_line_exit(capsys, lambda: module.main(args))
    assert line.startswith("error: params.yaml: datasets.../../victim") and ": not defined; defined: " in line

    assert _tree(tmp_path, project) == before
    assert sorted(p.name for p in project.iterdir()) == ["params.yaml"]


# --- a stage run before the stage that makes its input -------------------------------------------

@pytest.mark.parametrize(("stage", "missing", "writer"), [
    ("split", "data/ingested/sts.parquet", "ingest"),
    ("baseline", "data/test/sts.parquet", "split"),
    ("train", "data/splits/sts/train.parquet", "split"),
])
def test_a_stage_run_before_its_input_exists_names_it(stage: str, missing: str, writer: str, workdir: Path,
                                                      tiny_model_dir: Path, capsys: pytest.CaptureFixture) -> None:
    import importlib

    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params(tiny_model_dir, ["sts"], ["cosent"])))
    args = ["--dataset", "sts"] + {"train": ["--base", "tiny", "--loss", "cosent"], "baseline": ["--base", "tiny"]}.get(stage, [])
    line = expect_one_line_exit(capsys, lambda: importlib.import_module(f"pipeline.{stage}").main(args))
    assert line == f"error: {missing}: not found; the {writer} stage writes it: run `dvc repro` (or that stage first)"
    assert no_running_runs(workdir / "mlflow.db")


def test_evaluate_before_train_names_the_missing_model(workdir: Path, tiny_model_dir: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    from pipeline import evaluate

    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params(tiny_model_dir, ["sts"], ["cosent"])))
    prepare_set("sts")
    capsys.readouterr()  # what those stages printed
    line = expect_one_line_exit(capsys, lambda: evaluate.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"]))
    assert line == "error: models/sts/tiny/cosent: not found; the train stage writes it: run `dvc repro` (or that stage first)"
