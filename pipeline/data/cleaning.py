"""From raw columns to the canonical table: detect the shape, map columns, apply the bad-row policy and
scale scores to [0, 1].

Shapes (columns after ingest): pairs (anchor, positive), triplets (anchor, positive, negative),
scored (sentence1, sentence2, score in [0, 1]).

A bad row is dropped and counted (or, with `bad_rows: error`, stops the stage). A problem of the whole file
is not dropped row by row, which would silently keep a fraction of it: scores written with a decimal comma,
scores on another scale than `score_range`, a column that is mostly empty or not text, all stop the stage with
one line saying what the file most likely is and which params fix it.
"""

from __future__ import annotations

import math
import re
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
# More rows than a dataset's max_bad_share (default 0.2) failing for one reason, and at least PATTERN_ROWS of
# them, is the file's problem, not its rows': e.g. a mapped column that is mostly empty. One or two bad rows of a
# tiny file stay row problems.
PATTERN_ROWS = 3
BOTTOM_SHARE = 0.2  # scores all within this bottom share of score_range: the file likely uses another scale
# Scales scores are commonly given on; the smallest one that holds a file's scores is suggested for score_range.
COMMON_RANGES = ((0, 1), (0, 5), (1, 5), (0, 10), (1, 10), (0, 100))
SCALE_ROWS = 10  # scores that all sit in the bottom fifth of score_range say "another scale" only from this many
# Column of the ingested table naming each row's given split, when params give a mapping of split files.
GIVEN_SPLIT = "split"
COMMA_DECIMAL = re.compile(r"[+-]?\d+,\d+")
POINT_DECIMAL = re.compile(r"[+-]?\d*\.\d+")


def detect_shape(columns: list[str], params: DatasetParams, where: str) -> tuple[str, dict[str, str]]:
    """Decide the shape and the source column for each canonical column."""
    present = set(columns)
    for canonical, name in params.columns.items():
        if name not in present:
            raise PipelineError(f"{where}: columns.{canonical} = {name!r}: no such column; the file's columns: "
                                f"{', '.join(columns)}")

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


@dataclass(frozen=True)
class Problem:
    """Why a row is bad: its column, the kind (what drops are counted by) and a detail for the message."""

    column: str
    kind: str
    detail: str = ""

    @property
    def text(self) -> str:
        return f"{self.kind} ({self.detail})" if self.detail else self.kind


def _text_problem(value: Any) -> tuple[str, str] | None:
    """(kind, detail) of what is wrong with a text cell, None when nothing is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing value", ""
    if not isinstance(value, str):
        return "not text", type(value).__name__
    if not value.strip():
        return "empty text", ""
    if "\ufffd" in value:
        return "undecodable text", ""
    return None


def _number(value: Any, decimal: str) -> float | None:
    """A score as a float (None when it is no number), reading `decimal` as the decimal mark."""
    if isinstance(value, str):
        value = value.strip().replace(",", ".") if decimal == "," else value.strip()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _score_problem(value: Any, low: float, high: float, decimal: str) -> tuple[str | None, float]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "missing value", 0.0
    number = _number(value, decimal)
    if number is None:
        return "score not a number", 0.0
    if math.isnan(number) or math.isinf(number):
        return "score NaN or infinite", 0.0
    if not low <= number <= high:
        return f"score outside [{low:g}, {high:g}]", 0.0
    return None, number


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def _suggested_range(low: float, high: float) -> str:
    fits = [r for r in COMMON_RANGES if r[0] <= low and high <= r[1]]
    best = min(fits, key=lambda r: r[1] - r[0]) if fits else (low, high)
    return f"[{best[0]:g}, {best[1]:g}]"


def check_score_column(values: list[Any], params: DatasetParams, column: str, where: str) -> None:
    """Stop with one line when the score column as a whole looks like a format slip: a decimal comma, or scores
    on another scale than the declared score_range (most outside it, or all within its bottom fifth)."""
    texts = [v.strip() for v in values if isinstance(v, str)]
    commas = [v for v in texts if COMMA_DECIMAL.fullmatch(v)]
    if params.decimal == "." and commas and not any(POINT_DECIMAL.fullmatch(v) for v in texts):
        raise PipelineError(f"{where}: column {column!r} writes scores with a decimal comma ({commas[0]!r}, "
                            f"{len(commas)} rows): set decimal: ',' for this dataset in params.yaml")
    numbers = [n for v in values if (n := _number(v, params.decimal)) is not None and math.isfinite(n)]
    if not numbers:
        return
    low, high = params.score_range
    outside = sum(not low <= n <= high for n in numbers)
    seen = f"they span {min(numbers):g} to {max(numbers):g}"
    if outside >= PATTERN_ROWS and outside > params.max_bad_share * len(values):
        raise PipelineError(f"{where}: {outside} of {len(values)} scores in column {column!r} lie outside score_range "
                            f"[{low:g}, {high:g}] ({seen}): set score_range: {_suggested_range(min(numbers), max(numbers))} "
                            f"for this dataset in params.yaml (or max_bad_share: {share_needed(outside, len(values)):g} "
                            f"to drop those rows)")
    suggested = _suggested_range(min(numbers), max(numbers))
    if (len(numbers) >= SCALE_ROWS and min(numbers) < max(numbers) <= low + BOTTOM_SHARE * (high - low)
            and suggested != f"[{low:g}, {high:g}]"):
        raise PipelineError(f"{where}: every score in column {column!r} lies in the bottom fifth of score_range "
                            f"[{low:g}, {high:g}] ({seen}): the file likely uses another scale; set score_range: "
                            f"{suggested} for this dataset in params.yaml")


def share_needed(count: int, rows: int) -> float:
    """The smallest max_bad_share (in hundredths) that accepts `count` bad rows of `rows`."""
    return min(1.0, -(-100 * count // rows) / 100)


def _file_wide_hint(kind: str, example: Any) -> str:
    hints = {
        "not text": "map a column of text under columns: in params.yaml",
        "missing value": "is the column named under columns: in params.yaml the right one?",
        "empty text": "is the column named under columns: in params.yaml the right one?",
        "undecodable text": "the file is probably not UTF-8: set encoding: for this dataset in params.yaml",
        "score not a number": f"map a numeric score column under columns: in params.yaml (found e.g. {example!r})",
        "duplicate row": "the file may hold its rows twice",
        "negative equals positive": "is negative: under columns: in params.yaml the right column?",
        "negative equals anchor": "is negative: under columns: in params.yaml the right column?",
    }
    return hints.get(kind, "check the file and its params")


def _clean_row(values: dict[str, Any], mapping: dict[str, str], params: DatasetParams
               ) -> tuple[dict[str, Any], Problem | None, Any]:
    """One row's canonical values cleaned (texts stripped, the score scaled to [0, 1]), with its first problem
    (None for a good row) and the value that shows it."""
    low, high = params.score_range
    row: dict[str, Any] = {}
    for canonical, value in values.items():
        if canonical == "score":
            reason, number = _score_problem(value, low, high, params.decimal)
            row["score"] = (number - low) / (high - low)
            found = (reason, "") if reason else None
        else:
            found = _text_problem(value)
            row[canonical] = value.strip() if found is None else value
        if found:
            return row, Problem(mapping[canonical], *found), value
    if "negative" in row:  # contradictory: the negative cannot be the positive or the anchor
        for other in ("positive", "anchor"):
            if _same_text(row["negative"], row[other]):
                return row, Problem(mapping["negative"], f"negative equals {other}"), row["negative"]
    return row, None, None


def normalise(frame: Any, params: DatasetParams, where: str, row_offset: int = 1) -> tuple[Any, str, CleanReport]:
    """Map columns to the canonical names, apply the bad-row policy and scale scores to [0, 1].

    `row_offset` turns a 0-based row index into the row number the user sees in the file."""
    import pandas as pd

    shape, mapping = detect_shape([str(c) for c in frame.columns], params, where)
    report = CleanReport(rows_in=len(frame))
    kept: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    causes: Counter = Counter()  # Problem -> rows dropped for it
    examples: dict[Problem, Any] = {}
    columns = {canonical: frame[source].tolist() for canonical, source in mapping.items()}
    if shape == "scored":
        check_score_column(columns["score"], params, mapping["score"], where)
    for index in range(len(frame)):
        row, problem, example = _clean_row({c: columns[c][index] for c in SHAPE_COLUMNS[shape]}, mapping, params)
        if problem is None:
            key = tuple(row.values())
            if key in seen:
                problem, example = Problem("(all)", "duplicate row"), key
            seen.add(key)
        if problem is not None:
            if params.bad_rows == "error":
                raise PipelineError(f"{where}: row {index + row_offset}, column {problem.column!r}: {problem.text}")
            report.dropped[problem.kind] += 1
            causes[problem] += 1
            examples.setdefault(problem, example)
            continue
        kept.append(row)
    report.rows_out = len(kept)
    if causes:
        problem, count = causes.most_common(1)[0]
        if count >= PATTERN_ROWS and count > params.max_bad_share * report.rows_in:
            in_column = "" if problem.column == "(all)" else f" in column {problem.column!r}"
            accept = (f" (to drop them on purpose: max_bad_share: {share_needed(count, report.rows_in):g} for this "
                      f"dataset)" if count < report.rows_in else "")  # not when it would leave no row
            raise PipelineError(f"{where}: {count} of {report.rows_in} rows ({count / report.rows_in:.0%}) fail for one "
                                f"reason, {problem.text}{in_column}; a share this large is the file's problem, not its "
                                f"rows': {_file_wide_hint(problem.kind, examples[problem])}{accept}")
    if not kept:
        dropped = {f"{problem.text} in column {problem.column!r}": n for problem, n in causes.items()}
        raise PipelineError(f"{where}: no valid rows left after dropping bad ones ({dropped})")
    if shape == "scored" and len(kept) > 1 and len({row["score"] for row in kept}) == 1:
        raise PipelineError(f"{where}: every row has the same score in column {mapping['score']!r}; Spearman, the test "
                            f"metric, needs scores that vary (if every pair is a positive, declare shape: pairs and map "
                            f"anchor / positive under columns: in params.yaml)")
    return pd.DataFrame(kept, columns=list(SHAPE_COLUMNS[shape])), shape, report


def normalise_parts(tables: dict[str | None, Any], params: DatasetParams, where: dict[str | None, str],
                    keep_rows: int | None = None) -> tuple[Any, str, dict[str | None, CleanReport]]:
    """`normalise` each table read from a source the same way, each with its own report, keeping its first
    `keep_rows` rows. One source (key None) gives its table; given splits (keys train, validation, test) give
    one table, each row's split in column GIVEN_SPLIT after the canonical ones. Every split file must make
    the rows the train file makes: a sibling with other columns is a slip, not a dataset of mixed shapes."""
    import pandas as pd

    parts, reports, shapes = [], {}, {}
    for split, table in tables.items():
        frame, shapes[split], reports[split] = normalise(table, params, where[split], row_offset=1)
        frame = frame.head(keep_rows) if keep_rows else frame
        parts.append(frame if split is None else frame.assign(**{GIVEN_SPLIT: split}))
    first, shape = next(iter(shapes.items()))
    for split, other in shapes.items():
        if other != shape:
            raise PipelineError(
                f"{where[split]}: its columns ({', '.join(map(str, tables[split].columns))}) make {other} rows, but the "
                f"{first} file {where[first]} makes {shape} rows: every split file needs the columns "
                f"{', '.join(SHAPE_COLUMNS[shape])} (or the ones mapped under columns: in params.yaml)")
    return (parts[0] if list(tables) == [None] else pd.concat(parts, ignore_index=True)), shape, reports


def total_report(reports: list[CleanReport]) -> CleanReport:
    """Rows in and out and drops per reason over several files."""
    total = CleanReport()
    for report in reports:
        total.rows_in, total.rows_out = total.rows_in + report.rows_in, total.rows_out + report.rows_out
        total.dropped.update(report.dropped)
    return total


def shape_of(columns: list[str]) -> str:
    """Shape of an already-normalised table, from its canonical columns."""
    return "triplets" if "negative" in columns else "scored" if "score" in columns else "pairs"
