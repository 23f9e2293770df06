"""Retrieval sets in BEIR's layout (the layout of BEIR, MTEB's retrieval tasks and NanoBEIR): a folder with

    corpus.jsonl     {"_id": ..., "title": ..., "text": ...} per line (title optional)
    queries.jsonl    {"_id": ..., "text": ...} per line
    qrels/<split>.tsv  query-id, corpus-id, score (a header line is optional); split: train, dev, test

A folder given as a source reads as its own splits (train, dev -> validation, test; an eval set reads test
only), each qrels file as one table of (query text, passage text) rows: pairs when every judgement has one
grade, else scored pairs with the grade scaled to [0, 1] (grade 0: judged not relevant), for the losses that
use a score. A passage's text is its title and text, joined by a space, as BEIR's own evaluation does.
Every problem is one line naming the file and line: a corpus line without `_id`, an id given twice, a qrels
line naming a query or passage the folder does not hold."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.data.textfiles import check_encoding, jsonl_rows

QRELS_FILES = {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}  # our split -> BEIR's file


def is_beir_folder(path: Path) -> bool:
    return path.is_dir() and (path / "corpus.jsonl").is_file()


def is_qrels_file(path: Path) -> bool:
    return path.suffix == ".tsv" and path.parent.name == "qrels" and is_beir_folder(path.parent.parent)


def expand_sources(sources: dict[str | None, str], held_out_whole: bool) -> dict[str | None, str]:
    """A dataset's sources with a BEIR folder given as the one source replaced by its qrels files by split, or
    for an eval set (`held_out_whole`) by its test qrels alone; any other sources as they are."""
    if list(sources) != [None] or not is_beir_folder(folder := Path(sources[None])):
        return sources
    qrels = folder / "qrels"
    if held_out_whole:
        if not (qrels / QRELS_FILES["test"]).is_file():
            raise PipelineError(f"{folder}: a BEIR folder as an eval set needs qrels/test.tsv (its held-out judgements)")
        return {None: str(qrels / QRELS_FILES["test"])}
    found = {split: str(qrels / name) for split, name in QRELS_FILES.items() if (qrels / name).is_file()}
    if "train" not in found or "test" not in found:
        have = sorted(p.name for p in qrels.glob("*.tsv")) if qrels.is_dir() else []
        raise PipelineError(f"{folder}: a BEIR folder as a dataset needs qrels/train.tsv and qrels/test.tsv "
                            f"(qrels/dev.tsv optional: else validation is carved from train); found: "
                            f"{', '.join(have) or 'no qrels/*.tsv'}")
    return found


def corpus_texts(sources: dict[str | None, str], encoding: str = "utf-8") -> list[str]:
    """Every passage of the BEIR folder the sources' judgements come from (none for other sources): what a
    query is searched among, every passage nobody judged included."""
    folders = {Path(source).parent.parent for source in sources.values() if is_qrels_file(Path(source))}
    encoding = "utf-8-sig" if encoding == "utf-8" else encoding
    return [text for folder in sorted(folders) for text in _texts(folder / "corpus.jsonl", encoding).values()]


def read_qrels(path: Path, encoding: str = "utf-8") -> Any:
    """One qrels file of a BEIR folder as rows of (query text, passage text[, score in [0, 1]])."""
    import pandas as pd

    folder = path.parent.parent
    corpus, queries = _texts(folder / "corpus.jsonl", encoding), _texts(folder / "queries.jsonl", encoding)
    judged = _judgements(path, encoding)
    for line_no, query_id, corpus_id, _ in judged:
        if query_id not in queries:
            raise PipelineError(f"{path}: line {line_no}: query-id {query_id!r} is not in {folder / 'queries.jsonl'}")
        if corpus_id not in corpus:
            raise PipelineError(f"{path}: line {line_no}: corpus-id {corpus_id!r} is not in {folder / 'corpus.jsonl'} "
                                f"(the query's answer must be in the corpus)")
    if not judged:
        raise PipelineError(f"{path}: no judgements (expected lines of query-id, corpus-id, score)")
    grades = _grades(folder, encoding)
    if (top := max(grades)) <= 0:
        raise PipelineError(f"{folder / 'qrels'}: every judgement has grade 0 (not relevant): no query has an answer")
    if grades == {top}:  # one grade throughout the folder: plain (query, passage) pairs
        return pd.DataFrame({"anchor": [queries[q] for _, q, _, _ in judged],
                             "positive": [corpus[c] for _, _, c, _ in judged]})
    return pd.DataFrame({"sentence1": [queries[q] for _, q, _, _ in judged],
                         "sentence2": [corpus[c] for _, _, c, _ in judged],
                         "score": [grade / top for _, _, _, grade in judged]})


def _texts(path: Path, encoding: str) -> dict[str, str]:
    """_id -> text of corpus.jsonl or queries.jsonl (a passage's title and text joined by a space)."""
    if not path.is_file():
        raise PipelineError(f"{path}: file not found (a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/)")
    stat = path.stat()
    return _read_texts(path, encoding, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)  # a folder's corpus is read once for all its qrels files (the file's identity in the key)
def _read_texts(path: Path, encoding: str, mtime_ns: int, size: int) -> dict[str, str]:
    check_encoding(path, "utf-8" if encoding == "utf-8-sig" else encoding)
    texts: dict[str, str] = {}
    for line_no, row in jsonl_rows(path, encoding):
        key = row.get("_id")
        if key is None or (isinstance(key, str) and not key.strip()):
            raise PipelineError(f"{path}: line {line_no}: no _id (every line needs an _id and a text)")
        key = str(key)
        text = " ".join(part for part in (row.get("title"), row.get("text")) if isinstance(part, str) and part.strip())
        if not text.strip():
            raise PipelineError(f"{path}: line {line_no}: _id {key!r} has no text")
        if key in texts:
            raise PipelineError(f"{path}: line {line_no}: _id {key!r} appears twice")
        texts[key] = text.strip()
    return texts


def _judgements(path: Path, encoding: str) -> list[tuple[int, str, str, float]]:
    """(line, query-id, corpus-id, grade) of every line of a qrels file; a header line is skipped."""
    rows = []
    for line_no, line in enumerate(path.read_text(encoding=encoding, errors="replace").splitlines(), start=1):
        fields = line.rstrip("\r").split("\t")
        if not line.strip() or (line_no == 1 and fields[-1].strip().lower() == "score"):
            continue
        if len(fields) != 3:
            raise PipelineError(f"{path}: line {line_no}: expected 3 tab-separated fields (query-id, corpus-id, score), "
                                f"got {len(fields)}")
        try:
            grade = float(fields[2])
        except ValueError:
            raise PipelineError(f"{path}: line {line_no}: score {fields[2]!r} is not a number") from None
        if grade < 0:
            raise PipelineError(f"{path}: line {line_no}: score {fields[2]} is negative; grades are 0 (not relevant) or more")
        rows.append((line_no, fields[0].strip(), fields[1].strip(), grade))
    return rows


def _grades(folder: Path, encoding: str) -> set[float]:
    """Every grade in the folder's qrels files: one shape for all its splits."""
    return {grade for path in sorted((folder / "qrels").glob("*.tsv")) for *_, grade in _judgements(path, encoding)}
