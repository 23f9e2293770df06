"""Retrieval sets in BEIR's layout (the layout of BEIR, MTEB's retrieval tasks and NanoBEIR): a folder with

    corpus.jsonl     {"_id": ..., "title": ..., "text": ...} per line (title optional)
    queries.jsonl    {"_id": ..., "text": ...} per line
    qrels/<split>.tsv  query-id, corpus-id, score (a header line is optional); split: train, dev, test

A folder given as a source reads as its own splits (train, dev -> validation, test; an eval set reads test
only), each qrels file as one table of (query text, passage text) rows: pairs when every judgement has one
grade, else scored pairs with the grade scaled to [0, 1] (grade 0: judged not relevant), for the losses that
use a score. A passage's text is its title and text, joined by a space, as BEIR's own evaluation does.
Every problem is one line naming the file and line: a corpus line without `_id`, an id given twice, a qrels
line naming a query or passage the folder does not hold.

The same layout on the Hugging Face Hub (MTEB's retrieval tasks, NanoBEIR: configs `corpus`, `queries` and the
judgements as `default` or `qrels`, split by train / dev / test) reads the same way from `source: hf:<id>`;
its problems name the config and row."""

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
    for an eval set (`held_out_whole`) by its test qrels alone (a BEIR set on the Hub: `hf:<id>:<its split>`; a
    built-in search set: `builtin:<name>:<split>`); any other sources as they are."""
    if list(sources) != [None]:
        return sources
    if sources[None].startswith("builtin:") and sources[None].removeprefix("builtin:") in _builtin_search_sets():
        # a built-in search set: its splits, as a BEIR folder's
        return ({None: f"{sources[None]}:test"} if held_out_whole
                else {split: f"{sources[None]}:{split}" for split in QRELS_FILES})
    if sources[None].startswith("hf:") and is_hub_beir(hub_id := sources[None].removeprefix("hf:")):
        return _hub_sources(hub_id, held_out_whole)
    if not is_beir_folder(folder := Path(sources[None])):
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


def _builtin_search_sets() -> dict:
    from pipeline.data.builtin import SEARCH_SETS

    return SEARCH_SETS


def corpus_texts(sources: dict[str | None, str], encoding: str = "utf-8", size: int | None = None, seed: int = 0) -> list[str]:
    """Every passage of the BEIR folder (or Hub set, or built-in search set: `size` of them, drawn by `seed`) the
    sources' judgements come from (none for other sources): what a query is searched among, every passage
    nobody judged included."""
    builtin = [source.removeprefix("builtin:").partition(":") for source in sources.values() if source.startswith("builtin:")]
    if searched := [(name, split) for name, _, split in builtin if name in _builtin_search_sets()]:
        held_out = tuple(split for _, split in searched if split != "train")
        return _builtin_search_sets()[searched[0][0]](size, seed, held_out)
    folders = {Path(source).parent.parent for source in sources.values() if is_qrels_file(Path(source))}
    encoding = "utf-8-sig" if encoding == "utf-8" else encoding
    hub = {source.removeprefix("hf:").partition(":")[0] for source in sources.values() if source.startswith("hf:")}
    return ([text for folder in sorted(folders) for text in _texts(folder / "corpus.jsonl", encoding).values()]
            + [text for hub_id in sorted(hub) if is_hub_beir(hub_id) for text in _hub_texts(hub_id, "corpus").values()])


def read_qrels(path: Path, encoding: str = "utf-8") -> Any:
    """One qrels file of a BEIR folder as rows of (query text, passage text[, score in [0, 1]])."""
    folder = path.parent.parent
    judged = [(f"{path}: line {line_no}", query_id, corpus_id, grade)
              for line_no, query_id, corpus_id, grade in _judgements(path, encoding)]
    if not judged:
        raise PipelineError(f"{path}: no judgements (expected lines of query-id, corpus-id, score)")
    return _qrels_table(judged, _texts(folder / "queries.jsonl", encoding), _texts(folder / "corpus.jsonl", encoding),
                        _grades(folder, encoding), (str(folder / "queries.jsonl"), str(folder / "corpus.jsonl")),
                        str(folder / "qrels"))


def _qrels_table(judged: list[tuple[str, str, str, float]], queries: dict[str, str], corpus: dict[str, str],
                 grades: set[float], names: tuple[str, str], where: str) -> Any:
    """Judgements ((where, query-id, corpus-id, grade)) as rows of (query text, passage text[, score in [0, 1]]):
    pairs when the set (`grades`: every grade of all its splits, so every split has one shape) has one grade."""
    import pandas as pd

    for place, query_id, corpus_id, _ in judged:
        if query_id not in queries:
            raise PipelineError(f"{place}: query-id {query_id!r} is not in {names[0]}")
        if corpus_id not in corpus:
            raise PipelineError(f"{place}: corpus-id {corpus_id!r} is not in {names[1]} (the query's answer must be in "
                                f"the corpus)")
    if (top := max(grades)) <= 0:
        raise PipelineError(f"{where}: every judgement has grade 0 (not relevant): no query has an answer")
    if grades == {top}:  # one grade throughout the set: plain (query, passage) pairs
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


# --- the same layout on the Hugging Face Hub -------------------------------------------------------------------
HUB_QRELS_CONFIGS = ("default", "qrels")  # MTEB's retrieval tasks name their judgements "default", NanoBEIR "qrels"
HUB_SPLITS = {"train": ("train",), "validation": ("dev", "validation"), "test": ("test",)}  # ours -> the Hub's


@lru_cache(maxsize=8)
def _hub_configs(hub_id: str) -> tuple[str, ...]:
    from datasets import get_dataset_config_names

    try:
        return tuple(get_dataset_config_names(hub_id))
    except Exception:  # unreachable or unknown: loading it fails next, with the line every hf: source gets
        return ()


def is_hub_beir(hub_id: str) -> bool:
    """Whether a Hub dataset is in BEIR's layout: corpus and queries configs beside its judgements."""
    configs = _hub_configs(hub_id.partition(":")[0])
    return {"corpus", "queries"} <= set(configs) and any(name in configs for name in HUB_QRELS_CONFIGS)


@lru_cache(maxsize=16)
def _hub_config(hub_id: str, config: str) -> Any:
    """One config of a Hub dataset (every split), loaded once per process."""
    from datasets import disable_progress_bars, enable_progress_bars, load_dataset

    disable_progress_bars()  # a bar per config and split on stderr, around the one line a problem gets
    try:
        return load_dataset(hub_id, config)
    except Exception as error:  # the Hub client raises many types; the user needs one line
        raise PipelineError(f"source 'hf:{hub_id}': could not load its {config!r} config from the Hugging Face Hub "
                            f"({type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''})") from None
    finally:
        enable_progress_bars()


def _hub_qrels(hub_id: str) -> Any:
    configs = _hub_configs(hub_id)
    return _hub_config(hub_id, next(name for name in HUB_QRELS_CONFIGS if name in configs))


def _hub_sources(hub_id: str, held_out_whole: bool) -> dict[str | None, str]:
    """`hf:<id>:<the Hub's split>` per split of ours the set's judgements have (as expand_sources does for a folder)."""
    splits = list(_hub_qrels(hub_id))
    found = {ours: f"hf:{hub_id}:{name}" for ours, names in HUB_SPLITS.items() for name in names if name in splits}
    if held_out_whole:
        if "test" not in found:
            raise PipelineError(f"source 'hf:{hub_id}': a BEIR set as an eval set needs test judgements; its splits: "
                                f"{', '.join(splits)}")
        return {None: found["test"]}
    if "train" not in found or "test" not in found:
        raise PipelineError(f"source 'hf:{hub_id}': a BEIR set as a dataset needs train and test judgements (dev "
                            f"optional: else validation is carved from train); its splits: {', '.join(splits)}")
    return found


def _hub_texts(hub_id: str, config: str) -> dict[str, str]:
    """_id -> text of the corpus or queries config (its one split; a passage's title and text joined by a space)."""
    rows = next(iter(_hub_config(hub_id, config).values()))
    texts: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        place = f"source 'hf:{hub_id}': {config} row {number}"
        key = row.get("_id")
        if key is None or (isinstance(key, str) and not key.strip()):
            raise PipelineError(f"{place}: no _id (every row needs an _id and a text)")
        text = " ".join(part for part in (row.get("title"), row.get("text")) if isinstance(part, str) and part.strip())
        if not text.strip():
            raise PipelineError(f"{place}: _id {key!r} has no text")
        if str(key) in texts:
            raise PipelineError(f"{place}: _id {key!r} appears twice")
        texts[str(key)] = text.strip()
    return texts


def _hub_judgements(hub_id: str, split: str) -> list[tuple[str, str, str, float]]:
    """(where, query-id, corpus-id, grade) of every row of a judgements split (no score column: grade 1)."""
    judged = []
    for number, row in enumerate(_hub_qrels(hub_id)[split], start=1):
        place = f"source 'hf:{hub_id}': judgements {split} row {number}"
        if row.get("query-id") is None or row.get("corpus-id") is None:
            raise PipelineError(f"{place}: expected query-id, corpus-id and score; got {', '.join(row)}")
        grade = row.get("score", 1)
        if not isinstance(grade, (int, float)) or grade < 0:
            raise PipelineError(f"{place}: score {grade!r} is not a grade (0 = not relevant, or more)")
        judged.append((place, str(row["query-id"]), str(row["corpus-id"]), float(grade)))
    return judged


def read_hub_qrels(hub_id: str, split: str) -> Any:
    """One judgements split of a BEIR set on the Hub as rows, as read_qrels reads a folder's file."""
    qrels = _hub_qrels(hub_id)
    if split not in qrels:
        raise PipelineError(f"source 'hf:{hub_id}:{split}': no such split of its judgements; its splits: {', '.join(qrels)}")
    judged = _hub_judgements(hub_id, split)
    if not judged:
        raise PipelineError(f"source 'hf:{hub_id}:{split}': no judgements")
    grades = {grade for name in qrels for *_, grade in _hub_judgements(hub_id, name)}
    return _qrels_table(judged, _hub_texts(hub_id, "queries"), _hub_texts(hub_id, "corpus"), grades,
                        (f"hf:{hub_id} queries", f"hf:{hub_id} corpus"), f"source 'hf:{hub_id}'")
