"""docstring_pairs: (anchor, positive) = (a docstring summary, the code signature it documents), harvested
with `ast` from the Python standard library's own source, so the text is real and present on every machine.

docstring_search: the same harvest as a retrieval set in BEIR's terms. Its corpus is every harvested signature
(~4,300 on CPython 3.11), and its queries are summaries with their own signature as the one answer. Its test
and dev queries are fixed by a hash of the signature (one in sixteen each), so they are the same for every seed
and size, and docstring_pairs never draws them: a model trained on docstring_pairs is never scored by search on
a pair it trained on."""

from __future__ import annotations

import ast
import functools
import os
import random
import re
import sysconfig
import warnings
import zlib

# Not API documentation: tests, the IDLE app, deprecated/demo packages, bundled wheels; encodings and
# pydoc_data are generated tables (5 MB of parse time for almost no documented callables).
_SKIP_DIRS = frozenset({"site-packages", "test", "tests", "idle_test", "idlelib", "lib2to3", "turtledemo",
                        "ensurepip", "__phello__", "encodings", "pydoc_data"})
_MIN_WORDS, _MAX_WORDS = 4, 40
_MAX_SIGNATURE = 200  # characters; the longest stdlib signatures (e.g. argparse) run past 600
# Summaries that say nothing about the callable: C-slot boilerplate, pointers elsewhere, old-style
# "S.method(x) -> type" signatures, doctests and notes to self.
_GENERIC = re.compile(r"^(Return|Implement)s? (self|repr|str|hash|iter|len|bool)\b|\bself\s*[-+*/%&|^<>=!]=?\s*value"
                      r"|^(Deprecated|Alias|Same as|See |Equivalent to|Override|Internal|Private)\b|->|>>>|\bXXX\b|\bTODO\b")


def _summary(docstring: str) -> str | None:
    text = " ".join(docstring.strip().split("\n\n")[0].split())
    if len(text.split()) > _MAX_WORDS:
        text = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text)[0]
    if not _MIN_WORDS <= len(text.split()) <= _MAX_WORDS or _GENERIC.search(text):
        return None
    return text


def _truncate(signature: str) -> str:
    if len(signature) <= _MAX_SIGNATURE:
        return signature
    cut = signature.rfind(", ", 0, _MAX_SIGNATURE - 5)
    return signature[:cut] + ", ...)" if cut > 0 else signature[: _MAX_SIGNATURE - 4] + "...)"


def _top_level_defs(body: list[ast.stmt]) -> list[ast.stmt]:
    """Definitions at module level, including those behind `if`/`try` (os, shutil pick per-platform versions)."""
    found: list[ast.stmt] = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.append(node)
        elif isinstance(node, ast.If):
            found += _top_level_defs(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            found += _top_level_defs(node.body + [s for h in node.handlers for s in h.body] + node.orelse + node.finalbody)
    return found


def _class_signature(module: str, node: ast.ClassDef) -> str:
    init = next((s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
    if init is None:
        bases = ", ".join(ast.unparse(b) for b in node.bases)
        return f"class {module}.{node.name}" + (f"({bases})" if bases else "")
    args = ast.unparse(init.args)
    args = args[len("self, "):] if args.startswith("self, ") else ("" if args == "self" else args)
    return f"{module}.{node.name}({args})"


def _module_pairs(module: str, tree: ast.Module) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for node in _top_level_defs(tree.body):
        if node.name.startswith("_"):  # type: ignore[attr-defined]
            continue
        if isinstance(node, ast.ClassDef):
            items = [(node, _class_signature(module, node))]
            items += [(m, f"{module}.{node.name}.{m.name}({ast.unparse(m.args)})") for m in node.body
                      if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and not m.name.startswith("_")]
        else:
            items = [(node, f"{module}.{node.name}({ast.unparse(node.args)})")]  # type: ignore[attr-defined]
        for item, signature in items:
            docstring = ast.get_docstring(item)  # type: ignore[arg-type]
            anchor = _summary(docstring) if docstring else None
            if anchor:
                pairs.append((anchor, _truncate(signature)))
    return pairs


@functools.lru_cache(maxsize=1)
def _stdlib_pairs() -> tuple[tuple[str, str], ...]:
    """Every usable (summary, signature) pair, in sorted file order, first occurrence of each side kept."""
    root = sysconfig.get_paths()["stdlib"]
    pairs: list[tuple[str, str]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old sources trigger invalid-escape warnings when parsed
        for directory, subdirs, files in os.walk(root):
            subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_DIRS and d.isidentifier() and not d.startswith("_"))
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                parts = os.path.relpath(os.path.join(directory, name), root)[: -len(".py")].split(os.sep)
                parts = parts[:-1] if parts[-1] == "__init__" else parts
                if not parts or not all(p.isidentifier() and not p.startswith("_") for p in parts):
                    continue  # private modules (_pyio, _pydecimal) duplicate the public API's docs
                try:
                    with open(os.path.join(directory, name), "rb") as source:
                        tree = ast.parse(source.read())
                except (SyntaxError, ValueError, UnicodeDecodeError, OSError):
                    continue
                pairs += _module_pairs(".".join(parts), tree)
    seen_anchors: set[str] = set()
    seen_positives: set[str] = set()
    unique: list[tuple[str, str]] = []
    for anchor, positive in pairs:
        if anchor not in seen_anchors and positive not in seen_positives:
            unique.append((anchor, positive))
        seen_anchors.add(anchor)
        seen_positives.add(positive)
    return tuple(unique)


SEARCH_SPLITS = {"test": 0, "validation": 1}  # docstring_search's held-out queries: crc32(signature) % 16


def _held_out(signature: str) -> str | None:
    """The split of docstring_search that holds this pair's query, or None when it is a training pair. A hash of
    the text, not a sample: the held-out queries stay put whatever the seed, the size or the other pairs."""
    bucket = zlib.crc32(signature.encode()) % 16
    return next((split for split, held in SEARCH_SPLITS.items() if bucket == held), None)


def _training_pairs() -> list[tuple[str, str]]:
    return [pair for pair in _stdlib_pairs() if _held_out(pair[1]) is None]


def docstring_pairs(n: int, seed: int) -> list[dict[str, str]]:
    """(anchor, positive) pairs harvested from the Python standard library's own source (none of
    docstring_search's held-out queries)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    pairs = _training_pairs()
    chosen = random.Random(seed).sample(pairs, min(n, len(pairs)))
    return [{"anchor": anchor, "positive": positive} for anchor, positive in chosen]


def docstring_search(n: int, seed: int, split: str = "test") -> list[dict[str, str]]:
    """One split of the search set's judgements as (query, answer) pairs: `train`, n pairs drawn as
    docstring_pairs draws them; `validation` and `test`, every held-out query of that split (~270 each)."""
    if split == "train":
        return docstring_pairs(n, seed)
    if split not in SEARCH_SPLITS:
        raise ValueError(f"split must be train, validation or test, got {split!r}")
    return [{"anchor": anchor, "positive": positive} for anchor, positive in _stdlib_pairs() if _held_out(positive) == split]


def docstring_search_corpus(size: int | None, seed: int, splits: tuple[str, ...] = tuple(SEARCH_SPLITS)) -> list[str]:
    """The passages docstring_search's queries search: every harvested signature, or `size` of them: the answer
    of every held-out query of `splits` (those being read: an eval set reads test alone) and a seeded draw of the
    others (a smaller corpus for a quicker pass)."""
    signatures = [signature for _, signature in _stdlib_pairs()]
    answers = [signature for signature in signatures if _held_out(signature) in splits]
    if size is None or size >= len(signatures):
        return signatures
    if size < len(answers):
        raise ValueError(f"a corpus of {size} cannot hold the {len(answers)} answers of the held-out queries; "
                         f"give at least {len(answers)}, or leave it out for all {len(signatures)} signatures")
    others = [signature for signature in signatures if _held_out(signature) not in splits]
    kept = set(answers) | set(random.Random(seed).sample(others, size - len(answers)))
    return [signature for signature in signatures if signature in kept]
