"""From raw columns to the canonical table: detect the shape, map columns, apply the bad-row policy and
scale scores to [0, 1].

Shapes (columns after ingest): pairs (anchor, positive), triplets (anchor, positive, negative),
scored (sentence1, sentence2, score in [0, 1]).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.core.params import SHAPE_COLUMNS, DatasetParams

# Conventional source column names, tried in order when params give no mapping.
CONVENTIONAL: dict[str, tuple[str, ...]] = {
    "anchor": ("anchor", "query", "question", "sentence_0"),
    "positive": ("positive", "document", "answer", "passage", "sentence_1"),
    "negative": ("negative", "hard_negative", "sentence_2"),
    "sentence1": ("sentence1", "sentence_1", "text1", "sentence_0"),
    "sentence2": ("sentence2", "sentence_2", "text2", "sentence_1"),
    "score": ("score", "label", "similarity", "similarity_score"),
}


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


def normalise(frame: Any, params: DatasetParams, where: str, row_offset: int = 1) -> tuple[Any, str, CleanReport]:
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


def shape_of(columns: list[str]) -> str:
    """Shape of an already-normalised table, from its canonical columns."""
    return "triplets" if "negative" in columns else "scored" if "score" in columns else "pairs"
