"""Split one ingested dataset into train / validation / test without leakage.

Usage: python -m pipeline.split --dataset NAME   (reads params.yaml: seed, split)

Rows that share a normalised text (anchor or positive; sentence1 or sentence2) stay in one split, so
test scores are not inflated by sentences the model trained on. Writes data/splits/NAME/*.parquet and
results/NAME/split.json (rows per split).
"""

from __future__ import annotations

from pipeline import paths
from pipeline.errors import PipelineError, cli
from pipeline.params import stage_params


@cli
def main(argv: list[str] | None = None) -> None:
    params, (dataset,) = stage_params(__doc__, argv, "dataset")

    import pandas as pd

    from pipeline.data import grouped_split, shape_of

    frame = pd.read_parquet(paths.ingested(dataset))
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
        paths.write_parquet(paths.split_file(dataset, name), frame)
    paths.write_json(paths.RESULTS / dataset / "split.json", {"shape": shape, "rows": sizes})
    print(f"split {dataset}: " + ", ".join(f"{name} {size}" for name, size in sizes.items()))


if __name__ == "__main__":
    main()
