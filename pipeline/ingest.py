"""Ingest one dataset: read its source, map columns, drop or reject bad rows, scale scores to [0, 1].

Usage: python -m pipeline.ingest --dataset NAME   (reads params.yaml: seed, datasets.NAME or eval_sets.NAME)

Writes data/ingested/NAME.parquet (the raw source is never modified) and results/ingest/NAME.json
(rows in, rows out, drops per reason).
"""

from __future__ import annotations

from pipeline.core import files, paths
from pipeline.core.errors import cli
from pipeline.core.handoffs import FileReport, IngestReport
from pipeline.core.params import stage_params


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset,) = stage_params(__doc__, argv, "set")
    config = params.data_config(dataset)

    from pipeline.data.cleaning import normalise
    from pipeline.data.readers import read_source

    files.remove(paths.ingested(dataset), paths.ingest_report(dataset))
    frame = read_source(config.source, config, params.seed)
    # CSV/TSV rows are numbered from the first data row (the header is line 1); others from 1.
    frame, shape, report = normalise(frame, config, config.source, row_offset=1)
    if config.rows and not config.source.startswith("builtin:"):
        frame = frame.head(config.rows)
    files.write_parquet(paths.ingested(dataset), frame)
    IngestReport(shape=shape, source=FileReport(**report.as_dict())).write(paths.ingest_report(dataset))
    dropped = ", ".join(f"{reason}: {n}" for reason, n in sorted(report.dropped.items())) or "none"
    print(f"ingest {dataset}: {shape}, {report.rows_in} rows in, {len(frame)} rows out; dropped: {dropped}")


if __name__ == "__main__":
    main()
