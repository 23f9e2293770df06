"""sentence-transformers' model-card data, extended where the pipeline needs more than the library gives.

- Token statistics cover the whole training set (the library stops at the first 100 rows).
- The base model's test scores are shown beside the fine-tuned ones but kept out of `model-index`,
  which must describe this model only, as are the scores at stored precisions (int8, binary), which the Hub
  would list as a second value of the same metric on the same dataset.
- `FACT_FIELDS` are what the train stage saves so the card stage can rebuild the card in its own
  process (the library keeps card data in memory only).
"""

from __future__ import annotations

from typing import Any

from sentence_transformers.sentence_transformer.model_card import SentenceTransformerModelCardData

BASE_SUFFIX = "base_model"  # evaluator name suffix marking the untuned model's column
STORED_MARKERS = ("_int8", "_binary")  # in an evaluator's name: scored at a stored precision
FACT_FIELDS = ("train_datasets", "eval_datasets", "citations", "tags", "all_hyperparameters",
               "non_default_hyperparameters", "training_logs", "best_model_step", "version", "language")


class PipelineCardData(SentenceTransformerModelCardData):
    def _compute_column_stats(self, dataset: Any, column: str, task: str | None = None) -> dict[str, Any]:
        first = dataset[0][column]
        if not isinstance(first, str):
            return super()._compute_column_stats(dataset, column, task)
        tokenizer = self.model.tokenizer
        lengths: list[int] = []
        texts = dataset[column]
        for start in range(0, len(texts), 1024):
            encoded = tokenizer(texts[start:start + 1024], truncation=True, max_length=self.model.max_seq_length)
            lengths.extend(len(ids) for ids in encoded["input_ids"])
        return {
            "dtype": "string",
            "modality": "text",
            "data": {
                "min": f"{min(lengths)} tokens",
                "mean": f"{sum(lengths) / len(lengths):.2f} tokens",
                "max": f"{max(lengths)} tokens",
            },
        }

    def format_eval_metrics(self) -> dict[str, Any]:
        formatted = super().format_eval_metrics()
        for entry in formatted.get("model-index", []):
            entry["results"] = [r for r in entry.get("results", []) if not _kept_out(r.get("dataset", {}).get("type", ""))]
        return formatted

    def facts(self) -> dict[str, Any]:
        """The card data worth keeping after training, JSON-ready."""
        facts = {name: getattr(self, name) for name in FACT_FIELDS}
        for dataset in facts["train_datasets"] + facts["eval_datasets"]:
            dataset.pop("examples", None)  # rendered already into examples_table
            dataset.pop("_example_columns", None)
        return facts

    def restore(self, facts: dict[str, Any]) -> None:
        for name in FACT_FIELDS:
            setattr(self, name, facts[name])


def _kept_out(dataset_type: str) -> bool:
    return dataset_type.endswith(BASE_SUFFIX) or any(marker in dataset_type for marker in STORED_MARKERS)
