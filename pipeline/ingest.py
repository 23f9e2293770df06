"""Ingest one dataset: read its source, map columns, drop or reject bad rows, scale scores to [0, 1].

Usage: python -m pipeline.ingest --dataset NAME   (reads params.yaml: seed, datasets.NAME)

Writes data/ingested/NAME.parquet (the raw source is never modified) and results/NAME/ingest.json
(rows in, rows out, drops per reason).
"""

from __future__ import annotations

import argparse

from pipeline import paths
from pipeline.errors import PipelineError, cli
from pipeline.params import load_params


@cli
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    if args.dataset not in params.datasets:
        raise PipelineError(f"params.yaml: datasets.{args.dataset}: not defined; defined: {', '.join(params.datasets)}")
    config = params.datasets[args.dataset]

    from pipeline.data import normalise, read_source

    for out in (paths.ingested(args.dataset), paths.ingest_report(args.dataset)):
        out.unlink(missing_ok=True)  # a failed run must not leave the previous output looking current
    frame = read_source(config.source, config, params.seed)
    # CSV/TSV rows are numbered from the first data row (the header is line 1); others from 1.
    frame, shape, report = normalise(frame, config, config.source, row_offset=1)
    if config.rows and not config.source.startswith("builtin:"):
        frame = frame.head(config.rows)
    paths.write_parquet(paths.ingested(args.dataset), frame)
    paths.write_json(paths.ingest_report(args.dataset), {"shape": shape, **report.as_dict()})
    dropped = ", ".join(f"{reason}: {n}" for reason, n in sorted(report.dropped.items())) or "none"
    print(f"ingest {args.dataset}: {shape}, {report.rows_in} rows in, {len(frame)} rows out; dropped: {dropped}")


if __name__ == "__main__":
    main()
