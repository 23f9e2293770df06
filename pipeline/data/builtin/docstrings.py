"""docstring_pairs: (anchor, positive) = (a docstring summary, the code signature it documents), harvested
with `ast` from the Python standard library's own source, so the text is real and present on every machine."""

from __future__ import annotations

import ast
import functools
import os
import random
import re
import sysconfig
import warnings

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


def docstring_pairs(n: int, seed: int) -> list[dict[str, str]]:
    """(anchor, positive) pairs harvested from the Python standard library's own source."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    pairs = _stdlib_pairs()
    chosen = random.Random(seed).sample(pairs, min(n, len(pairs)))
    return [{"anchor": anchor, "positive": positive} for anchor, positive in chosen]
