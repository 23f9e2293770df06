"""Fingerprint every set's source, one file per set, so that each ingest re-runs when its own source changes and
for no other set's.

Usage: python -m pipeline.sources   (reads params.yaml: datasets, eval_sets)

Why a stage: DVC's templating cannot look a set's source up by its name (`${datasets.${item}.source}`), so an
ingest could only depend on the whole data/raw folder and on every built-in generator, and one edited file
would re-ingest every set. This stage depends on all of them instead and writes data/sources/<set>.json: the
SHA-256 of what the set reads (a local file, every file of a local folder, or the source file of a built-in
set's generator module; an `hf:` source is its id). Each ingest depends on its own file alone, which changes
only when that set's source does.

It never judges a source: one that is missing is fingerprinted as missing, and its ingest says what is wrong.
Reads files only (no ML imports), so it takes well under a second.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from pipeline.core import files, paths
from pipeline.core.digests import folder_digest, sha256
from pipeline.core.errors import cli
from pipeline.core.loading import stage_params
from pipeline.core.process import run_command


@cli
def main(argv: list[str] | None = None) -> None:
    params, _ = stage_params(__doc__, argv)
    configs = {**params.datasets, **params.eval_sets}
    files.remove(*paths.SOURCE_FINGERPRINTS.glob("*.json"))
    for name, config in configs.items():
        parts = {split or "all": fingerprint(source) for split, source in config.sources.items()}
        files.write_json(paths.source_fingerprint(name), {"source": config.source_text, "parts": parts})
    print(f"sources: {len(configs)} fingerprinted ({', '.join(configs)})")


def fingerprint(source: str) -> str:
    """`<kind>:<sha256 or id>` for one source string of params.yaml."""
    if source.startswith("hf:"):
        return source  # read from the Hugging Face cache by its id: the id is all there is to compare
    if source.startswith("builtin:"):
        return f"generator:{sha256(_generator_file(source))}"
    path = Path(source)
    if path.is_file():
        return f"file:{sha256(path)}"
    if path.is_dir():  # a BEIR folder or a datasets save_to_disk folder: every file, by its place in the folder
        listing = json.dumps(folder_digest(path), sort_keys=True).encode()
        return f"folder:{hashlib.sha256(listing).hexdigest()}"
    return "missing"


def _generator_file(source: str) -> Path:
    """The module that generates a built-in set (each is one self-contained module, standard library only).
    An unknown name maps to the package itself: its ingest names the valid ones."""
    from pipeline.data import builtin

    generator = builtin.GENERATORS.get(source.removeprefix("builtin:").partition(":")[0])
    module = sys.modules[generator.__module__] if generator else builtin
    return Path(module.__file__)  # type: ignore[arg-type]


if __name__ == "__main__":
    run_command(main)
