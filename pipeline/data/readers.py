"""Reading a source into a table of raw columns: a built-in generator, a local file (CSV, TSV, JSON,
JSONL, Parquet, a datasets `save_to_disk` folder or a split of a BEIR folder: pipeline/data/beir.py) or a
Hugging Face Hub dataset. Every problem with
the file itself is one PipelineError naming the file and the position: a text file in another encoding than
params say, or a header naming one column twice, is the file's problem, never a reason to drop rows."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.core.params import DatasetParams
from pipeline.data import beir
from pipeline.data.textfiles import DuplicateKey, check_encoding, jsonl_rows, no_duplicate_keys

FILE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}
TEXT_FORMATS = {"csv", "tsv", "json", "jsonl"}


def read_source(source: str, params: DatasetParams, seed: int) -> Any:
    """Load a source into a pandas DataFrame of raw columns. Raises PipelineError naming the source."""
    import pandas as pd

    if source.startswith("builtin:"):
        from pipeline.data import builtin as builtin_data

        # "builtin:<name>[:<split>]": a split of a built-in retrieval set (beir.expand_sources)
        name, _, split = source.removeprefix("builtin:").partition(":")
        if name not in builtin_data.GENERATORS:
            raise PipelineError(f"source {source!r}: unknown built-in generator; "
                                f"valid: {', '.join(sorted(builtin_data.GENERATORS))}")
        kwargs: dict[str, Any] = {"language": params.language} if name == "product_triplets" else {}
        kwargs.update({"split": split} if split else {})
        return pd.DataFrame(builtin_data.GENERATORS[name](params.rows or 1000, seed, **kwargs))
    if source.startswith("hf:"):
        return _read_hub(source.removeprefix("hf:"), params)
    return read_file(Path(source), params.encoding)


def _read_hub(hub_source: str, params: DatasetParams) -> Any:
    from datasets import load_dataset

    # "<id>:<split>" names the split in the source (a mapping of splits needs one per entry); Hub ids hold no ":"
    dataset_id, _, split = hub_source.partition(":")
    if split and beir.is_hub_beir(dataset_id):  # a split of a BEIR set's judgements (beir.expand_sources)
        return beir.read_hub_qrels(dataset_id, split)
    try:
        return load_dataset(dataset_id, params.hf_config, split=split or params.hf_split).to_pandas()
    except Exception as error:  # the Hub client raises many types; the user needs one line
        raise PipelineError(
            f"source 'hf:{hub_source}': could not load from the Hugging Face Hub ({type(error).__name__}); "
            f"offline, save a local copy where the Hub is reachable (datasets' save_to_disk or to_parquet) "
            f"and set source to that path"
        ) from None


def read_file(path: Path, encoding: str = "utf-8") -> Any:
    """Read CSV/TSV/JSON/JSONL/Parquet or a `save_to_disk` directory; errors name file and position."""
    import pandas as pd

    if not path.exists():
        raise PipelineError(f"{path}: file not found")
    if beir.is_qrels_file(path):  # judgements of a BEIR folder: joined with its corpus and queries
        check_encoding(path, encoding)
        return beir.read_qrels(path, "utf-8-sig" if encoding == "utf-8" else encoding)
    if path.is_dir():
        try:
            from datasets import load_from_disk

            frame = load_from_disk(str(path)).to_pandas()
        except Exception as error:
            raise PipelineError(f"{path}: not a directory written by datasets' save_to_disk ({error})") from None
        return _unique_columns(frame, path)
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise PipelineError(f"{path}: unknown format {path.suffix!r}; expected one of {', '.join(FILE_FORMATS)}")
    if path.stat().st_size == 0:
        raise PipelineError(f"{path}: file is empty")
    if fmt in TEXT_FORMATS:
        check_encoding(path, encoding)
    # utf-8-sig: a byte-order mark (Windows editors write one) is not part of the first column's name
    encoding = "utf-8-sig" if encoding == "utf-8" else encoding
    try:
        if fmt in ("csv", "tsv"):
            sep = "\t" if fmt == "tsv" else ","
            # encoding_errors="replace" keeps undecodable rows visible (as U+FFFD) for the bad-row policy
            read = dict(sep=sep, dtype=str, encoding=encoding, encoding_errors="replace")
            _unique_header(pd.read_csv(path, header=None, nrows=1, **read).iloc[0].tolist(), path)
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""], **read)
        elif fmt == "jsonl":
            frame = pd.DataFrame(_read_jsonl(path, encoding))
        elif fmt == "json":
            frame = _read_json(path, encoding)
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
    return _unique_columns(frame, path)


def _unique_header(names: list[Any], path: Path) -> None:
    # unnamed columns (a trailing separator) are told apart by position, as pandas does ("Unnamed: 3")
    counts = Counter(name for name in names if isinstance(name, str) and name)
    twice = [name for name, count in counts.items() if count > 1]
    if twice:
        raise PipelineError(f"{path}: the header names column {twice[0]!r} {counts[twice[0]]} times; "
                            f"give every column its own name")


def _unique_columns(frame: Any, path: Path) -> Any:
    _unique_header([str(c) for c in frame.columns], path)
    return frame


def _read_jsonl(path: Path, encoding: str = "utf-8-sig") -> list[dict[str, Any]]:
    return [row for _, row in jsonl_rows(path, encoding)]


def _read_json(path: Path, encoding: str = "utf-8-sig") -> Any:
    import pandas as pd

    try:
        data = json.loads(path.read_text(encoding=encoding, errors="replace"), object_pairs_hook=no_duplicate_keys)
    except json.JSONDecodeError as error:
        raise PipelineError(f"{path}: line {error.lineno}: broken JSON ({error.msg})") from None
    except DuplicateKey as key:
        raise PipelineError(f"{path}: key {str(key)!r} appears twice in one object") from None
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        return pd.DataFrame(data)  # column-oriented {"anchor": [...], ...}
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(data)
    raise PipelineError(f"{path}: expected a list of objects or an object of column lists")
