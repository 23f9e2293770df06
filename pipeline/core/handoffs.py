"""What one stage hands to another: typed records, each written by one stage and read back through the
same class, so a renamed or missing field fails on read with one line, never as an empty card column.

A record is validated on read (unknown or missing fields, wrong types): a file written by another
version of the pipeline stops the reading stage and asks for `dvc repro`. Scores are grouped by metric
family and keyed by the library's own metric names (`spearman_cosine`, `cosine_ndcg@10`), so readers
take them by structure; the flat names MLflow and `eval.json` users see are built in one place,
`Scores.flat`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.core import files
from pipeline.core.errors import PipelineError
from pipeline.core.params import METRIC_NAMES, METRICS, Shape

SplitRule = Literal["grouped", "partitioned", "held_out", "given", "given_carved"]  # SplitReport.RULES says each in words
H = TypeVar("H", bound="Handoff")


class _Record(BaseModel):
    # allow_inf_nan=False: an undefined metric is left out (missing) where it is computed; NaN is not JSON
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Handoff(_Record):
    WRITER: ClassVar[str]  # the stage that writes it, named in the error when it is missing

    def write(self, path: Path) -> None:
        # sorted keys: a stable file for DVC, and the order the card lists hyperparameters in
        files.write_json(path, self.model_dump(mode="json"))

    @classmethod
    def read(cls: type[H], path: Path) -> H:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PipelineError(f"{path}: not found; the {cls.WRITER} stage writes it: run `dvc repro`") from None
        try:
            return cls.model_validate_json(text)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(top level)"
            raise PipelineError(f"{path}: not a {cls.__name__} this pipeline reads ({where}: {first['msg']}); "
                                f"it was written by another version: run `dvc repro`") from None


# --- ingest ----------------------------------------------------------------------------------------------

class FileReport(_Record):
    rows_in: int
    rows_out: int
    dropped: dict[str, int]  # reason -> rows dropped for it


class IngestReport(Handoff):
    """results/ingest/<set>.json: rows in and out of the source, drops per reason; for given splits, the
    totals over their files and each file's own report."""

    WRITER = "ingest"
    shape: Shape
    source: FileReport
    parts: dict[str, FileReport]  # given split (train / validation / test) -> its file's report; {} for one source


# --- split -----------------------------------------------------------------------------------------------

class SplitReport(Handoff):
    """results/split/<set>.json: rows per split, the rule that made them and the rows it dropped."""

    WRITER = "split"
    RULES: ClassVar[dict[str, str]] = {
        "grouped": "rows sharing a text kept together, each group in one split by a seeded hash",
        "partitioned": ("rows sharing a text kept together; groups too large for one split partitioned by their "
                        "texts, rows whose texts landed in two splits dropped"),
        "held_out": "an eval set: all of it is its test set",
        "given": "train, validation and test as the dataset's own files give them",
        "given_carved": ("train and test as the dataset's own files give them; validation carved from the train file, "
                         "rows sharing a text kept together"),
    }
    shape: Shape
    rows: dict[str, int]  # train / validation / test -> rows
    rule: SplitRule
    dropped_crossing: int  # rows dropped because their texts landed in two splits (partitioned, given_carved)
    largest_group: int  # rows in the largest group linked by shared texts, before the split (of train, carved)
    # given splits only: test rows with a normalised text (as the grouped rule links rows) also in the train file
    leaked_test_rows: int
    corpus: int = 0  # passages the test queries search beyond the set's own (a BEIR set's corpus)

    @property
    def rule_text(self) -> str:
        """The rule in words, as the card and the stage's line state it."""
        return self.RULES[self.rule]


# --- scores (baseline, evaluate) -------------------------------------------------------------------------

class Scores(_Record):
    """One model on one set, by metric family, keyed by the metric names of the library's evaluators."""

    similarity: dict[str, float]  # EmbeddingSimilarityEvaluator: pearson_cosine, spearman_cosine
    dims: dict[int, dict[str, float]] = {}  # the same at each truncated Matryoshka dimension
    retrieval: dict[str, float] = {}  # InformationRetrievalEvaluator (pair, triplet and BEIR sets)
    triplet: dict[str, float] = {}  # TripletEvaluator (triplet sets)
    # similarity with the embeddings quantized as an index stores them (EmbeddingSimilarityEvaluator's
    # `precision`): "int8", "binary" -> pearson_cosine, spearman_cosine; test splits of the cell's own set only
    precision: dict[str, dict[str, float]] = {}
    precision_retrieval: dict[str, dict[str, float]] = {}  # the retrieval metrics the same way (pair / triplet sets)

    @property
    def spearman(self) -> float:
        return self.similarity["spearman_cosine"]

    def value(self, metric: str) -> float | None:
        """A metric by the pipeline's name (params.METRICS, e.g. ndcg@10); None where this set has none."""
        family, key = METRICS[metric]
        return getattr(self, family).get(key)

    def families(self, name: str, suffix: str = "") -> dict[str, dict[str, float]]:
        """{evaluator name: its metrics}, named as the card and MLflow show them: `name`, `name_dim<D>`,
        `name_retrieval`, `name_triplet`, with `suffix` after the dimension or before the family
        (`test_dim64_base_model`, `test_base_model_retrieval`)."""
        families = {name + suffix: self.similarity, **{f"{name}_dim{dim}{suffix}": m for dim, m in self.dims.items()},
                    **{f"{name}_{kind}{suffix}": m for kind, m in self.precision.items()}}
        if self.retrieval:
            families[f"{name}{suffix}_retrieval"] = self.retrieval
        for kind, metrics in self.precision_retrieval.items():
            families[f"{name}{suffix}_{kind}_retrieval"] = metrics
        if self.triplet:
            families[f"{name}{suffix}_triplet"] = self.triplet
        return families

    def flat(self, name: str) -> dict[str, float]:
        """`<evaluator>_<metric>` keys, as the library's evaluators return them (e.g. test_spearman_cosine)."""
        return {f"{evaluator}_{metric}": value
                for evaluator, metrics in self.families(name).items() for metric, value in metrics.items()}


class BaselineScores(Handoff):
    """results/baseline/<base>/<set>.json: one untuned base model on the set's test split, and for a dataset on the
    validation pairs training scores (its step 0: where every validation curve starts)."""

    WRITER = "baseline"
    base_model: str  # as cards and MLflow show it: the Hub id or a local directory's name
    test: Scores
    validation: Scores | None  # None for an eval set, which has no validation split


class SetResult(_Record):
    """A fine-tuned model and the base model on one set."""

    tuned: Scores
    base: Scores

    @property
    def gain(self) -> float:
        return self.tuned.spearman - self.base.spearman


class EvalResult(Handoff):
    """results/evaluate/<dataset>/<base>/<loss>.json: the cell's test scores beside the base model's, on its own
    dataset's test split and on every other set of the run (the other datasets' test splits, the eval sets)."""

    WRITER = "evaluate"
    test: SetResult
    transfer: dict[str, SetResult]  # set name -> scores on that set's test split
    # the kept weights and the base model on the validation split (Spearman on the pairs training scores; the
    # metrics of queries on the whole split): what a winner is chosen by (report.metric); None without validation
    validation: SetResult | None = None

    def on(self, name: str, dataset: str) -> SetResult:
        """The scores on set `name`, this cell's own dataset being `dataset`."""
        return self.test if name == dataset else self.transfer[name]

    def flat(self) -> dict[str, float]:
        """The metric names MLflow shows: test_*, base_test_*, spearman_gain for the cell's own test split;
        transfer/<set>/<metric> (and .../base_<metric>, .../spearman_gain, .../retrieval_<metric> for a set with
        queries) for every other set."""
        metrics = {**self.test.tuned.flat("test"), **{f"base_{k}": v for k, v in self.test.base.flat("test").items()},
                   "spearman_gain": self.test.gain}
        for name, result in self.transfer.items():
            metrics.update({f"transfer/{name}/{k}": v for k, v in result.tuned.similarity.items()})
            metrics.update({f"transfer/{name}/base_{k}": v for k, v in result.base.similarity.items()})
            metrics[f"transfer/{name}/spearman_gain"] = result.gain
            metrics.update({f"transfer/{name}/retrieval_{k}": v for k, v in result.tuned.retrieval.items()})
            metrics.update({f"transfer/{name}/base_retrieval_{k}": v for k, v in result.base.retrieval.items()})
        return metrics


# --- train -----------------------------------------------------------------------------------------------

class DatasetFacts(_Record):
    key: str
    name: str
    shape: Shape
    source: str
    train_rows: int
    adaptation: str | None  # the adaptation rule used, None when the loss takes the shape natively


class LossFacts(_Record):
    name: str
    class_name: str
    params: dict[str, Any]
    matryoshka: dict[str, Any] | None

    @property
    def display_name(self) -> str:
        return f"MatryoshkaLoss({self.class_name})" if self.matryoshka else self.class_name


class Selection(_Record):
    """Which weights the train stage kept, and why (for the card and MLflow)."""

    rule: Literal["best", "last"]
    metric: str  # the validation metric that chose (params.METRICS; train.select_metric)
    kept_step: int
    kept_value: float | None  # the kept weights' validation score in `metric` (None: never evaluated)
    best_step: int | None
    best_value: float | None
    last_step: int
    last_value: float | None  # of the evaluation at the last step, which the trainer always runs
    evaluations: int
    stopped_early_at: int | None  # the step at which early stopping ended training
    # the validation passes searched part of the passages (train.validation_passages): kept_value is not on the
    # scale of evaluate's validation scores, which search them all
    partial_search: bool = False

    @property
    def statement(self) -> str:
        """One sentence for the card: which step's weights these are, and why."""
        name = f"validation {METRIC_NAMES[self.metric]}"
        if self.kept_value is None:
            return f"the weights of the last step ({self.last_step}); no validation ran to choose by"
        if self.rule == "last":
            return (f"the weights of the last step ({self.last_step}, {name} {self.kept_value:.4f}), "
                    f"as `train.select: last` asks")
        last = f"{self.last_value:.4f}" if self.last_value is not None else "not evaluated"
        text = (f"the weights of step {self.kept_step} of {self.last_step}: the best {name} "
                f"({self.kept_value:.4f}) of {self.evaluations} evaluations; the last step had {last}")
        if self.stopped_early_at is not None:
            text += f". Early stopping ended training at step {self.stopped_early_at}"
        return text


class TrainFacts(Handoff):
    """results/train/<dataset>/<base>/<loss>/facts.json: what the card needs from training."""

    WRITER = "train"
    card: dict[str, Any]  # sentence-transformers' card data (its own structure, restored as is by the card stage)
    dataset: DatasetFacts
    loss: LossFacts
    base_model: str  # as cards and MLflow show it: its Hub id or a local directory's name
    precision: str  # e.g. "fp32 (auto: CPU without AVX512-BF16/AMX)"
    adapter: str | None  # the LoRA adapter's config when one was trained
    train_seconds: float
    train_loss: float | None  # None when undefined (a NaN loss)
    global_step: int
    selection: Selection
    validation_pairs: int  # pairs each validation pass scored
    validation_total: int  # pairs in the validation split (more than validation_pairs when subsampled)
    eval_steps: int | None  # steps between validation passes (None: evaluated per epoch or not at all)
    recipe: list[str]  # every choice that differs from a plain fine-tune with the library's defaults, stated
    reload_max_abs_diff: float  # the saved model against the trained one, on a few training texts


class ModelFiles(Handoff):
    """results/train/<dataset>/<base>/<loss>/model_files.json: the saved model folder as written, "<bytes>:<sha256>"
    per file; evaluate, card and publish compare before they trust the folder (core/digests.py)."""

    WRITER = "train"
    files: dict[str, str]


class RunRef(Handoff):
    """results/train/<dataset>/<base>/<loss>/run.json: the cell's MLflow run, which evaluate and card log into."""

    WRITER = "train"
    run_id: str
    experiment_id: str


# --- report, publish -------------------------------------------------------------------------------------

class Winner(Handoff):
    """reports/winners/<dataset>.json: the dataset's winner across base models and losses, by the report's rule
    (the best validation score in the dataset's metric)."""

    WRITER = "report"
    dataset: str
    base: str | None  # None (both): no cell had a validation score to choose by
    loss: str | None
    metric: str = "spearman"  # what chose it (params.METRICS; report.metric)
    validation: float | None  # the winner's, in that metric
    test: float | None
    rule: str
    bases: list[str] = []  # the base models and losses of the cells it was chosen among
    losses: list[str] = []


class PublishRecord(Handoff):
    """results/publish/<dataset>.json: what the publish stage registered and assembled."""

    WRITER = "publish"
    dataset: str
    base: str
    base_model: str
    loss: str
    registered_model: str
    version: str
    alias: str
    model_uri: str  # models:/<name>@<alias>, what mlflow.sentence_transformers.load_model takes
    hub_model_id: str | None  # the id the card points at and --push uploads to
    folder: str  # publish/<dataset>: the model files and the card as README.md
    experiment_id: str  # the MLflow experiment of its runs (the summary links its runs table)


# --- sweep trial -> train stage ---------------------------------------------------------------------------

class SweepTrial(_Record):
    """What `pipeline.sweep` hands the train stages of a trial: the Optuna trial to report validation Spearman
    to, and the cells whose curve is the objective. It travels in one environment variable of the trial's
    `dvc exp run`, the one channel DVC passes on to a stage; pipeline.sweep writes it, pipeline.train reads it."""

    ENV: ClassVar[str] = "PIPELINE_SWEEP_TRIAL"
    storage: str  # the study's Optuna storage URL
    study: str
    trial_id: int  # the trial's id in that storage
    dataset: str  # the objective's cells: this dataset and base model with each of these losses
    base: str
    losses: list[str]

    def environment(self) -> dict[str, str]:
        return {self.ENV: self.model_dump_json()}

    @classmethod
    def from_environment(cls) -> SweepTrial | None:
        """The trial this process trains for; None outside a sweep."""
        text = os.environ.get(cls.ENV)
        return None if text is None else cls.model_validate_json(text)

    def reads(self, dataset: str, base: str, loss: str) -> bool:
        return dataset == self.dataset and base == self.base and loss in self.losses


# --- train metrics (DVC metrics; what a sweep optimises) ----------------------------------------------

class TrainMetrics(Handoff):
    """results/train/<dataset>/<base>/<loss>/metrics.json, DVC metrics (`dvc exp show`): how far validation got,
    which is what a sweep optimises, and whether a sweep's pruner stopped the training early."""

    WRITER = "train"
    metric: str  # the validation metric that chose the kept weights (params.METRICS; train.select_metric)
    best_validation: float | None  # its best value during training; None when training ran no evaluation
    best_step: int | None  # the training step it was reached at
    steps: int  # training steps run
    pruned: bool  # stopped early by a sweep's pruner: the model is complete but trained for `steps` only
