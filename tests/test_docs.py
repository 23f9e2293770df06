"""The README and docs/ stay true: every command they show is one the CLIs accept (each flag checked against the
command's own --help, each script present), every relative link resolves, and no comment or docstring in the
code names a project file that does not exist."""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
# a project path as comments and docs spell it: a top-level folder of this repository, then a file name
PROJECT_PATH = re.compile(r"(?<![\w./-])((?:pipeline|scripts|tests|benchmarks|configs|docs)/[\w./-]*\w\.(?:py|md|yaml|json))")


def shell_lines() -> list[tuple[str, str]]:
    """(doc, command) for every command line of every ```bash block, split at && and ;, comments dropped."""
    found = []
    for doc in DOCS:
        for block in re.findall(r"```bash\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S):
            for line in block.splitlines():
                line = re.sub(r"\s#\s.*$", "", line).strip()
                for command in re.split(r"&&|;", line):
                    if command.strip():
                        found.append((doc.relative_to(ROOT).as_posix(), command.strip()))
    return found


@functools.cache
def help_text(*command: str) -> str:
    proc = subprocess.run([*command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(command)} --help failed: {proc.stderr[-500:]}"
    return proc.stdout


def cli_and_flags(command: str) -> tuple[tuple[str, ...], list[str]] | None:
    """The CLI to ask for --help and the flags the documented command passes it; None for commands that are
    not this project's CLIs (git, export, apt-get, a shell's `.`)."""
    words = shlex.split(command)
    if words and words[0] in {".venv/bin/python", "python"}:
        words[0] = sys.executable
    flags = [word.split("=")[0] for word in words if word.startswith("-")]
    if words[:2] == [sys.executable, "-m"] and words[2].startswith("pipeline."):
        return (sys.executable, "-m", words[2]), [flag for flag in flags if flag != "-m"]
    if words[:3] == [sys.executable, "-m", "pytest"]:
        return (sys.executable, "-m", "pytest"), [flag for flag in flags if flag != "-m"]
    if words and words[0] in {"dvc", "mlflow"}:
        subcommands = tuple(word for word in words[1:3] if not word.startswith("-") and word.isalpha())
        if words[0] == "dvc" and subcommands[:1] not in {("exp",), ("queue",), ("metrics",), ("plots",), ("remote",)}:
            subcommands = subcommands[:1]
        return (sys.executable, "-m", words[0], *subcommands), flags
    return None


def test_the_docs_show_commands() -> None:
    commands = [command for _, command in shell_lines()]
    assert "dvc repro" in commands and ".venv/bin/python -m pytest -n 2 --dist loadscope" in commands
    assert any(command.startswith("dvc exp diff") for command in commands)
    assert any(command.startswith("dvc plots diff") for command in commands)


@pytest.mark.parametrize(("doc", "command"), shell_lines())
def test_every_documented_command_is_accepted(doc: str, command: str) -> None:
    words = shlex.split(command)
    for word in words:
        if re.fullmatch(r"(scripts|benchmarks|configs)/[\w./-]+", word):
            assert (ROOT / word).exists(), f"{doc}: `{command}` names {word}, which does not exist"
    parsed = cli_and_flags(command)
    if parsed is None:
        return
    cli, flags = parsed
    text = help_text(*cli)
    unknown = [flag for flag in flags if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)]
    assert not unknown, f"{doc}: `{command}`: {' '.join(cli[2:])} --help knows no {unknown}"


def test_relative_links_resolve() -> None:
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_comments_name_only_files_that_exist() -> None:
    """History lives in git: a comment or docstring naming a file that was moved or removed misleads."""
    missing = []
    sources = [*ROOT.glob("pipeline/**/*.py"), *ROOT.glob("scripts/*.py"), *ROOT.glob("tests/*.py"),
               *ROOT.glob("benchmarks/*.py"), ROOT / "dvc.yaml", ROOT / "params.yaml", *DOCS]
    for source in sources:
        for path in PROJECT_PATH.findall(source.read_text(encoding="utf-8")):
            if "<" not in path and "*" not in path and not (ROOT / path).exists():
                missing.append(f"{source.relative_to(ROOT)}: {path}")
    assert not missing, missing


def test_code_names_no_issue_numbers() -> None:
    """Why a line exists is said in the present; which issue asked for it is git's to remember."""
    found = [f"{path.relative_to(ROOT)}:{number}" for path in [*ROOT.glob("pipeline/**/*.py"), *ROOT.glob("tests/*.py"),
                                                                 *ROOT.glob("scripts/*.py"), *ROOT.glob("benchmarks/*.py")]
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(r"\bissue \d+", line) and path.name != "test_docs.py"]
    assert not found, found
