"""Reading params.yaml (YAML as DVC writes it) and a stage's command line: what every stage does first,
before any heavy import."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.params import Params, ParamsError, parse_params


class _Loader(yaml.SafeLoader):
    """YAML 1.2 floats: `dvc exp run -S train.learning_rate=1e-5` writes `1e-05` back to params.yaml, which
    YAML 1.1 (PyYAML) reads as a string; here it is the float DVC and the user meant."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
                              list("-+0123456789."))


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml (or an override file with the same schema)."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path}:{where}: not valid YAML ({getattr(error, 'problem', error)})") from None
    return parse_params(raw, path)


class Arg(Enum):
    """A stage's required flag: its name on the command line and the params.yaml sections its value must
    name an entry of."""

    DATASET = ("--dataset", ("datasets",))  # a dataset of params.yaml (trained by the cells)
    DATASET_OR_EVAL_SET = ("--dataset", ("datasets", "eval_sets"))  # ingest, split, baseline: any set
    BASE = ("--base", ("base_models",))  # a base model of params.yaml
    LOSS = ("--loss", ("losses",))

    @property
    def flag(self) -> str:
        return self.value[0]

    @property
    def sections(self) -> tuple[str, ...]:
        return self.value[1]


def stage_params(doc: str, argv: list[str] | None, *flags: Arg, switches: dict[str, str] | None = None
                 ) -> tuple[Params, list[Any]]:
    """A stage's command line: `--help` shows `doc`; each of `flags` is required and must name an entry of
    its params.yaml sections; `switches` are optional on/off flags ({name: help}), returned after the flags.
    Returns the validated params and the flag values; a name params.yaml does not define stops the stage with
    one line."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    for arg in flags:
        parser.add_argument(arg.flag, dest=arg.name, required=True)
    for name, text in (switches or {}).items():
        parser.add_argument(f"--{name}", action="store_true", help=text)
    args = parser.parse_args(argv)
    params = load_params()
    values = [getattr(args, arg.name) for arg in flags]
    for arg, value in zip(flags, values):
        defined = [key for section in arg.sections for key in getattr(params, section)]
        if value not in defined:
            # a stage that takes a dataset or an eval set names both sections, each with its own names
            where = " or ".join(f"{section}.{value}" for section in arg.sections)
            listed = "; ".join(f"{section}: {', '.join(getattr(params, section)) or 'none'}" for section in arg.sections)
            raise ParamsError(f"params.yaml: {where}: not defined; defined: "
                              + (", ".join(defined) if len(arg.sections) == 1 else listed))
    return params, values + [getattr(args, name) for name in switches or {}]
