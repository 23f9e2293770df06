"""The project modules each dvc.yaml stage runs, so that its `deps:` list them and DVC re-runs a stage
exactly when code it executes changes.

    python scripts/code_deps.py           # print, per stage, the modules dvc.yaml misses or lists in excess
    python scripts/code_deps.py --write   # rewrite the code entries of every stage's deps (comments kept)

A stage's modules are its command's module (`python -m pipeline.<stage>`) and everything it imports from
the project, transitively, found in the source (imports inside functions included: the stages import
lazily). A package `__init__.py` counts only when it holds code, not just a docstring. One exception: a stage
that depends on its set's source fingerprint (data/sources/<set>.json, written by pipeline.sources) gets the
built-in generator modules through it, so they are not listed there; else one generator's edit would re-run
every set's ingest. tests/test_dvc_yaml.py runs the same check.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "pipeline"
FINGERPRINTS = "data/sources/"  # pipeline/core/paths.py SOURCE_FINGERPRINTS
GENERATORS = "pipeline/data/builtin/"  # one module per built-in set, fingerprinted whole by pipeline.sources


def _module_file(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _imports(path: Path) -> set[str]:
    """Project modules named by the import statements of one file, wherever they stand in it."""
    here = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
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
    return {name for name in found if name.split(".")[0] == PACKAGE and _module_file(name)}


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _has_code(path: Path) -> bool:
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return any(not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str))
               for n in body)


def modules_run_by(module: str) -> set[str]:
    """Every project module that running `python -m <module>` can execute."""
    seen: set[str] = set()
    todo = [module, *_parents(module)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_imports(_module_file(name)))
        todo.extend(_parents(name))
    return seen


def code_deps(module: str) -> list[str]:
    """The files dvc.yaml should list for a stage running `python -m <module>`."""
    paths = []
    for name in modules_run_by(module):
        path = _module_file(name)
        if path.name != "__init__.py" or _has_code(path):
            paths.append(path.relative_to(ROOT).as_posix())
    return sorted(paths)


def stage_code_deps(body: dict) -> list[str]:
    """The code deps dvc.yaml should list for one stage (its `do:` block or body)."""
    needed = code_deps(stage_module(body))
    if any(dep.startswith(FINGERPRINTS) for dep in body.get("deps", [])):
        needed = [path for path in needed if not path.startswith(GENERATORS) or path.endswith("/__init__.py")]
    return needed


def stage_bodies(dvc_yaml: dict) -> dict[str, dict]:
    """{stage name: the mapping holding its cmd and deps} (the `do:` block of a foreach stage)."""
    return {name: stage.get("do", stage) for name, stage in dvc_yaml["stages"].items()}


def stage_module(body: dict) -> str:
    match = re.match(r"python -m ([\w.]+)", body["cmd"])
    if not match:
        raise ValueError(f"stage command {body['cmd']!r} does not run `python -m <module>`")
    return match.group(1)


def listed_code(body: dict) -> list[str]:
    return [dep for dep in body.get("deps", []) if dep.startswith(f"{PACKAGE}/")]


def problems(dvc_yaml: dict) -> dict[str, tuple[list[str], list[str]]]:
    """{stage: (modules it runs that deps miss, code deps it does not run)} for every stage that is off."""
    found = {}
    for name, body in stage_bodies(dvc_yaml).items():
        needed, listed = set(stage_code_deps(body)), set(listed_code(body))
        if needed != listed:
            found[name] = (sorted(needed - listed), sorted(listed - needed))
    return found


def main() -> int:
    from ruamel.yaml import YAML

    yaml = YAML()  # round-trip: comments and layout of dvc.yaml survive a rewrite
    yaml.width = 120
    yaml.indent(mapping=2, sequence=4, offset=2)
    path = ROOT / "dvc.yaml"
    document = yaml.load(path)
    issues = problems(document)
    if "--write" in sys.argv[1:]:
        for body in stage_bodies(document).values():
            data_deps = [dep for dep in body["deps"] if not dep.startswith(f"{PACKAGE}/")]
            body["deps"][:] = data_deps + stage_code_deps(body)
        yaml.dump(document, path)
        print(f"dvc.yaml: code deps rewritten for {len(issues)} stage(s)")
        return 0
    for name, (missing, extra) in issues.items():
        print(f"{name}: missing {missing or '-'}; not run {extra or '-'}")
    return 1 if issues else 0


if __name__ == "__main__":
    raise SystemExit(main())
