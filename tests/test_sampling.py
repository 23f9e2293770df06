"""Length-bucketed batching: every row exactly once per epoch, seeded, less padding than random
batches, and no text twice in a batch for the no-duplicates variant."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from transformers import AutoTokenizer

from pipeline.core.models import packaged_model_dir
from pipeline.data.builtin import docstring_pairs
from pipeline.training.sampling import (
    LengthBucketBatchSampler,
    NoDuplicatesLengthBucketBatchSampler,
    padding_fraction,
    row_lengths,
)


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(str(packaged_model_dir()))


@pytest.fixture(scope="module")
def pairs() -> Dataset:
    return Dataset.from_list(docstring_pairs(600, seed=1))


def test_row_length_is_the_longest_column_in_tokens(tokenizer) -> None:
    rows = [("a b", "one two three four five"), ("alpha beta gamma delta epsilon zeta", "x")]
    assert row_lengths(rows, tokenizer) == [7, 8]  # [CLS] ... [SEP]
    assert row_lengths(rows) == [23, 35]  # characters without a tokenizer


def test_row_lengths_in_chunks_match_one_call(pairs: Dataset, tokenizer, monkeypatch: pytest.MonkeyPatch) -> None:
    # a large split is tokenized a chunk at a time (bounded memory): every row, in order, the same lengths
    from pipeline.training import sampling

    rows = list(zip(pairs["anchor"], pairs["positive"]))
    whole = [max(len(tokenizer(text)["input_ids"]) for text in row) for row in rows]
    monkeypatch.setattr(sampling, "TOKENIZE_CHUNK", 7)  # 600 rows: 85 full chunks and a partial one
    assert row_lengths(rows, tokenizer) == whole


@pytest.mark.parametrize("cls", [LengthBucketBatchSampler, NoDuplicatesLengthBucketBatchSampler])
def test_epoch_covers_every_row_once_and_cuts_padding(pairs: Dataset, tokenizer, cls: type) -> None:
    sampler = cls(pairs, batch_size=32, drop_last=False, seed=7, tokenizer=tokenizer)
    batches = list(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(len(pairs)))
    assert batches == list(cls(pairs, batch_size=32, drop_last=False, seed=7, tokenizer=tokenizer))  # seeded
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(7)).tolist()
    random_batches = [order[i:i + 32] for i in range(0, len(order), 32)]
    lengths = sampler.lengths
    assert padding_fraction(lengths, batches) < padding_fraction(lengths, random_batches) - 0.15
    sampler.set_epoch(1)
    assert list(sampler) != batches  # a new order every epoch


def test_no_duplicate_texts_within_a_batch(tokenizer) -> None:
    rows = Dataset.from_dict({"anchor": ["same question"] * 10 + [f"q{i}" for i in range(30)],
                              "positive": [f"answer {i}" for i in range(40)]})
    for batch in NoDuplicatesLengthBucketBatchSampler(rows, batch_size=8, drop_last=False, seed=0, tokenizer=tokenizer):
        anchors = [rows[i]["anchor"] for i in batch]
        assert len(anchors) == len(set(anchors))
