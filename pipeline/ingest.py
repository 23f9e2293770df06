"""Ingest one dataset: read its source, map columns, drop or reject bad rows, scale scores to [0, 1].

Usage: python -m pipeline.ingest --dataset NAME   (reads params.yaml: seed, datasets.NAME)

Writes data/ingested/NAME.parquet (the raw source is never modified) and results/NAME/ingest.json
(rows in, rows out, drops per reason).
"""

from __future__ import annotations

from pipeline import paths
from pipeline.errors import cli
from pipeline.params import stage_params


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset,) = stage_params(__doc__, argv, "dataset")
    config = params.datasets[dataset]

    from pipeline.data import normalise, read_source

    for out in (paths.ingested(dataset), paths.ingest_report(dataset)):
        out.unlink(missing_ok=True)  # a failed run must not leave the previous output looking current
    frame = read_source(config.source, config, params.seed)
    # CSV/TSV rows are numbered from the first data row (the header is line 1); others from 1.
    frame, shape, report = normalise(frame, config, config.source, row_offset=1)
    if config.rows and not config.source.startswith("builtin:"):
        frame = frame.head(config.rows)
    paths.write_parquet(paths.ingested(dataset), frame)
    paths.write_json(paths.ingest_report(dataset), {"shape": shape, **report.as_dict()})
    dropped = ", ".join(f"{reason}: {n}" for reason, n in sorted(report.dropped.items())) or "none"
    print(f"ingest {dataset}: {shape}, {report.rows_in} rows in, {len(frame)} rows out; dropped: {dropped}")


if __name__ == "__main__":
    main()
