"""The shape-adaptation rules, used when a loss needs another input than the dataset's shape (the card states
the rule it used):
- scored -> triplets, and scored -> pairs with a hard negative (adapt.scored: graded, the default): each row
  (sentence1, sentence2) whose sentence1 has a partner in the split (another sentence2 scored with it)
  scored at least SCORE_GAP lower becomes (anchor=sentence1, positive=sentence2, negative=the lowest-scored
  such partner), whatever its own score, so pairs below the threshold still teach an order; a row scored
  >= adapt.positive_threshold without one takes a random sentence2 as the negative (the row is dropped when
  that is a partner of its sentence1); other rows are dropped. Measured on real scored text
  (benchmarks/README.md, "Scored -> pairs / triplets"), this beat the threshold rule for MNRL and Triplet
  where a sentence1 has several partners, and beat (MNRL) or matched (Triplet) it on one-partner data.
- adapt.scored: threshold, the simpler rule that study compared it with: scored -> pairs keeps rows with score >= threshold as
  (anchor, positive); scored -> triplets takes per such row a random partner scored below the threshold,
  else a random other sentence2, as the negative.
- pairs -> triplets: the negative is another row's positive: by default (adapt.negatives = lexical) the one
  sharing the most words with the pair's positive (over LEXICAL_BLOCK rows, among a block of rows sharing
  rare words), or a random one (random), or the hardest non-positive found by
  sentence_transformers.util.mine_hard_negatives using the base model (mined).
- pairs -> scored: each pair scores 1.0, plus one negative per anchor (chosen as for triplets; mined falls
  back to random here so test pairs never depend on a model) at 0.0.
- triplets -> scored: (anchor, positive) scores 1.0 and (anchor, negative) 0.0.
- triplets -> pairs: nothing to adapt; in-batch-negative losses take the negative column as a hard negative.
- any -> binary (ContrastiveLoss): scored pairs with score >= threshold -> 1.0, else 0.0.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.core.params import AdaptParams


def _other_index(rng: random.Random, index: int, size: int) -> int:
    other = rng.randrange(size - 1)
    return other + 1 if other >= index else other


def _words(text: str) -> set[str]:
    return set(re.findall(r"[^\W_]+", text.casefold()))


# Rows a lexical negative is chosen among. Counting shared words over the whole split grows with the square of
# its rows (a telling word may be in 5% of them), so past this many rows the split is cut into even blocks of
# rows grouped by their rarest shared words and each row's negative is chosen within its block: linear in the
# rows (180,000: 53.9 s -> 14.8 s); the negatives share 5% fewer words with their positive than over the whole
# split there, as many as over a whole 50,000-row split. benchmarks/README.md, "Lexical negatives at scale".
LEXICAL_BLOCK = 50_000


def lexical_negatives(positives: list[str], rng: random.Random, block: int | None = None) -> list[str]:
    """For each row, another row's positive sharing the most telling words with its own positive (ties broken
    at random, seeded); a random other positive when none shares a word. Model-independent hard negatives:
    random ones are so easy that a good base model already ranks them near the Spearman ceiling. Over `block`
    rows (default: LEXICAL_BLOCK, read at the call, as the card's rule reads it), chosen within a block of rows
    that share their rarest words."""
    block = LEXICAL_BLOCK if block is None else block
    words = [_words(text) for text in positives]
    frequency = Counter(word for row_words in words for word in row_words)
    common = max(20, len(positives) // 20)  # words in >5% of rows say nothing about relatedness
    telling = [{word for word in row_words if frequency[word] <= common} for row_words in words]
    negatives: list[str] = [""] * len(positives)
    for rows in _lexical_blocks(telling, frequency, block):
        chosen = _most_shared([telling[row] for row in rows], [positives[row] for row in rows], rng)
        for row, choice in zip(rows, chosen):
            negatives[row] = positives[rows[choice]]
    return negatives


def _lexical_blocks(telling: list[set[str]], frequency: Counter, block: int) -> list[list[int]]:
    """The rows in order as one block, or, over `block` rows, even blocks of at most that many rows sorted by
    their two rarest telling words that another row shares: rows that could be each other's negative meet."""
    if len(telling) <= block:
        return [list(range(len(telling)))]

    def rarest(row: int) -> list[str]:
        shared = sorted((frequency[word], word) for word in telling[row] if frequency[word] > 1)
        return [word for _, word in shared[:2]] or ["\uffff"]  # rows sharing nothing last

    order = sorted(range(len(telling)), key=rarest)
    size = -(-len(telling) // -(-len(telling) // block))  # even blocks: never a last block of a few rows
    return [order[start:start + size] for start in range(0, len(order), size)]


def _most_shared(telling: list[set[str]], positives: list[str], rng: random.Random) -> list[int]:
    """Per row, the index of the row sharing the most telling words with it (another text; seeded tie-break),
    else of a random other row."""
    import numpy as np

    postings: dict[str, list[int]] = defaultdict(list)
    for index, row_words in enumerate(telling):
        for word in row_words:
            postings[word].append(index)
    # The rows sharing each telling word are counted in numpy rather than a Counter: the same choices (the
    # ties sorted, one rng.choice), 6x faster at 45,000 rows.
    rows_of = {word: np.asarray(rows) for word, rows in postings.items()}
    text_of = np.unique(np.asarray(positives, dtype=object), return_inverse=True)[1]  # equal texts, one id
    chosen = []
    for index, row_words in enumerate(telling):
        shared = [rows_of[word] for word in row_words]
        others = np.concatenate(shared) if shared else np.empty(0, dtype=np.int64)
        others = others[text_of[others] != text_of[index]]
        if others.size:
            rows, counts = np.unique(others, return_counts=True)
            chosen.append(rng.choice(rows[counts == counts.max()].tolist()))
        else:
            chosen.append(_other_index(rng, index, len(positives)))
    return chosen


def adapt(frame: Any, shape: str, needs: str, adapt_params: AdaptParams, seed: int,
          mining_model: Any = None) -> tuple[Any, str | None]:
    """Return the data in the input format a loss needs, and the rule used (None when native)."""
    import pandas as pd

    rng = random.Random(seed)
    threshold = adapt_params.positive_threshold
    target = "scored" if needs == "binary" else needs
    if shape == target or (shape == "triplets" and target == "pairs"):
        out, rule = frame, None
    elif target == "scored" and shape == "pairs":
        positives = frame["positive"].tolist()
        negatives = _sampled_negatives(positives, adapt_params.negatives, rng)
        rows = []
        for anchor, positive, negative in zip(frame["anchor"], positives, negatives):
            rows.append((anchor, positive, 1.0))
            if negative != positive:
                rows.append((anchor, negative, 0.0))
        out = pd.DataFrame(rows, columns=["sentence1", "sentence2", "score"])
        rule = f"pairs -> scored pairs: each pair scores 1.0, plus one {_negative_rule(adapt_params.negatives, frame)} at 0.0"
    elif target == "scored" and shape == "triplets":
        pos = frame[["anchor", "positive"]].set_axis(["sentence1", "sentence2"], axis=1).assign(score=1.0)
        neg = frame[["anchor", "negative"]].set_axis(["sentence1", "sentence2"], axis=1).assign(score=0.0)
        out = pd.concat([pos, neg]).sort_index(kind="stable").reset_index(drop=True)
        rule = "triplets -> scored pairs: (anchor, positive) scores 1.0, (anchor, negative) 0.0"
    elif target in ("pairs", "triplets") and shape == "scored" and adapt_params.scored == "graded":
        out = _graded_triplets(frame, threshold, rng)
        rule = _graded_rule(target, threshold)
    elif target == "pairs" and shape == "scored":
        out = frame[frame["score"] >= threshold][["sentence1", "sentence2"]].set_axis(["anchor", "positive"], axis=1)
        rule = f"scored pairs -> pairs: rows with normalised score >= {threshold} become (anchor, positive)"
    elif target == "triplets" and shape == "pairs":
        if adapt_params.negatives == "mined" and mining_model is not None:
            out = _mine_negatives(frame, mining_model)
            rule = "pairs -> triplets: hardest non-positive mined with util.mine_hard_negatives using the base model"
        else:
            negatives = _sampled_negatives(frame["positive"].tolist(), adapt_params.negatives, rng)
            out = frame.assign(negative=negatives)
            out = out[out["negative"] != out["positive"]]
            rule = f"pairs -> triplets: the negative is one {_negative_rule(adapt_params.negatives, frame)}"
    elif target == "triplets" and shape == "scored":
        out = _scored_to_triplets(frame, threshold, rng)
        rule = (f"scored pairs -> triplets: per sentence1, each sentence2 scored >= {threshold} is a positive and a "
                f"random partner of the same sentence1 scored below it (else a random other sentence2) the negative")
    else:
        raise PipelineError(f"no adaptation rule from {shape} to {needs}")
    if needs == "binary":
        out = out.assign(score=(out["score"] >= threshold).astype(float))
        rule = (rule + "; " if rule else "") + f"scores binarised at {threshold} for a 0/1 label"
    return out.reset_index(drop=True), rule


NEGATIVE_RULES = {
    "lexical": ("other row's positive sharing the most words with the pair's positive (seeded tie-break; a random "
                "one when none shares a word)"),
    "random": "other row's positive chosen at random (seeded)",
    "mined": "other row's positive chosen at random (seeded)",  # mining applies to pairs -> triplets only
}


def _negative_rule(how: str, frame: Any) -> str:
    if how == "lexical" and len(frame) > LEXICAL_BLOCK:
        return (NEGATIVE_RULES[how][:-1] + f"; the {len(frame):,} rows cut into even blocks of at most "
                f"{LEXICAL_BLOCK:,} grouped by their rarest shared words, the negative chosen within its block)")
    return NEGATIVE_RULES[how]


def _sampled_negatives(positives: list[str], how: str, rng: random.Random) -> list[str]:
    if how == "lexical":
        return lexical_negatives(positives, rng)
    return [positives[_other_index(rng, i, len(positives))] for i in range(len(positives))]


# Normalised score by which the negative must trail the positive: 1 point on a 0-5 scale, the gap the study
# measured (benchmarks/adaptation_rules.py); no other gap was measured.
SCORE_GAP = 0.2
ROUNDING = 1e-9  # normalised scores are floats (0.6 - 0.2 < 0.4): a gap of exactly SCORE_GAP counts


def _graded_triplets(frame: Any, threshold: float, rng: random.Random) -> Any:
    """(anchor, positive, negative) rows from scored pairs by the graded rule (module docstring)."""
    import pandas as pd

    partners: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for s1, s2, score in zip(frame["sentence1"], frame["sentence2"], frame["score"]):
        partners[s1].append((s2, score))
    seconds = frame["sentence2"].tolist()
    rows = []
    for anchor, found in partners.items():
        ranked = sorted((score, text) for text, score in found)  # lowest first; equal scores in text order
        texts = {text for text, _ in found}
        for positive, score in found:
            lowest = next(((low, text) for low, text in ranked if text != positive), None)
            if lowest and lowest[0] <= score - SCORE_GAP + ROUNDING:
                rows.append((anchor, positive, lowest[1]))
            elif score >= threshold:
                # a random sentence2, as the threshold rule does: on one-partner data (like STS-B) a lexical
                # hard negative cost Triplet 0.04 test Spearman there (benchmarks/README.md)
                negative = seconds[rng.randrange(len(seconds))]
                if negative not in texts:  # a partner of the anchor is scored with it, often as high
                    rows.append((anchor, positive, negative))
    return pd.DataFrame(rows, columns=["anchor", "positive", "negative"])


def _graded_rule(target: str, threshold: float) -> str:
    into = "pairs with a hard-negative column (anchor, positive, negative)" if target == "pairs" else "triplets"
    return (f"scored pairs -> {into}: each row whose sentence1 has another sentence2 in the training split scored "
            f"at least {SCORE_GAP} lower (on the normalised 0-1 scale) becomes (sentence1, sentence2, the lowest-scored "
            f"such sentence2); a row scored >= {threshold} with none takes a random sentence2 of the split (seeded) as "
            f"its negative, and is dropped when that one is a partner of the same sentence1; other rows are dropped")


def _scored_to_triplets(frame: Any, threshold: float, rng: random.Random) -> Any:
    import pandas as pd

    by_anchor: dict[str, tuple[list[str], list[str]]] = {}
    for s1, s2, score in zip(frame["sentence1"], frame["sentence2"], frame["score"]):
        good, bad = by_anchor.setdefault(s1, ([], []))
        (good if score >= threshold else bad).append(s2)
    all_second = frame["sentence2"].tolist()
    rows = []
    for anchor, (good, bad) in by_anchor.items():
        for positive in good:
            negative = bad[rng.randrange(len(bad))] if bad else all_second[rng.randrange(len(all_second))]
            if negative != positive:
                rows.append((anchor, positive, negative))
    return pd.DataFrame(rows, columns=["anchor", "positive", "negative"])


def _mine_negatives(frame: Any, model: Any) -> Any:
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    # the anchors as queries and the positives as documents, each with the model's prompt for its side (if any)
    prompts = {role: model.prompts.get(role) or None for role in ("query", "document")}
    mined = mine_hard_negatives(Dataset.from_pandas(frame, preserve_index=False), model, num_negatives=1,
                                sampling_strategy="top", output_format="triplet", verbose=False,
                                query_prompt=prompts["query"], corpus_prompt=prompts["document"])
    return mined.to_pandas().set_axis(["anchor", "positive", "negative"], axis=1)
