"""The stages' schema of params.yaml: typed, frozen sections that reject unknown keys and bad values.

A bad key or value stops a stage with one line naming the file, the key path, the bad value and what is
allowed, e.g.

    params.yaml: train.learning_rate = -0.1: Input should be greater than 0

Reading the file and a stage's command line is pipeline/core/loading.py; the sweep's section is
pipeline/core/sweep_params.py (no stage reads it).
"""

from __future__ import annotations

import codecs
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from pipeline.core.errors import PipelineError
from pipeline.core.loss_specs import LOSSES, loss_accepts
from pipeline.core.paths import RAW

Shape = Literal["pairs", "triplets", "scored"]
# Columns each shape is normalised to by ingest; `score` is always in [0, 1] after ingest.
SHAPE_COLUMNS: dict[str, tuple[str, ...]] = {
    "pairs": ("anchor", "positive"),
    "triplets": ("anchor", "positive", "negative"),
    "scored": ("sentence1", "sentence2", "score"),
}
CANONICAL_BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Dataset and loss names become folder names (models/<dataset>/<loss>), unquoted arguments of dvc.yaml commands
# and params key paths in dvc.yaml (`losses.<loss>`): no "/" or "..", no spaces, no leading "-" (it would read
# as a command-line option) and no "." at all (DVC reads `losses.cos.v2` as a nested key and stops).
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,99}")
SAFE_NAME_RULE = "use letters, digits, _ and - (not first), at most 100 characters"
# What a winner can be chosen by (report.metric): the pipeline's name -> (metric family of Scores, the library
# evaluator's own key). Retrieval metrics exist for sets with queries (pairs, triplets, BEIR sets); triplet
# accuracy for triplet sets.
METRICS: dict[str, tuple[str, str]] = {
    "spearman": ("similarity", "spearman_cosine"), "pearson": ("similarity", "pearson_cosine"),
    **{f"{name}@10": ("retrieval", f"cosine_{name}@10") for name in ("ndcg", "mrr", "map")},
    **{f"{name}@{k}": ("retrieval", f"cosine_{name}@{k}") for name in ("recall", "precision") for k in (1, 10, 100)},
    **{f"accuracy@{k}": ("retrieval", f"cosine_accuracy@{k}") for k in (1, 10)},
    "triplet_accuracy": ("triplet", "cosine_accuracy"),
}
# How the card, leaderboard and progress lines name a metric of METRICS.
_DISPLAY = {"ndcg": "NDCG", "mrr": "MRR", "map": "MAP", "recall": "Recall", "precision": "Precision", "accuracy": "Accuracy"}
METRIC_NAMES = {"spearman": "Spearman", "pearson": "Pearson", "triplet_accuracy": "triplet accuracy",
                **{metric: f"{_DISPLAY[name]}@{k}" for metric in METRICS if "@" in metric
                   for name, k in [metric.split("@")]}}
BUILTIN_SHAPES = {"docstring_pairs": "pairs", "product_triplets": "triplets", "similarity_pairs": "scored",
                  "docstring_search": "pairs"}


class ParamsError(PipelineError):
    """A params.yaml problem, already phrased as the one line the user sees."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitSources(_Strict):
    """`source: {train: ..., validation: ..., test: ...}`: the user's own splits, kept as given. Each is a local
    file or folder, or `hf:<id>[:<split>]`; without validation, the split stage carves one from train."""

    train: str
    validation: str | None = None
    test: str

    @field_validator("train", "validation", "test")
    @classmethod
    def _one_split_source(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("builtin:"):
            raise ValueError("a built-in generator makes a whole dataset; give a file, a folder or hf:<id>[:<split>]")
        if value is not None and not value.strip():
            raise ValueError("empty; give a file, a folder or hf:<id>[:<split>]")
        return value

    @property
    def given(self) -> dict[str, str]:
        """split -> source, in the order train, validation, test; validation only when given."""
        return {split: value for split in ("train", "validation", "test") if (value := getattr(self, split)) is not None}


def _split_sources(value: dict[Any, Any]) -> SplitSources:
    """The mapping form of `source`, each problem located at `source.<key>` (pydantic nests the location)."""
    problems = [InitErrorDetails(type=PydanticCustomError("split_key", "not a split; a source mapping takes train, "
                                                          "test and optionally validation"), loc=(str(key),), input=key)
                for key in value if key not in SplitSources.model_fields]
    problems += [InitErrorDetails(type=PydanticCustomError("split_missing", "missing; a source mapping needs train and "
                                                           "test (validation is optional: carved from train)"),
                                  loc=(key,), input=value) for key in ("train", "test") if key not in value]
    if problems:
        raise ValidationError.from_exception_data("SplitSources", problems[:1])
    return SplitSources.model_validate(value)


class Prompts(_Strict):
    """Text prepended to the query side (anchor, sentence1) and the document side (positive, negative,
    sentence2) of every pair, in training, in every evaluation and in the saved model (`model.prompts`, so
    `encode_query` / `encode_document` apply them). Instruction-tuned bases (e5, bge, gte, nomic) expect them."""

    query: str | None = None  # e.g. "query: "
    document: str | None = None  # e.g. "passage: "

    @field_validator("query", "document")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("a blank prompt prepends nothing useful; leave the key out instead")
        return value

    @property
    def given(self) -> dict[str, str]:
        """role -> prompt, for the roles that have one."""
        return {role: text for role in ("query", "document") if (text := getattr(self, role)) is not None}


class DatasetParams(_Strict):
    # "builtin:<generator>", a local file/dir, "hf:<hub id>[:<split>]", or {train:, validation:, test:} of the last two
    source: str | SplitSources
    shape: Shape | None = None  # detected from column names when omitted
    name: str | None = None  # human name shown on the card; defaults to the params key
    rows: int | None = Field(default=None, gt=0)  # builtin: rows generated; files: first N rows kept
    corpus: int | None = Field(default=None, gt=0)  # builtin:docstring_search: passages searched (default: all)
    language: str = "en"
    columns: dict[str, str] = {}  # canonical column -> column name in the source
    score_range: tuple[float, float] = (0.0, 1.0)  # declared raw score range, normalised to [0, 1]
    bad_rows: Literal["drop", "error"] = "drop"
    # More rows than this share failing for one reason stops ingest as the file's problem (a wrong column, another
    # encoding); raise it to drop them on purpose (the drops are counted in the ingest report and on the card)
    max_bad_share: float = Field(default=0.2, gt=0, le=1)
    encoding: str = "utf-8"  # of a CSV / TSV / JSON / JSONL file, e.g. latin-1 or cp1252 for old exports
    decimal: Literal[".", ","] = "."  # the decimal mark of scores ("4,5" in files from some locales)
    hf_config: str | None = None
    hf_split: str = "train"
    prompts: Prompts = Prompts()  # this set's, key by key over its base model's and the top-level ones

    @property
    def known_shape(self) -> str | None:
        """The shape when it is known before reading any data: declared, or fixed by a built-in generator."""
        builtin = self.source.removeprefix("builtin:") if isinstance(self.source, str) else None
        return self.shape or BUILTIN_SHAPES.get(builtin or "")

    @property
    def sources(self) -> dict[str | None, str]:
        """What ingest reads: {None: source} for one source the split stage splits, {split: source} for given splits."""
        return self.source.given if isinstance(self.source, SplitSources) else {None: self.source}  # type: ignore[dict-item]

    @property
    def source_text(self) -> str:
        """The source in one line, as cards state it."""
        return ", ".join(f"{split}: {source}" if split else source for split, source in self.sources.items())

    @field_validator("source", mode="before")
    @classmethod
    def _source_form(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return _split_sources(value)
        if not isinstance(value, str):
            raise ValueError("expected a path, builtin:<name>, hf:<id>[:<split>], or a mapping "
                             "{train: ..., validation: ..., test: ...}")
        return value

    @model_validator(mode="after")
    def _corpus_of_a_builtin_search_set(self) -> DatasetParams:
        if self.corpus is not None and self.source != "builtin:docstring_search":
            raise ValueError("corpus sizes builtin:docstring_search only (a BEIR folder's corpus is its corpus.jsonl)")
        return self

    @field_validator("score_range")
    @classmethod
    def _range_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise ValueError(f"must be [low, high] with low < high, got {list(value)}")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}; e.g. utf-8, latin-1, cp1252, utf-16") from None

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: dict[str, str]) -> dict[str, str]:
        known = sorted({c for cols in SHAPE_COLUMNS.values() for c in cols})
        for key in value:
            if key not in known:
                raise ValueError(f"unknown canonical column {key!r}; valid: {', '.join(known)}")
        return value


class MatryoshkaParams(_Strict):
    dims: list[int] = Field(min_length=1)  # embedding sizes trained (and evaluated) as prefixes, e.g. [384, 256, 128, 64]
    weights: list[float] | None = None  # one per dim; default 1 each

    @model_validator(mode="after")
    def _valid_dims(self) -> MatryoshkaParams:
        if any(d <= 0 for d in self.dims) or len(set(self.dims)) != len(self.dims):
            raise ValueError(f"dims must be distinct positive integers, got {self.dims}")
        if self.weights is not None and len(self.weights) != len(self.dims):
            raise ValueError(f"weights needs one number per dim ({len(self.dims)}), got {len(self.weights)}")
        return self


class LossParams(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    class_name: str = Field(alias="class")
    params: dict[str, Any] = {}
    matryoshka: MatryoshkaParams | None = None  # wrap the loss in MatryoshkaLoss

    @field_validator("class_name")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        if value not in LOSSES:
            raise ValueError(f"unknown loss {value!r}; valid: {', '.join(sorted(LOSSES))}")
        return value

    @model_validator(mode="after")
    def _known_loss_params(self) -> LossParams:
        allowed = LOSSES[self.class_name].params
        for key, value in self.params.items():
            if key not in allowed:
                raise ValueError(
                    f"{self.class_name} has no parameter {key!r}; valid: {', '.join(sorted(allowed)) or 'none'}"
                )
            allowed[key](value)  # each checker raises ValueError with the allowed range
        return self


class LoraParams(_Strict):
    rank: int = Field(default=8, gt=0)
    alpha: int = Field(default=16, gt=0)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    target_modules: list[str] = ["query", "key", "value"]


def _steps_or_auto(value: Any, least: int, expected: str) -> Any:
    """A step count of at least `least`, or "auto"; anything else one message (not pydantic's one per union arm)."""
    if isinstance(value, str) and value.strip().isdigit():  # a number given as text, e.g. by an environment
        value = int(value)
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= least):
        return value
    raise ValueError(expected)


class TrainParams(_Strict):
    epochs: float = Field(default=1, gt=0)
    max_steps: int = Field(default=-1, ge=-1)  # -1: use epochs
    batch_size: int = Field(default=32, gt=1)  # >1: in-batch negatives need company
    learning_rate: float = Field(default=2e-5, gt=0, lt=1)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial"] = "linear"
    gradient_accumulation_steps: int = Field(default=1, gt=0)
    max_seq_length: int = Field(default=128, gt=0, le=8192)
    # auto: length-bucketed batches (pipeline/training/sampling.py), without duplicate texts for in-batch-negative losses
    batch_sampler: Literal["auto", "length_bucket", "no_duplicates_length_bucket", "batch_sampler", "no_duplicates",
                           "group_by_label"] = "auto"
    eval_strategy: Literal["no", "steps", "epoch"] = "steps"
    # auto: spaced for about EVALUATIONS_PER_RUN validation passes per run, whatever the data size
    eval_steps: int | Literal["auto"] = "auto"
    validation_pairs: int = Field(default=1000, gt=1)  # larger validation splits are subsampled (seeded) to this
    validation_passages: int = Field(default=2000, gt=0)  # passages a retrieval validation pass searches at most
    # texts a validation pass embeds at a time: no gradients, so larger than training's batches; in bf16 on
    # a 2-core AMX CPU 128 ran a pass 20-35% faster than 32, in fp32 as fast (benchmarks/README.md)
    eval_batch_size: int = Field(default=128, gt=0)
    select: Literal["best", "last"] = "best"  # keep the weights of the best validation score, or the last step's
    # the validation metric that picks the kept weights, stops early and reports to a sweep's pruner: auto = the
    # one report.metric picks the dataset's winner by; or one metric of METRICS (a set without it: Spearman)
    select_metric: str = "auto"
    early_stopping_patience: int | None = Field(default=None, gt=0)  # stop after N evaluations without a new best
    logging_steps: int = Field(default=5, gt=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # Several processes (GPUs) for one cell, through an existing launcher; rank 0 alone writes outputs and MLflow.
    launcher: Literal["none", "torchrun", "accelerate"] = "none"
    num_processes: int = Field(default=1, gt=0)
    freeze_word_embeddings: bool = True  # train everything but the token-embedding table (see pipeline/train.py)
    fast_dropout: bool = True  # on CPU: same dropout, a cheaper random mask (pipeline/training/fast_dropout.py)
    unpad: bool = True  # BERT-style layers: feed-forward work on real tokens only (pipeline/training/unpad.py)
    lora: LoraParams | None = None
    # a resumable checkpoint every N steps (0 = never), or auto: every checkpoint_minutes of the run
    checkpoint_steps: int | Literal["auto"] = "auto"
    checkpoint_minutes: float = Field(default=5.0, gt=0)

    @property
    def checkpoint_every(self) -> int | None:
        """Steps between the checkpoints the trainer saves by itself; None with auto (saved by the clock) or 0."""
        return self.checkpoint_steps if isinstance(self.checkpoint_steps, int) and self.checkpoint_steps else None

    @field_validator("eval_strategy", mode="before")
    @classmethod
    def _yaml_no(cls, value: Any) -> Any:
        return "no" if value is False else value  # YAML 1.1 reads a bare `no` as false

    @field_validator("eval_steps", mode="before")
    @classmethod
    def _positive_steps(cls, value: Any) -> Any:
        return _steps_or_auto(value, 1, "must be a number of steps > 0, or auto")

    @field_validator("checkpoint_steps", mode="before")
    @classmethod
    def _steps_or_never(cls, value: Any) -> Any:
        return _steps_or_auto(value, 0, "must be a number of steps >= 0 (0: never), or auto")

    @field_validator("select_metric")
    @classmethod
    def _known_select_metric(cls, value: str) -> str:
        return _known_metric(value)

    @model_validator(mode="after")
    def _selection_needs_evaluation(self) -> TrainParams:
        if self.eval_strategy == "no" and (self.select == "best" or self.early_stopping_patience):
            raise ValueError("select: best and early_stopping_patience need validation during training; "
                             "set eval_strategy: steps (or epoch), or select: last without early stopping")
        return self


class SplitParams(_Strict):
    validation: float = Field(default=0.1, gt=0, lt=1)
    test: float = Field(default=0.2, gt=0, lt=1)

    @model_validator(mode="after")
    def _leaves_training_data(self) -> SplitParams:
        if self.validation + self.test >= 0.9:
            raise ValueError(f"validation + test = {self.validation + self.test} leaves under 10% to train")
        return self


class AdaptParams(_Strict):
    positive_threshold: float = Field(default=0.5, gt=0, le=1)  # normalised score that counts as a positive
    # pairs -> triplets / scored: how a negative is picked among other rows' positives
    # (pipeline/data/adaptation.py)
    negatives: Literal["lexical", "random", "mined"] = "lexical"
    # scored -> pairs / triplets: graded (partners scored lower as hard negatives) or threshold (the simpler
    # rule graded was compared with in benchmarks/README.md); see pipeline/data/adaptation.py
    scored: Literal["graded", "threshold"] = "graded"


class RunParams(_Strict):
    datasets: list[str] = Field(min_length=1)
    base_models: list[str] = Field(default=["minilm"], min_length=1)
    losses: list[str] = Field(min_length=1)


class BaseModelParams(_Strict):
    """One base model of the matrix: every dataset x loss is fine-tuned from it and scored beside it."""

    model: str  # a Hub id (resolved offline from the local cache, or the packaged MiniLM) or a local directory
    max_seq_length: int | None = Field(default=None, gt=0)  # this base's; train.max_seq_length when unset
    trust_remote_code: bool = False  # run code shipped with a Hub model only when you say so
    prompts: Prompts = Prompts()  # this base's, key by key over the top-level ones (a set's own win over both)


class ReportParams(_Strict):
    # what picks each dataset's winner, on validation: auto = NDCG@10 for a BEIR set (its queries search a
    # corpus), Spearman for every other; or one metric of METRICS for every dataset
    metric: str = "auto"

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        return _known_metric(value)


def _known_metric(value: str) -> str:
    if value != "auto" and value not in METRICS:
        raise ValueError(f"unknown metric {value!r}; valid: auto, {', '.join(METRICS)}")
    return value


class EvaluationParams(_Strict):
    # retrieval scores every query against every passage of its split: a split with more queries than this is
    # scored on a seeded sample of them (each still searching every passage), so the cost grows with the split,
    # not with its square (pipeline/evaluation/evaluators.py)
    max_queries: int = Field(default=10_000, gt=0)


class MlflowParams(_Strict):
    experiment: str = "sentence-embedding-finetune"


class PublishParams(_Strict):
    # MLflow registered model per dataset; {experiment} and {dataset} are filled in
    registered_model: str = "{experiment}-{dataset}"
    alias: str = "champion"  # the alias set on the newest version
    # the Hugging Face Hub id the card points at and `--push` uploads to, e.g. "my-org/minilm-{dataset}";
    # without one the card points at the local folder publish/<dataset>
    hub_model_id: str | None = None
    private: bool = True  # a new Hub repository is private until you make it public

    @field_validator("registered_model", "hub_model_id")
    @classmethod
    def _known_fields(cls, value: str | None) -> str | None:
        if value is not None:
            import string

            fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
            if fields - {"experiment", "dataset"}:
                raise ValueError(f"may use {{experiment}} and {{dataset}} only, got {sorted(fields)}")
        return value

    @field_validator("hub_model_id")
    @classmethod
    def _hub_id(cls, value: str | None) -> str | None:
        if value is not None and value.count("/") != 1:
            raise ValueError(f"must be <user or organisation>/<name>, got {value!r}")
        return value


class Params(_Strict):
    # name -> base model; run.base_models picks the ones the matrix fine-tunes (the name is in every cell's path)
    base_models: dict[str, BaseModelParams] = {"minilm": BaseModelParams(model=CANONICAL_BASE_MODEL)}
    seed: int = 42
    # prepended to the query / document side of every pair (Prompts); a base model or a set may override a key
    prompts: Prompts = Prompts()
    run: RunParams
    datasets: dict[str, DatasetParams]
    # held-out sets only evaluated on, never trained on: every cell is scored on each (and on the other datasets)
    eval_sets: dict[str, DatasetParams] = {}
    losses: dict[str, LossParams]
    split: SplitParams = SplitParams()
    adapt: AdaptParams = AdaptParams()
    train: TrainParams = TrainParams()
    evaluation: EvaluationParams = EvaluationParams()
    report: ReportParams = ReportParams()
    mlflow: MlflowParams = MlflowParams()
    publish: PublishParams = PublishParams()

    @model_validator(mode="before")
    @classmethod
    def _single_base_model(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and ("base_model" in raw or "trust_remote_code" in raw):
            key = "base_model" if "base_model" in raw else "trust_remote_code"
            raise ParamsError(f"{key}: replaced by base_models (a name per base model: {{model: <Hub id or directory>, "
                              f"trust_remote_code: ...}}) and run.base_models (the names to fine-tune), e.g. "
                              f"base_models: {{minilm: {{model: {CANONICAL_BASE_MODEL}}}}}")
        return raw

    @field_validator("datasets", "losses", "base_models")
    @classmethod
    def _safe_names(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        for name in value:
            if not SAFE_NAME.fullmatch(name):
                kind = {"datasets": "dataset", "losses": "loss", "base_models": "base model"}[info.field_name]
                raise ValueError(f"{kind} name {name!r} is not allowed: it becomes a folder name and a dvc.yaml "
                                 f"argument; {SAFE_NAME_RULE}")
        return value
    # read and validated by `python -m pipeline.sweep` only (pipeline/core/sweep_params.py): no stage reads it, so
    # the stage schema does not change when the sweep's rules do
    sweep: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _matrix_names_exist(self) -> Params:
        for kind, names, defined in (("datasets", self.run.datasets, self.datasets), ("losses", self.run.losses, self.losses),
                                     ("base_models", self.run.base_models, self.base_models)):
            for name in names:
                if name not in defined:
                    raise ParamsError(f"run.{kind}: {name!r} is not defined under {kind}:; defined: {', '.join(sorted(defined))}")
        for ds_name in self.run.datasets:
            shape = self.datasets[ds_name].known_shape
            for loss_name in self.run.losses:
                loss_class = self.losses[loss_name].class_name
                if not LOSSES[loss_class].accepts or (shape is not None and not loss_accepts(loss_class, shape)):
                    raise ParamsError(
                        f"run: loss {loss_name!r} ({loss_class}) cannot use dataset {ds_name!r} of shape {shape!r} "
                        f"even after adaptation; it accepts: {', '.join(LOSSES[loss_class].accepts) or 'labelled data only'}"
                    )
        for name, config in self.eval_sets.items():
            if isinstance(config.source, SplitSources):
                raise ParamsError(f"eval_sets.{name}.source: an eval set is a test set whole; give its one file "
                                  f"(or hf:<id>:<split>) as source, not a mapping of splits")
            if name in self.datasets:
                raise ParamsError(f"eval_sets.{name}: the name is taken by datasets.{name}; an eval set needs a name of its own")
        for section, sets in (("datasets", self.datasets), ("eval_sets", self.eval_sets)):
            for name, config in sets.items():
                _check_local_sources(f"{section}.{name}", config)
        return self

    def base(self, name: str) -> BaseModelParams:
        return self.base_models[name]

    def max_seq_length(self, base: str) -> int:
        """The token limit a base model is trained and scored at: its own, else train.max_seq_length."""
        return self.base_models[base].max_seq_length or self.train.max_seq_length

    def prompts_for(self, set_name: str, base: str) -> dict[str, str]:
        """The prompts params.yaml gives a base model on a set (role -> text): per key, the set's own, else the
        base model's entry's, else the top-level ones. A key given nowhere is absent: the model's own stays."""
        return {**self.prompts.given, **self.base(base).prompts.given, **self.data_config(set_name).prompts.given}

    def choice_metric(self, searches_corpus: bool) -> str:
        """The metric (a key of METRICS) a dataset's winner is chosen by: report.metric, or with auto NDCG@10
        for a set whose queries search a corpus (a BEIR set) and Spearman otherwise."""
        if self.report.metric != "auto":
            return self.report.metric
        return "ndcg@10" if searches_corpus else "spearman"

    def selection_metric(self, searches_corpus: bool) -> str:
        """The validation metric (a key of METRICS) that picks a cell's kept weights: train.select_metric, or
        with auto the one its dataset's winner is chosen by."""
        metric = self.train.select_metric
        return self.choice_metric(searches_corpus) if metric == "auto" else metric

    @property
    def selection_name(self) -> str:
        """The metric that chooses kept weights (and a sweep's objective), as a line names it before any set is read."""
        for metric in (self.train.select_metric, self.report.metric):
            if metric != "auto":
                return METRIC_NAMES[metric]
        return "Spearman (NDCG@10 for a BEIR set)"

    def data_config(self, name: str) -> DatasetParams:
        """The entry of a dataset or an eval set."""
        return self.datasets[name] if name in self.datasets else self.eval_sets[name]

    @property
    def evaluation_sets(self) -> list[str]:
        """Every set a trained cell is scored on: the run's datasets, then the eval sets."""
        return [*self.run.datasets, *self.eval_sets]


def _check_local_sources(key: str, config: DatasetParams) -> None:
    """A local source must lie under data/raw/: that folder is what the sources stage depends on in dvc.yaml
    (it fingerprints each set's files for its ingest), so a file elsewhere could change without DVC re-running
    anything."""
    for split, source in config.sources.items():
        if source.startswith(("builtin:", "hf:")):
            continue
        where = f"{key}.source" + (f".{split}" if split else "")
        normal = Path(os.path.normpath(source))
        if normal.is_absolute() or normal.parts[:len(RAW.parts)] != RAW.parts or normal == RAW:
            raise ParamsError(f"{where} = {source!r}: local data must lie under {RAW}/ (a path relative to the "
                              f"project), the folder DVC tracks for ingest; move the file there")


def one_line(error: ValidationError, raw: dict[str, Any], path: Path) -> str:
    first = error.errors()[0]
    value: Any = raw
    parts = []
    for part in first["loc"]:
        if isinstance(value, dict) and part not in value and value.get("type") == part:
            continue  # pydantic names a tagged union's member (`sweep.space.KEY.float.low`): not a key of the file
        parts.append(str(part))
        value = value.get(part) if isinstance(value, dict) else None
    loc = ".".join(parts)
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    shown = f" = {value!r}" if value is not None and not isinstance(value, dict) else ""
    return f"{path}: {loc or '(top level)'}{shown}: {message}"


def parse_params(raw: Any, path: Path = Path("params.yaml")) -> Params:
    """Validate an already-parsed YAML document; raise ParamsError with one line on the first problem."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ParamsError as error:
        raise ParamsError(f"{path}: {error}") from None
    except ValidationError as error:
        raise ParamsError(one_line(error, raw, path)) from None
