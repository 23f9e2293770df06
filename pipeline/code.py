"""Fingerprint the code each stage runs, one file per stage module, so that a stage re-runs exactly when a
module it executes changes.

Usage: python -m pipeline.code   (reads the pipeline package only)

Writes results/code/<stage>.json for every stage module at the top of the package: the SHA-256 of each project
module that `python -m pipeline.<stage>` can execute, found from the import statements (the stages import
lazily, inside main(), so imports inside functions count). Each stage of dvc.yaml depends on its own file; this
stage depends on the whole package. An edit to pipeline/tracking/cards.py then changes the card, report and
publish fingerprints and no other, and `dvc repro` re-runs those stages alone.

Why a stage rather than each stage listing its ~25-40 modules in dvc.yaml: DVC parses and rewrites the whole
dvc.lock (round-trip YAML, pure Python) after every stage it runs, so a run's bookkeeping grows with stages x
lock size, the square of the matrix, and those lists were 59 % of the lock's lines. With one entry per stage
the default run's lock is 3,712 lines instead of 8,493, and the run 0.95x the time with byte-identical
outputs (benchmarks/README.md, "dvc.lock").

The built-in generators (pipeline/data/builtin/<set>.py) are left out: they are data, fingerprinted per set by
the sources stage, so that one generator's edit re-ingests only the sets it generates.
Standard library only: it takes well under a second.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

from pipeline.core import files, paths
from pipeline.core.digests import sha256
from pipeline.core.errors import cli
from pipeline.core.process import run_command

PACKAGE = Path(__file__).resolve().parent
GENERATORS = "pipeline/data/builtin/"  # one module per built-in set, fingerprinted whole by pipeline.sources


@cli
def main(argv: list[str] | None = None) -> None:
    import argparse

    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    stages = stage_modules()
    files.remove(*paths.CODE_FINGERPRINTS.glob("*.json"))
    for stage in stages:
        files.write_json(paths.code_fingerprint(stage), fingerprint(f"{PACKAGE.name}.{stage}"))
    print(f"code: {len(stages)} stage modules fingerprinted")


def stage_modules() -> list[str]:
    """The modules at the top of the package (each runs as `python -m pipeline.<name>`)."""
    return sorted(path.stem for path in PACKAGE.glob("*.py") if path.name != "__init__.py")


def fingerprint(module: str) -> dict:
    """{"module": module, "files": {path: sha256}} for every project file running `module` can execute."""
    return {"module": module, "files": {path: sha256(PACKAGE.parent / path) for path in code_files(module)}}


def code_files(module: str) -> list[str]:
    """The project files (relative to the repository, sorted) whose code `python -m <module>` can run: the
    modules it imports, transitively, and the packages holding them where their `__init__.py` has code."""
    found = []
    for name in modules_run_by(module):
        path = module_file(name)
        relative = path.relative_to(PACKAGE.parent).as_posix()
        if relative.startswith(GENERATORS) and path.name != "__init__.py":
            continue
        if path.name != "__init__.py" or _has_code(path):
            found.append(relative)
    return sorted(found)


def modules_run_by(module: str) -> set[str]:
    """Every project module that running `python -m <module>` can import."""
    seen: set[str] = set()
    todo = [module, *_parents(module)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(imports(module_file(name)))
        todo.extend(_parents(name))
    return seen


@functools.cache  # every stage's closure walks the same core modules
def imports(path: Path) -> frozenset[str]:
    """Project modules named by the import statements of one file, wherever they stand in it (a function's
    lazy imports included)."""
    here = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against this module's package
                parts = here.split(".")[: len(here.split(".")) - node.level + (path.name == "__init__.py")]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return frozenset(name for name in found if name.split(".")[0] == PACKAGE.name and module_file(name).is_file())


def module_file(module: str) -> Path:
    """The file of a project module: `<name>.py` or a package's `__init__.py` (absent for a name that is
    neither, e.g. a function imported from a module)."""
    base = PACKAGE.parent.joinpath(*module.split("."))
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _has_code(path: Path) -> bool:
    """Whether a file holds more than a docstring (an `__init__.py` that is only a docstring runs nothing)."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str))
               for n in body)


if __name__ == "__main__":
    run_command(main)
