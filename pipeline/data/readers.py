"""Reading a source into a table of raw columns: a built-in generator, a local file (CSV, TSV, JSON,
JSONL, Parquet or a datasets `save_to_disk` folder) or a Hugging Face Hub dataset. Every problem with
the file itself is one PipelineError naming the file and the position."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.core.errors import PipelineError
from pipeline.core.params import DatasetParams

FILE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".parquet": "parquet"}


def read_source(source: str, params: DatasetParams, seed: int) -> Any:
    """Load a source into a pandas DataFrame of raw columns. Raises PipelineError naming the source."""
    import pandas as pd

    if source.startswith("builtin:"):
        from pipeline.data import builtin as builtin_data

        name = source.removeprefix("builtin:")
        if name not in builtin_data.GENERATORS:
            raise PipelineError(f"source {source!r}: unknown built-in generator; valid: {', '.join(sorted(builtin_data.GENERATORS))}")
        kwargs: dict[str, Any] = {"language": params.language} if name == "product_triplets" else {}
        return pd.DataFrame(builtin_data.GENERATORS[name](params.rows or 1000, seed, **kwargs))
    if source.startswith("hf:"):
        return _read_hub(source.removeprefix("hf:"), params)
    return read_file(Path(source))


def _read_hub(dataset_id: str, params: DatasetParams) -> Any:
    from datasets import load_dataset

    try:
        return load_dataset(dataset_id, params.hf_config, split=params.hf_split).to_pandas()
    except Exception as error:  # the Hub client raises many types; the user needs one line
        raise PipelineError(
            f"source 'hf:{dataset_id}': could not load from the Hugging Face Hub ({type(error).__name__}); "
            f"offline, save a local copy where the Hub is reachable (datasets' save_to_disk or to_parquet) "
            f"and set source to that path"
        ) from None


def read_file(path: Path) -> Any:
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


def _read_json(path: Path) -> Any:
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
