"""Split one ingested dataset into train / validation / test without leakage.

Usage: python -m pipeline.split --dataset NAME   (reads params.yaml: seed, split)

Rows that share a normalised text (anchor or positive; sentence1 or sentence2) stay in one split, so
test scores are not inflated by sentences the model trained on. Writes data/splits/NAME/{train,validation}.parquet,
data/test/NAME.parquet and results/split/NAME.json (rows per split).
"""

from __future__ import annotations

from pipeline.core import files, paths
from pipeline.core.errors import PipelineError, cli
from pipeline.core.handoffs import SplitReport
from pipeline.core.params import stage_params


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset,) = stage_params(__doc__, argv, "dataset")

    import pandas as pd

    from pipeline.data.cleaning import shape_of
    from pipeline.data.splitting import grouped_split

    files.remove(paths.split_dir(dataset), paths.split_file(dataset, "test"), paths.split_report(dataset))
    frame = pd.read_parquet(files.require(paths.ingested(dataset), "ingest"))
    shape = shape_of(list(frame.columns))
    splits = grouped_split(frame, shape, params.split.validation, params.split.test, params.seed)
    sizes = {name: len(frame) for name, frame in splits.items()}
    empty = [name for name, size in sizes.items() if size == 0]
    if empty:
        raise PipelineError(
            f"{paths.ingested(dataset)}: split {', '.join(empty)} came out empty ({sizes}); "
            f"add rows or raise split fractions in params.yaml"
        )
    for name, frame in splits.items():
        files.write_parquet(paths.split_file(dataset, name), frame)
    SplitReport(shape=shape, rows=sizes).write(paths.split_report(dataset))
    print(f"split {dataset}: " + ", ".join(f"{name} {size}" for name, size in sizes.items()))


if __name__ == "__main__":
    main()
