"""Text files as the readers meet them: whether a file is in the encoding params say, and JSON Lines read
object by object with the file and line of the first problem (pipeline/data/readers.py, pipeline/data/beir.py)."""

from __future__ import annotations

import codecs
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.core.errors import PipelineError


def check_encoding(path: Path, encoding: str) -> None:
    """Stop when a text file as a whole is in another encoding than `encoding`: read as UTF-8, a Latin-1 export
    would lose every row with an accent to "undecodable text", silently. A UTF-8 file with a few damaged bytes
    (valid non-ASCII text elsewhere) stays a row problem."""
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not encoding.startswith("utf-16"):
        raise PipelineError(f"{path}: the file is UTF-16 (it starts with a UTF-16 byte-order mark): set encoding: utf-16 "
                            f"for this dataset in params.yaml, or save it as UTF-8")
    if encoding != "utf-8":
        return
    try:
        raw.decode("utf-8")
        return
    except UnicodeDecodeError as error:
        first_bad = error.start
    if any(ord(char) > 127 and char != "\ufffd" for char in raw.decode("utf-8", errors="replace")):
        return
    # bytes 0x80-0x9f are control codes in Latin-1 but letters and quotes in Windows-1252
    guess = "cp1252" if any(0x80 <= byte <= 0x9F for byte in raw) else "latin-1"
    line = raw.count(b"\n", 0, first_bad) + 1
    raise PipelineError(f"{path}: not UTF-8 (byte 0x{raw[first_bad]:02x} on line {line}, and no UTF-8 text anywhere); "
                        f"it reads as {guess}: set encoding: {guess} for this dataset in params.yaml, or save the file "
                        f"as UTF-8")


class DuplicateKey(ValueError):
    pass


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: a key given twice in one object would silently keep the last value."""
    obj = dict(pairs)
    if len(obj) < len(pairs):
        raise DuplicateKey(next(key for key, count in Counter(key for key, _ in pairs).items() if count > 1))
    return obj


def jsonl_rows(path: Path, encoding: str = "utf-8-sig") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line of a JSON Lines file; a line that is not one JSON object
    stops with the file and line."""
    with path.open(encoding=encoding, errors="replace") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line, object_pairs_hook=no_duplicate_keys)
            except json.JSONDecodeError as error:
                raise PipelineError(f"{path}: line {line_no}: broken JSON ({error.msg} at column {error.colno})") from None
            except DuplicateKey as key:
                raise PipelineError(f"{path}: line {line_no}: key {str(key)!r} appears twice in one object") from None
            if not isinstance(row, dict):
                raise PipelineError(f"{path}: line {line_no}: expected a JSON object, got {type(row).__name__}")
            yield line_no, row
