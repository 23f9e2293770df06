"""Ingest one dataset: read its source, map columns, drop or reject bad rows, scale scores to [0, 1].

Usage: python -m pipeline.ingest --dataset NAME   (reads params.yaml: seed, datasets.NAME or eval_sets.NAME)

A source given as a mapping of splits ({train, validation, test}) reads each file the same way and
keeps each row's split in the table's `split` column, for the split stage to keep; so does a folder in BEIR's
layout (corpus.jsonl, queries.jsonl, qrels/{train,dev,test}.tsv; pipeline/data/beir.py), or for an eval set
its test judgements alone.

Writes data/ingested/NAME.parquet (the raw source is never modified), data/ingested/NAME.corpus.parquet (a BEIR
folder's whole corpus, which its queries are scored against; no rows for other sources) and
results/ingest/NAME.json (rows in, rows out, drops per reason; per split file too for given splits).
"""

from __future__ import annotations

from pipeline.core import files, paths
from pipeline.core.errors import PipelineError, cli
from pipeline.core.handoffs import FileReport, IngestReport
from pipeline.core.loading import Arg, stage_params
from pipeline.core.process import run_command


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset,) = stage_params(__doc__, argv, Arg.DATASET_OR_EVAL_SET)
    config = params.data_config(dataset)

    import pandas as pd

    from pipeline.data.beir import corpus_texts, expand_sources
    from pipeline.data.cleaning import GIVEN_SPLIT, normalise_parts, total_report
    from pipeline.data.readers import read_source

    files.remove(paths.ingested(dataset), paths.ingested_corpus(dataset), paths.ingest_report(dataset))
    # {None: source}, or {split: source} for the dataset's own splits (a BEIR folder's qrels files among them)
    sources = expand_sources(config.sources, held_out_whole=dataset in params.eval_sets)
    tables = {split: read_source(source, config, params.seed) for split, source in sources.items()}
    builtin = any(source.startswith("builtin:") for source in sources.values())
    keep_rows = None if builtin else config.rows  # a generator made `rows` rows already
    frame, shape, reports = normalise_parts(tables, config, sources, keep_rows)
    total = total_report(list(reports.values()))
    parts = {split: FileReport(**report.as_dict()) for split, report in reports.items() if split is not None}
    try:
        corpus = corpus_texts(sources, config.encoding, config.corpus, params.seed)
    except ValueError as error:  # a built-in search set's corpus size that cannot hold its answers
        section = "eval_sets" if dataset in params.eval_sets else "datasets"
        raise PipelineError(f"params.yaml: {section}.{dataset}.corpus = {config.corpus}: {error}") from None
    files.write_parquet(paths.ingested(dataset), frame)
    files.write_parquet(paths.ingested_corpus(dataset), pd.DataFrame({"text": corpus}))
    IngestReport(shape=shape, source=FileReport(**total.as_dict()), parts=parts).write(paths.ingest_report(dataset))
    dropped = ", ".join(f"{reason}: {n}" for reason, n in sorted(total.dropped.items())) or "none"
    given = f" (given splits: {', '.join(f'{split} {(frame[GIVEN_SPLIT] == split).sum()}' for split in parts)})" if parts else ""
    print(f"ingest {dataset}: {shape}, {total.rows_in} rows in, {len(frame)} rows out{given}; dropped: {dropped}")


if __name__ == "__main__":
    run_command(main)
