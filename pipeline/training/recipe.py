"""The steps of one cell's fine-tune, in the order of sentence-transformers' training examples: the model
(with the pipeline's speed-ups and an optional LoRA adapter), the training data adapted to the loss, the
validation evaluator, and after training the verified save, the curves and the facts the card needs."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core import files, paths
from pipeline.core.errors import PipelineError
from pipeline.core.handoffs import DatasetFacts, IngestReport, LossFacts, Selection, SplitReport, TrainFacts
from pipeline.core.loss_specs import LOSSES
from pipeline.core.params import DatasetParams, Params

VALIDATION_METRIC = "eval_validation_spearman_cosine"  # what the trainer logs for the evaluator named "validation"


def uses_fast_dropout(params: Params) -> bool:
    import torch

    return params.train.fast_dropout and not torch.cuda.is_available()  # GPU masks are cheap; fused SDPA wins there


def build_model(params: Params, dataset: str, base: str) -> Any:
    """The base model ready to fine-tune: card data, sequence length, the CPU speed-ups params ask for, and
    a LoRA adapter when `train.lora` is set."""
    from sentence_transformers import SentenceTransformer

    from pipeline.core.models import display_id, resolve_model, use_prompts
    from pipeline.tracking.card_data import PipelineCardData
    from pipeline.training import fast_dropout, unpad

    config, base_config = params.datasets[dataset], params.base(base)
    card_data = PipelineCardData(local_files_only=True, train_datasets=[{"name": config.name or dataset}],
                                 language=config.language)
    model = SentenceTransformer(resolve_model(base_config.model, f"base_models.{base}.model"), model_card_data=card_data,
                                trust_remote_code=base_config.trust_remote_code)
    model.max_seq_length = params.max_seq_length(base)
    use_prompts(model, params, dataset, base)  # saved with the model: encode_query / encode_document apply them
    shown = display_id(base_config.model)
    model.model_card_data.base_model = shown
    # the model config's _name_or_path would be a local path wherever the config is shown
    model[0].auto_model.config._name_or_path = shown
    if params.train.freeze_word_embeddings:
        # 11.7M of MiniLM's 22.7M weights are the vocabulary table; fine-tuning moves few rows of it, and
        # skipping its dense gradient and Adam update saved ~20% of a CPU step (benchmarks/README.md).
        model[0].auto_model.get_input_embeddings().requires_grad_(False)
    if uses_fast_dropout(params):
        fast_dropout.install(model[0].auto_model)
    if params.train.unpad:
        unpad.install(model[0])
    if lora := params.train.lora:
        from peft import LoraConfig, TaskType

        model.add_adapter(LoraConfig(task_type=TaskType.FEATURE_EXTRACTION, r=lora.rank, lora_alpha=lora.alpha,
                                     lora_dropout=lora.dropout, target_modules=list(lora.target_modules)))
    return model


# the side of a pair each training column is on: the query prompt goes before the first, the document prompt
# before the others (a scored pair's sentence2 too: set both prompts alike for a symmetric task)
COLUMN_ROLES = {"anchor": "query", "sentence1": "query", "positive": "document", "negative": "document",
                "sentence2": "document"}


def role_prompts(model: Any) -> dict[str, str]:
    """The query / document prompts the model is scored with (params.yaml's, else its own): training uses them too."""
    return {role: text for role in ("query", "document") if (text := model.prompts.get(role))}


@dataclass(frozen=True)
class TrainingData:
    frame: Any  # the rows the loss trains on, in its input format
    shape: str  # the dataset's own shape
    rule: str | None  # the adaptation rule that made `frame`, None when the loss takes the shape natively

    def column_prompts(self, prompts: dict[str, str]) -> dict[str, str]:
        """The trainer's `prompts` (column -> text) for the cell's prompts (role -> text)."""
        return {column: prompts[role] for column in self.frame.columns
                if (role := COLUMN_ROLES.get(column)) and role in prompts}

    def as_dataset(self) -> Any:
        from datasets import Dataset

        return Dataset.from_pandas(self.frame, preserve_index=False)


def training_data(params: Params, dataset: str, loss: str, model: Any) -> TrainingData:
    """The training split in the input format the loss needs (pipeline.data.adaptation)."""
    from pipeline.data.adaptation import adapt
    from pipeline.data.splitting import read_split

    frame, shape = read_split(dataset, "train")
    adapted, rule = adapt(frame, shape, LOSSES[params.losses[loss].class_name].needs, params.adapt, params.seed, model)
    if len(adapted) < 2:
        raise PipelineError(f"{paths.split_file(dataset, 'train')}: only {len(adapted)} training rows after adaptation ({rule})")
    return TrainingData(adapted, shape, rule)


@dataclass(frozen=True)
class Validation:
    evaluator: Any  # run by the trainer at every evaluation
    pairs: int  # pairs Spearman scores
    total: int  # pairs in the validation split before subsampling
    metric: str  # what chooses the kept weights (a key of params.METRICS: train.select_metric)
    key: str  # that metric as the trainer logs it
    sampled: str | None = None  # the card's sentence where the choosing evaluator scores a sample of the queries
    partial: bool = False  # the choosing retrieval evaluator searches part of the passages (train.validation_passages)


def validation(params: Params, dataset: str, loss: str, model: Any, searches_corpus: bool) -> Validation:
    """Spearman on the validation split (subsampled where large; and per Matryoshka dimension), and where
    `train.select_metric` (or the report's metric) chooses by retrieval or triplet accuracy, the evaluator of the
    validation split's queries that evaluate scores the cell's validation with (searching the set's corpus)."""
    from pipeline.core.params import METRICS
    from pipeline.data.splitting import read_corpus, read_split
    from pipeline.evaluation.evaluators import retrieval_evaluators, sampled_search, similarity_evaluator
    from pipeline.evaluation.scoring import truncated_dims, validation_pairs

    dims = truncated_dims(params, loss, model.get_embedding_dimension())
    scored, total = validation_pairs(dataset, params)
    similarity = similarity_evaluator(scored, "validation", params.train.eval_batch_size, dims)
    metric = params.selection_metric(searches_corpus)
    family, name = METRICS[metric]
    if family != "similarity":
        frame, shape = read_split(dataset, "validation")
        # each pass searches at most train.validation_passages passages: a whole corpus embedded at every pass
        # would cost more than the training (4,262 stdlib signatures, 14 steps: ~100 s of a 110 s train stage)
        found = {e.name: e for e in retrieval_evaluators(frame, shape, "validation", corpus=read_corpus(dataset),
                                                         max_queries=params.evaluation.max_queries, seed=params.seed,
                                                         max_passages=params.train.validation_passages)}
        if chooser := found.get(f"validation_{family}"):
            from sentence_transformers.sentence_transformer.evaluation import SequentialEvaluator

            # Spearman still runs: its curve is the cell's validation plot whatever chooses
            return Validation(SequentialEvaluator([chooser, similarity]), len(scored), total, metric,
                              f"eval_validation_{family}_{name}", sampled_search(chooser, "validation", " during training"),
                              partial=len(chooser.corpus) < chooser.passages_total)
        metric, name = "spearman", METRICS["spearman"][1]  # scored pairs have no queries: as the report falls back
    return Validation(similarity, len(scored), total, metric, f"eval_validation_{name}")


def _stale_staging(out_dir: Path) -> list[Path]:
    """Staging folders of `out_dir` left by train stages that were killed while saving (their process is gone)."""
    import psutil

    stale = []
    for staging in out_dir.parent.glob(f".{out_dir.name}.*.tmp"):
        pid = staging.name.removeprefix(f".{out_dir.name}.").removesuffix(".tmp")
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            stale.append(staging)
    return stale


def save_verified(model: Any, out_dir: Path, texts: list[str]) -> float:
    """Save the model next to `out_dir` and move it into place only once it reproduces the trained
    embeddings when loaded back; returns the largest embedding difference seen.

    The staging folder is this process's own (`.<loss>.<pid>.tmp`), so two savers never write into one folder;
    if another process put a model at `out_dir` first, this one stops with one line instead of mixing the two."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    files.remove(*_stale_staging(out_dir))
    staging = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.tmp")
    try:
        files.remove(staging)
        model.save(str(staging), create_model_card=False)
        trained = model.encode(texts)
        if not np.isfinite(trained).all():
            raise PipelineError(f"{out_dir}: the trained model's embeddings are NaN or infinite (training diverged); "
                                f"lower train.learning_rate, or use train.precision: fp32")
        reloaded = SentenceTransformer(str(staging), device=str(model.device))
        difference = float(abs(trained - reloaded.encode(texts)).max())
        if not difference <= 1e-5:  # e.g. an adapter saved without its base weights
            raise PipelineError(f"{out_dir}: the saved model does not reproduce the trained embeddings "
                                f"(max diff {difference:.2e})")
        try:
            staging.rename(out_dir)
        except OSError:
            if not out_dir.exists():
                raise
            raise PipelineError(f"{out_dir}: another train stage of this cell saved its model there first; "
                                f"run one train stage per cell at a time") from None
    finally:
        files.remove(staging)
    return difference


def curves_csv(log_history: list[dict[str, Any]], base_validation: float) -> tuple[str, str]:
    """CSV text for the DVC plots: training loss per logging step, validation Spearman per evaluation,
    starting at step 0 with the untuned base model's score on the same validation pairs."""
    # an undefined value (NaN) is a missing point of the curve, not a "nan" DVC plots cannot draw
    loss_rows = ["step,epoch,loss"] + [f"{h['step']},{h['epoch']:.4f},{h['loss']:.6f}" for h in log_history
                                       if math.isfinite(h.get("loss", math.nan))]
    val_rows = ["step,epoch,spearman", f"0,0.0000,{base_validation:.6f}"]
    val_rows += [f"{h['step']},{h['epoch']:.4f},{h[VALIDATION_METRIC]:.6f}" for h in log_history
                 if math.isfinite(h.get(VALIDATION_METRIC, math.nan))]
    return "\n".join(loss_rows) + "\n", "\n".join(val_rows) + "\n"


def card_facts(model: Any, params: Params, eval_steps: int | None, kept_step: int) -> dict[str, Any]:
    """sentence-transformers' card data as it stands after training, with the evaluation schedule, which the
    library leaves out of the card and the seed cards list, and the kept step (the library bolds its row)."""
    model.model_card_data.set_best_model_step(kept_step)
    facts = model.model_card_data.facts()
    # an undefined log value (NaN) is left out: the card's log table shows "-" for it, the JSON holds no NaN
    facts["training_logs"] = [{key: value for key, value in line.items()
                               if not (isinstance(value, float) and not math.isfinite(value))}
                              for line in facts["training_logs"]]
    schedule: dict[str, Any] = {"eval_strategy": params.train.eval_strategy}
    if eval_steps is not None:
        schedule["eval_steps"] = eval_steps
    facts["all_hyperparameters"] = {**schedule, **facts["all_hyperparameters"]}
    if params.train.eval_strategy != "no":
        facts["non_default_hyperparameters"] = {**schedule, **facts["non_default_hyperparameters"]}
    return facts


def recipe_choices(params: Params, dataset: str, loss: str, loss_object: Any, model: Any, data: TrainingData,
                   selection: Selection, checked: Validation, fast_dropout: bool, ingested: IngestReport,
                   split: SplitReport) -> list[str]:
    """What this fine-tune does differently from a plain one with the library's defaults, one sentence each,
    for the card (precision and a LoRA adapter have their own places on it)."""
    from pipeline.core.loss_specs import LOSSES
    from pipeline.training.losses import non_default_params

    train, loss_config = params.train, params.losses[loss]
    choices = [f"Checkpoint kept: {selection.statement}."]
    if checked.pairs < checked.total:
        choices.append(f"Validation Spearman computed on {checked.pairs:,} of the {checked.total:,} validation pairs "
                       f"(a seeded sample; `train.validation_pairs`).")
    if checked.sampled:
        choices.append(checked.sampled)
    changed = non_default_params(loss_object, model)
    if changed:
        choices.append(f"{loss_config.class_name} parameters: " + ", ".join(
            f"{name} {value} (library default {default})" for name, (value, default) in changed.items()) + ".")
    if dropped := dropped_at_ingest(ingested, params.datasets[dataset]):
        choices.append(dropped)
    if split.rule == "partitioned":
        choices.append(f"Split: {SplitReport.RULES[split.rule]}: {split.dropped_crossing:,} rows dropped so that no text "
                       f"is in two splits (the largest group of rows linked by shared texts had {split.largest_group:,}).")
    if split.rule in ("given", "given_carved"):
        dropped = (f"; {split.dropped_crossing:,} train rows dropped so that no text is in both train and validation"
                   if split.dropped_crossing else "")
        leaked = (f"; {split.leaked_test_rows:,} of the {split.rows['test']:,} test rows share a text with the train "
                  f"file (their test scores reward memory)" if split.leaked_test_rows else "")
        choices.append(f"Split: {SplitReport.RULES[split.rule]}{dropped}{leaked}.")
    if data.rule:
        choices.append(f"Training rows adapted to the loss's input: {data.rule}.")
    if prompts := role_prompts(model):
        sides = {"query": "each query (anchor, sentence1)", "document": "each document (positive, negative, sentence2)"}
        choices.append("Prompts: " + " and ".join(f"`{text}` before {sides[role]}" for role, text in prompts.items())
                       + ", in training and in every evaluation; saved with the model (`model.prompts`), so "
                         "`encode_query` / `encode_document` apply them.")
    if train.freeze_word_embeddings and not train.lora:
        choices.append("The token-embedding table is frozen (`train.freeze_word_embeddings`); every other weight trains.")
    if train.batch_sampler == "auto":
        no_duplicates = LOSSES[loss_config.class_name].in_batch_negatives
        choices.append("Batches hold rows of similar token length (shuffled pools of 16 batches, "
                       "`pipeline/training/sampling.py`)" + (", and never the same text twice" if no_duplicates else "") + ".")
    if fast_dropout:
        choices.append("Dropout masks are drawn four to a 64-bit random number (same rates, another random stream; "
                       "`train.fast_dropout`).")
    return choices


def dropped_at_ingest(report: IngestReport, config: DatasetParams) -> str | None:
    """The source rows ingest dropped, by reason, and whether a file-wide share was accepted on purpose."""
    source = report.source
    if not source.dropped:
        return None
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(source.dropped.items(), key=lambda item: -item[1]))
    statement = f"Source rows dropped at ingest: {source.rows_in - source.rows_out:,} of {source.rows_in:,} ({reasons})"
    default = DatasetParams.model_fields["max_bad_share"].default
    if config.max_bad_share > default and max(source.dropped.values()) > default * source.rows_in:
        statement += (f"; more than {default:.0%} failing for one reason, accepted on purpose "
                      f"(`max_bad_share: {config.max_bad_share:g}`)")
    return statement + "."


def train_facts(model: Any, params: Params, dataset: str, base: str, loss: str, data: TrainingData, precision_note: str,
                seconds: float, result: Any, selection: Selection, checked: Validation, eval_steps: int | None,
                recipe: list[str], reload_diff: float) -> TrainFacts:
    """Everything the card stage needs from this training run."""
    from pipeline.core.models import display_id

    config, loss_config, lora = params.datasets[dataset], params.losses[loss], params.train.lora
    matryoshka = loss_config.matryoshka
    return TrainFacts(
        card=card_facts(model, params, eval_steps, selection.kept_step),
        dataset=DatasetFacts(key=dataset, name=config.name or dataset, shape=data.shape, source=config.source_text,
                             train_rows=len(data.frame), adaptation=data.rule),
        loss=LossFacts(name=loss, class_name=loss_config.class_name, params=loss_config.params,
                       matryoshka=matryoshka.model_dump() if matryoshka else None),
        base_model=display_id(params.base(base).model), precision=precision_note, train_seconds=round(seconds, 2),
        adapter=(f"LoraConfig(r={lora.rank}, lora_alpha={lora.alpha}, lora_dropout={lora.dropout}, "
                 f"target_modules={list(lora.target_modules)}) via PEFT; only adapter weights are trained and saved")
                if lora else None,
        train_loss=result.training_loss if math.isfinite(result.training_loss) else None,
        global_step=result.global_step, selection=selection,
        validation_pairs=checked.pairs, validation_total=checked.total, eval_steps=eval_steps, recipe=recipe,
        reload_max_abs_diff=reload_diff,
    )
