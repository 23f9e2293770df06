"""Split one ingested dataset into train / validation / test without leakage.

Usage: python -m pipeline.split --dataset NAME   (reads params.yaml: seed, split)

Rows that share a normalised text (anchor or positive; sentence1 or sentence2) stay in one split, so
test scores are not inflated by sentences the model trained on. Where shared texts chain rows into a group
too large for one split, its texts are partitioned and the rows that would cross splits dropped
(pipeline/data/splitting.py). Writes data/splits/NAME/{train,validation}.parquet, data/test/NAME.parquet
and results/split/NAME.json (rows per split, the rule used, rows dropped for it). An eval set (params.yaml
eval_sets) is held out whole: all of it is its test set. A dataset given as its own split files keeps
them as given (validation carved from train by the rule above when no validation file is given) and warns
when test rows share a text with the train file.
"""

from __future__ import annotations

from pipeline.core import files, paths
from pipeline.core.errors import PipelineError, cli
from pipeline.core.handoffs import SplitReport
from pipeline.core.loading import Arg, stage_params
from pipeline.core.process import run_command


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset,) = stage_params(__doc__, argv, Arg.DATASET_OR_EVAL_SET)

    import pandas as pd

    from pipeline.data.cleaning import GIVEN_SPLIT, shape_of
    from pipeline.data.splitting import Split, given_split, grouped_split

    files.remove(paths.split_dir(dataset), paths.split_file(dataset, "test"), paths.test_corpus(dataset),
                 paths.split_report(dataset))
    frame = pd.read_parquet(files.require(paths.ingested(dataset), "ingest"))
    shape = shape_of(list(frame.columns))
    if dataset in params.eval_sets:
        split = Split(frames={"test": frame}, rule="held_out", dropped_crossing=0, largest_group=0)
    elif GIVEN_SPLIT in frame.columns:
        split = given_split(frame, shape, params.split.validation, params.seed)
    else:
        split = grouped_split(frame, shape, params.split.validation, params.split.test, params.seed)
    sizes = {name: len(frame) for name, frame in split.frames.items()}
    empty = [name for name, size in sizes.items() if size == 0]
    if empty:
        raise PipelineError(
            f"{paths.ingested(dataset)}: split {', '.join(empty)} came out empty ({sizes}); "
            f"add rows or raise split fractions in params.yaml"
        )
    for name, frame in split.frames.items():
        files.write_parquet(paths.split_file(dataset, name), frame)
    # the corpus the test queries are searched among, beside the test split every scoring stage reads
    corpus = pd.read_parquet(files.require(paths.ingested_corpus(dataset), "ingest"))
    files.write_parquet(paths.test_corpus(dataset), corpus)
    report = SplitReport(shape=shape, rows=sizes, rule=split.rule, dropped_crossing=split.dropped_crossing,
                         largest_group=split.largest_group, leaked_test_rows=split.leaked_test_rows, corpus=len(corpus))
    report.write(paths.split_report(dataset))
    if split.leaked_test_rows:
        print(f"warning: split {dataset}: {split.leaked_test_rows} of {sizes['test']} test rows share a text with the "
              f"train file, so their test scores reward memory, not generalisation; remove those rows from one of "
              f"the files for a clean test (counted as leaked_test_rows in {paths.split_report(dataset)})")
    print(f"split {dataset}: " + ", ".join(f"{name} {size}" for name, size in sizes.items())
          + f"; rule {split.rule}, {split.dropped_crossing} rows dropped whose texts landed in two splits"
          + f" (largest group of rows linked by shared texts: {split.largest_group})")


if __name__ == "__main__":
    run_command(main)
