"""Readers, validation, grouped splitting and the shape-adaptation rules.

Shapes (columns after ingest): pairs (anchor, positive), triplets (anchor, positive, negative),
scored (sentence1, sentence2, score in [0, 1]).

Adaptation rules, used when a loss needs another input than the dataset's shape (the card states
the rule it used):
- scored -> pairs: rows with score >= adapt.positive_threshold become (anchor=sentence1, positive=sentence2).
- scored -> triplets: for each sentence1, a sentence2 scored >= threshold is the positive and one scored
  below it the negative; if it has none below, a random other sentence2 is the negative.
- pairs -> triplets: the negative is another row's positive: by default (adapt.negatives = lexical) the one
  sharing the most words with the pair's positive, or a random one (random), or the hardest non-positive
  found by sentence_transformers.util.mine_hard_negatives using the base model (mined).
- pairs -> scored: each pair scores 1.0, plus one negative per anchor (chosen as for triplets; mined falls
  back to random here so test pairs never depend on a model) at 0.0.
- triplets -> scored: (anchor, positive) scores 1.0 and (anchor, negative) 0.0.
- triplets -> pairs: nothing to adapt; in-batch-negative losses take the negative column as a hard negative.
- any -> binary (ContrastiveLoss): scored pairs with score >= threshold -> 1.0, else 0.0.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError
from pipeline.params import SHAPE_COLUMNS, AdaptParams, DatasetParams

# Conventional source column names, tried in order when params give no mapping.
CONVENTIONAL: dict[str, tuple[str, ...]] = {
    "anchor": ("anchor", "query", "question", "sentence_0"),
    "positive": ("positive", "document", "answer", "passage", "sentence_1"),
    "negative": ("negative", "hard_negative", "sentence_2"),
    "sentence1": ("sentence1", "sentence_1", "text1", "sentence_0"),
    "sentence2": ("sentence2", "sentence_2", "text2", "sentence_1"),
    "score": ("score", "label", "similarity", "similarity_score"),
}
FILE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


def read_source(source: str, params: DatasetParams, seed: int) -> "Any":
    """Load a source into a pandas DataFrame of raw columns. Raises PipelineError naming the source."""
    import pandas as pd

    if source.startswith("builtin:"):
        from pipeline import builtin_data

        name = source.removeprefix("builtin:")
        if name not in builtin_data.GENERATORS:
            raise PipelineError(f"source {source!r}: unknown built-in generator; valid: {', '.join(sorted(builtin_data.GENERATORS))}")
        kwargs: dict[str, Any] = {"language": params.language} if name == "product_triplets" else {}
        return pd.DataFrame(builtin_data.GENERATORS[name](params.rows or 1000, seed, **kwargs))
    if source.startswith("hf:"):
        return _read_hub(source.removeprefix("hf:"), params)
    return read_file(Path(source))


def _read_hub(dataset_id: str, params: DatasetParams) -> "Any":
    from datasets import load_dataset

    try:
        return load_dataset(dataset_id, params.hf_config, split=params.hf_split).to_pandas()
    except Exception as error:  # the Hub client raises many types; the user needs one line
        raise PipelineError(
            f"source 'hf:{dataset_id}': could not load from the Hugging Face Hub ({type(error).__name__}); "
            f"offline, save a local copy where the Hub is reachable (datasets' save_to_disk or to_parquet) "
            f"and set source to that path"
        ) from None


def read_file(path: Path) -> "Any":
    """Read CSV/TSV/JSON/JSONL/Parquet or a `save_to_disk` directory; errors name file and position."""
    import pandas as pd

    if not path.exists():
        raise PipelineError(f"{path}: file not found")
    if path.is_dir():
        try:
            from datasets import load_from_disk

            return load_from_disk(str(path)).to_pandas()
        except Exception as error:
            raise PipelineError(f"{path}: not a directory written by datasets' save_to_disk ({error})") from None
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise PipelineError(f"{path}: unknown format {path.suffix!r}; expected one of {', '.join(FILE_FORMATS)}")
    if path.stat().st_size == 0:
        raise PipelineError(f"{path}: file is empty")
    try:
        if fmt in ("csv", "tsv"):
            # encoding_errors="replace" keeps undecodable rows visible (as U+FFFD) for the bad-row policy
            frame = pd.read_csv(path, sep="\t" if fmt == "tsv" else ",", dtype=str, keep_default_na=False,
                                na_values=[""], encoding_errors="replace")
        elif fmt == "jsonl":
            frame = pd.DataFrame(_read_jsonl(path))
        elif fmt == "json":
            frame = _read_json(path)
        else:
            frame = pd.read_parquet(path)
    except PipelineError:
        raise
    except pd.errors.ParserError as error:
        raise PipelineError(f"{path}: malformed {fmt.upper()}: {str(error).strip().splitlines()[-1]}") from None
    except Exception as error:
        raise PipelineError(f"{path}: cannot read as {fmt}: {str(error).strip().splitlines()[0]}") from None
    if len(frame) == 0:
        raise PipelineError(f"{path}: no data rows")
    return frame


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise PipelineError(f"{path}: line {line_no}: broken JSON ({error.msg} at column {error.colno})") from None
            if not isinstance(row, dict):
                raise PipelineError(f"{path}: line {line_no}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def _read_json(path: Path) -> "Any":
    import pandas as pd

    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except json.JSONDecodeError as error:
        raise PipelineError(f"{path}: line {error.lineno}: broken JSON ({error.msg})") from None
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return pd.DataFrame(data)  # column-oriented {"anchor": [...], ...}
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(data)
    raise PipelineError(f"{path}: expected a list of objects or an object of column lists")


def detect_shape(columns: list[str], params: DatasetParams, where: str) -> tuple[str, dict[str, str]]:
    """Decide the shape and the source column for each canonical column."""
    present = set(columns)

    def find(canonical: str) -> str | None:
        if canonical in params.columns:
            return params.columns[canonical] if params.columns[canonical] in present else None
        return next((c for c in CONVENTIONAL[canonical] if c in present), None)

    candidates = [params.shape] if params.shape else ["triplets", "scored", "pairs"]
    for shape in candidates:
        mapping = {canonical: find(canonical) for canonical in SHAPE_COLUMNS[shape]}
        if all(mapping.values()) and len(set(mapping.values())) == len(mapping):
            return shape, mapping  # type: ignore[return-value]
    if params.shape:
        missing = [c for c in SHAPE_COLUMNS[params.shape] if not find(c)]
        raise PipelineError(
            f"{where}: shape {params.shape!r} needs column(s) {', '.join(missing)} (map them under columns:); "
            f"found: {', '.join(columns)}"
        )
    raise PipelineError(
        f"{where}: cannot detect the shape from columns {', '.join(columns)}; expected anchor/positive[/negative] "
        f"or sentence1/sentence2/score, or set shape: and columns: in params.yaml"
    )


@dataclass
class CleanReport:
    rows_in: int = 0
    rows_out: int = 0
    dropped: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"rows_in": self.rows_in, "rows_out": self.rows_out, "dropped": dict(sorted(self.dropped.items()))}


def _text_problem(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing value"
    if not isinstance(value, str):
        return f"not text ({type(value).__name__})"
    if not value.strip():
        return "empty text"
    if "\ufffd" in value:
        return "undecodable text"
    return None


def _score_problem(value: Any, low: float, high: float) -> tuple[str | None, float]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "missing value", 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "score not a number", 0.0
    if math.isnan(number) or math.isinf(number):
        return "score NaN or infinite", 0.0
    if not low <= number <= high:
        return f"score outside [{low:g}, {high:g}]", 0.0
    return None, number


def normalise(frame: "Any", params: DatasetParams, where: str, row_offset: int = 1) -> tuple["Any", str, CleanReport]:
    """Map columns to the canonical names, apply the bad-row policy and scale scores to [0, 1].

    `row_offset` turns a 0-based row index into the row number the user sees in the file."""
    import pandas as pd

    shape, mapping = detect_shape([str(c) for c in frame.columns], params, where)
    low, high = params.score_range
    report = CleanReport(rows_in=len(frame))
    kept: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    columns = {canonical: frame[source].tolist() for canonical, source in mapping.items()}
    for index in range(len(frame)):
        row: dict[str, Any] = {}
        problem: tuple[str, str] | None = None
        for canonical in SHAPE_COLUMNS[shape]:
            value = columns[canonical][index]
            if canonical == "score":
                reason, number = _score_problem(value, low, high)
                row["score"] = (number - low) / (high - low)
            else:
                reason = _text_problem(value)
                row[canonical] = value.strip() if reason is None else value
            if reason:
                problem = (mapping[canonical], reason)
                break
        if problem is None:
            key = tuple(row.values())
            if key in seen:
                problem = ("(all)", "duplicate row")
            seen.add(key)
        if problem is not None:
            if params.bad_rows == "error":
                raise PipelineError(f"{where}: row {index + row_offset}, column {problem[0]!r}: {problem[1]}")
            report.dropped[problem[1].split(" (")[0]] += 1
            continue
        kept.append(row)
    report.rows_out = len(kept)
    if not kept:
        raise PipelineError(f"{where}: no valid rows left after dropping bad ones ({report.as_dict()['dropped']})")
    return pd.DataFrame(kept, columns=list(SHAPE_COLUMNS[shape])), shape, report


def _norm_text(text: str) -> str:
    return " ".join(text.casefold().split())


def grouped_split(frame: "Any", shape: str, validation: float, test: float, seed: int) -> dict[str, "Any"]:
    """Split so that no normalised text (anchor/positive, or sentence1/sentence2) is in two splits:
    rows sharing a text are joined into one group (union-find) and each group lands in a split by a
    seeded hash, so the assignment is deterministic and stable as rows are added."""
    linked = ("sentence1", "sentence2") if shape == "scored" else ("anchor", "positive")
    parent: dict[str, str] = {}

    def root(text: str) -> str:
        while parent.setdefault(text, text) != text:
            parent[text] = parent[parent[text]]
            text = parent[text]
        return text

    keys = [[_norm_text(t) for t in texts] for texts in zip(*(frame[c].tolist() for c in linked))]
    for first, *rest in keys:
        for other in rest:
            a, b = root(first), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)

    def bucket(group: str) -> float:
        digest = hashlib.blake2b(f"{seed}\x00{group}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    assignment = []
    for row_keys in keys:
        u = bucket(root(row_keys[0]))
        assignment.append("test" if u < test else "validation" if u < test + validation else "train")
    frame = frame.assign(_split=assignment)
    splits = {name: frame[frame["_split"] == name].drop(columns="_split").reset_index(drop=True)
              for name in ("train", "validation", "test")}
    return splits


def _other_index(rng: random.Random, index: int, size: int) -> int:
    other = rng.randrange(size - 1)
    return other + 1 if other >= index else other


def _words(text: str) -> set[str]:
    return set(re.findall(r"[^\W_]+", text.casefold()))


def lexical_negatives(positives: list[str], rng: random.Random) -> list[str]:
    """For each row, another row's positive sharing the most words with its own positive (ties broken at
    random, seeded); a random other positive when none shares a word. Model-independent hard negatives:
    random ones are so easy that a good base model already ranks them near the Spearman ceiling."""
    words = [_words(text) for text in positives]
    postings: dict[str, list[int]] = defaultdict(list)
    for index, row_words in enumerate(words):
        for word in row_words:
            postings[word].append(index)
    common = max(20, len(positives) // 20)  # words in >5% of rows say nothing about relatedness
    negatives = []
    for index, row_words in enumerate(words):
        overlap: Counter = Counter()
        for word in row_words:
            if len(postings[word]) <= common:
                overlap.update(i for i in postings[word] if positives[i] != positives[index])
        if overlap:
            best = max(overlap.values())
            choice = rng.choice(sorted(i for i, n in overlap.items() if n == best))
        else:
            choice = _other_index(rng, index, len(positives))
        negatives.append(positives[choice])
    return negatives


def adapt(frame: "Any", shape: str, needs: str, adapt_params: AdaptParams, seed: int,
          mining_model: Any = None) -> tuple["Any", str | None]:
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
        rule = f"pairs -> scored pairs: each pair scores 1.0, plus one {NEGATIVE_RULES[adapt_params.negatives]} at 0.0"
    elif target == "scored" and shape == "triplets":
        pos = frame[["anchor", "positive"]].set_axis(["sentence1", "sentence2"], axis=1).assign(score=1.0)
        neg = frame[["anchor", "negative"]].set_axis(["sentence1", "sentence2"], axis=1).assign(score=0.0)
        out = pd.concat([pos, neg]).sort_index(kind="stable").reset_index(drop=True)
        rule = "triplets -> scored pairs: (anchor, positive) scores 1.0, (anchor, negative) 0.0"
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
            rule = f"pairs -> triplets: the negative is {NEGATIVE_RULES[adapt_params.negatives]}"
    elif target == "triplets" and shape == "scored":
        out = _scored_to_triplets(frame, threshold, rng)
        rule = (f"scored pairs -> triplets: per sentence1, a sentence2 scored >= {threshold} is the positive and one "
                f"scored below it (else a random other sentence2) the negative")
    else:
        raise PipelineError(f"no adaptation rule from {shape} to {needs}")
    if needs == "binary":
        out = out.assign(score=(out["score"] >= threshold).astype(float))
        rule = (rule + "; " if rule else "") + f"scores binarised at {threshold} for a 0/1 label"
    return out.reset_index(drop=True), rule


NEGATIVE_RULES = {
    "lexical": "other row's positive sharing the most words with the pair's positive (seeded tie-break)",
    "random": "other row's positive chosen at random (seeded)",
    "mined": "other row's positive chosen at random (seeded)",  # mining applies to pairs -> triplets only
}


def _sampled_negatives(positives: list[str], how: str, rng: random.Random) -> list[str]:
    if how == "lexical":
        return lexical_negatives(positives, rng)
    return [positives[_other_index(rng, i, len(positives))] for i in range(len(positives))]


def _scored_to_triplets(frame: "Any", threshold: float, rng: random.Random) -> "Any":
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


def _mine_negatives(frame: "Any", model: Any) -> "Any":
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    mined = mine_hard_negatives(Dataset.from_pandas(frame, preserve_index=False), model, num_negatives=1,
                                sampling_strategy="top", output_format="triplet", verbose=False)
    return mined.to_pandas().set_axis(["anchor", "positive", "negative"], axis=1)


def shape_of(columns: list[str]) -> str:
    """Shape of an already-normalised table, from its canonical columns."""
    return "triplets" if "negative" in columns else "scored" if "score" in columns else "pairs"


def read_split(dataset: str, split: str) -> tuple["Any", str]:
    """A split as a DataFrame, and its shape."""
    import pandas as pd

    from pipeline import paths

    frame = pd.read_parquet(paths.split_file(dataset, split))
    return frame, shape_of(list(frame.columns))
