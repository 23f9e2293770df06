"""Compare every cell: leaderboard (Markdown + CSV), one combined DVC metrics file, heatmap and curves.

Usage: python -m pipeline.report   (reads params.yaml: run, mlflow)

Writes reports/{leaderboard.md, leaderboard.csv, metrics.json, heatmap.png, curves.png}, prints the
dataset x loss table, and logs the reports to an MLflow run named "report".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.core import files, paths
from pipeline.core.errors import cli
from pipeline.core.handoffs import EvalResult, SplitReport
from pipeline.core.models import display_id
from pipeline.core.params import stage_params


@dataclass(frozen=True)
class DatasetRow:
    """One dataset's line of the leaderboard: the base model and every loss on its test split."""

    base_spearman: float
    cells: dict[str, EvalResult]  # loss -> its evaluation
    rows: dict[str, int]  # rows per split


def collect(datasets: list[str], losses: list[str]) -> dict[str, DatasetRow]:
    """The leaderboard's data, read from every cell of the run matrix."""
    table = {}
    for dataset in datasets:
        cells = {loss: EvalResult.read(paths.eval_result(dataset, loss)) for loss in losses}
        base = next(iter(cells.values())).test.base.spearman  # every cell holds the same base-model score
        table[dataset] = DatasetRow(base, cells, SplitReport.read(paths.split_report(dataset)).rows)
    return table


def leaderboard_markdown(table: dict[str, DatasetRow], losses: list[str]) -> str:
    """One row per dataset, one column per loss: test Spearman (gain over the base model); best in bold."""
    lines = ["| dataset | base model | " + " | ".join(losses) + " |", "|:--|--:|" + "--:|" * len(losses)]
    for dataset, row in table.items():
        best = max(losses, key=lambda loss: row.cells[loss].test.tuned.spearman)
        cells = []
        for loss in losses:
            test = row.cells[loss].test
            text = f"{test.tuned.spearman:.4f} ({test.gain:+.4f})"
            cells.append(f"**{text}**" if loss == best else text)
        lines.append(f"| {dataset} | {row.base_spearman:.4f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def leaderboard_csv(table: dict[str, DatasetRow]) -> str:
    rows = ["dataset,loss,test_spearman_cosine,test_pearson_cosine,base_spearman_cosine,spearman_gain"]
    for dataset, row in table.items():
        for loss, result in row.cells.items():
            test = result.test
            rows.append(f"{dataset},{loss},{test.tuned.spearman:.6f},{test.tuned.similarity['pearson_cosine']:.6f},"
                        f"{row.base_spearman:.6f},{test.gain:.6f}")
    return "\n".join(rows) + "\n"


def dvc_metrics(table: dict[str, DatasetRow]) -> dict[str, Any]:
    """One file for `dvc metrics show` / `dvc exp show`: <dataset>.<loss> = test Spearman, plus the base
    model's and the rows per split."""
    return {dataset: {"base": round(row.base_spearman, 6),
                      **{loss: round(result.test.tuned.spearman, 6) for loss, result in row.cells.items()},
                      **{f"rows_{split}": n for split, n in row.rows.items()}}
            for dataset, row in table.items()}


def plot_heatmap(table: dict[str, DatasetRow], losses: list[str], out: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(table)
    gains = [[table[d].cells[loss].test.gain for loss in losses] for d in datasets]
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(losses), 1.2 + 0.7 * len(datasets)))
    limit = max(1e-6, max(abs(g) for row in gains for g in row))
    image = ax.imshow(gains, cmap="RdYlGn", vmin=-limit, vmax=limit)
    ax.set_xticks(range(len(losses)), losses)
    ax.set_yticks(range(len(datasets)), datasets)
    for i, dataset in enumerate(datasets):
        for j, loss in enumerate(losses):
            spearman = table[dataset].cells[loss].test.tuned.spearman
            ax.text(j, i, f"{spearman:.3f}\n{gains[i][j]:+.3f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label="test Spearman gain over base model")
    ax.set_title("Test Spearman (cosine) and gain over the base model")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_curves(datasets: list[str], losses: list[str], out: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, (loss_ax, val_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    for dataset in datasets:
        for loss in losses:
            curve = pd.read_csv(files.require(paths.loss_curve(dataset, loss), "train"))
            val = pd.read_csv(files.require(paths.val_curve(dataset, loss), "train"))
            loss_ax.plot(curve["step"], curve["loss"], label=f"{dataset}/{loss}")
            val_ax.plot(val["step"], val["spearman"], marker="o", label=f"{dataset}/{loss}")
    loss_ax.set(title="Training loss", xlabel="step", ylabel="loss")
    val_ax.set(title="Validation Spearman (cosine)", xlabel="step", ylabel="Spearman")
    val_ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


@cli
def main(argv: list[str] | None = None) -> None:
    params, _ = stage_params(__doc__, argv)
    datasets, losses = params.run.datasets, params.run.losses
    table = collect(datasets, losses)
    markdown = leaderboard_markdown(table, losses)
    files.write_text(paths.LEADERBOARD_MD, "# Leaderboard: test Spearman (cosine), gain over the untuned base model\n\n"
                     + f"Base model: {display_id(params.base_model)}. Best loss per dataset in bold.\n\n" + markdown)
    files.write_text(paths.LEADERBOARD_CSV, leaderboard_csv(table))
    files.write_json(paths.METRICS, dvc_metrics(table))
    plot_heatmap(table, losses, paths.HEATMAP)
    plot_curves(datasets, losses, paths.CURVES_PNG)

    import mlflow

    from pipeline.tracking import runs

    experiment_id = runs.configure(params.mlflow.experiment)
    tags = {"kind": "report", "base_model": display_id(params.base_model),
            **runs.provenance_tags()}
    if parent := runs.parent_run_id(experiment_id):
        tags["mlflow.parentRunId"] = parent
    with mlflow.start_run(experiment_id=experiment_id, run_name="report", tags=tags):
        mlflow.log_metrics({f"{d}.{key}": value for d, row in dvc_metrics(table).items() for key, value in row.items()})
        for artifact in (paths.LEADERBOARD_MD, paths.LEADERBOARD_CSV, paths.HEATMAP, paths.CURVES_PNG):
            mlflow.log_artifact(str(artifact), artifact_path="report")
    print(markdown)


if __name__ == "__main__":
    main()
