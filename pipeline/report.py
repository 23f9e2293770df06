"""Compare every cell: the winner per dataset (picked on validation), leaderboard, retrieval table (NDCG@10 on
every set with queries), transfer table, DVC metrics and plots.

Usage: python -m pipeline.report   (reads params.yaml: run, eval_sets, base_models, losses, evaluation, report, mlflow)

Writes reports/{leaderboard.md, leaderboard.csv, transfer.csv, heatmap.png, transfer.png, curves.png,
validation_curves.csv, loss_curves.csv}, reports/metrics/<dataset>.json (DVC metrics) and
reports/winners/<dataset>.json (for publish), and puts the leaderboard on the invocation's MLflow run
(metrics: each dataset's winner, its validation and test Spearman; the reports as artifacts). The summary
stage prints the leaderboard last, after publish.
"""

from __future__ import annotations

from pipeline.core import files, paths
from pipeline.core.errors import cli
from pipeline.core.handoffs import Winner
from pipeline.core.loading import stage_params
from pipeline.core.process import import_ml_stack, run_command
from pipeline.evaluation.leaderboard import Board, read_board, retrieval_markdown


def retrieval_section(board: Board, max_queries: int) -> str:
    """The search-quality table, for runs with sets scored by retrieval."""
    table = retrieval_markdown(board)
    return table and (
        "## Retrieval: NDCG@10 on every set with queries\n\nRows: the cell (trained on dataset / base model / loss); "
        "columns: the sets whose test split has queries (• its own dataset). Test NDCG@10, each query searching all "
        "the set's passages (a BEIR set: its whole corpus), with the gain over its base model; ▼ marks a loss. "
        f"A set with more than {max_queries:,} test queries is scored on a seeded sample of that many "
        "(`evaluation.max_queries`).\n\n"
        f"{table}\n")


@cli
def main(argv: list[str] | None = None) -> None:
    params, _ = stage_params(__doc__, argv)

    import_ml_stack("pandas", "matplotlib", "mlflow")
    import pandas as pd

    from pipeline.evaluation import leaderboard
    from pipeline.tracking import plots, runs

    outputs = (paths.LEADERBOARD_MD, paths.LEADERBOARD_CSV, paths.TRANSFER_CSV, paths.METRICS, paths.HEATMAP,
               paths.TRANSFER_PNG, paths.CURVES_PNG, paths.VALIDATION_CURVES, paths.LOSS_CURVES)
    files.remove(*outputs, paths.WINNERS)
    board = read_board(params)
    for dataset in board.datasets:
        won = board.winner(dataset)
        Winner(dataset=dataset, base=won.base if won else None, loss=won.loss if won else None,
               metric=board.metric(dataset), validation=won.validation if won else None,
               test=board.tested(won)[0] if won else None, rule=leaderboard.WINNER_RULE, bases=board.bases,
               losses=board.losses).write(paths.winner(dataset))
    validation = {cell: pd.read_csv(paths.val_curve(*cell)) for cell in board.cells}
    training = {cell: pd.read_csv(paths.loss_curve(*cell)) for cell in board.cells}

    board_md, transfer_md = leaderboard.leaderboard_markdown(board), leaderboard.transfer_markdown(board)
    files.write_text(paths.LEADERBOARD_MD, (
        f"# Leaderboard\n\nBase models: {leaderboard.base_models_line(board)}. Each cell: validation score of "
        f"the kept checkpoint / test score, with the test gain over its untuned base model, in the dataset's metric "
        f"(of cosine similarity): {leaderboard.metrics_line(board)}.\n"
        f"{leaderboard.WINNER_RULE}\n\n{board_md}\n{retrieval_section(board, params.evaluation.max_queries)}"
        f"## Transfer: every cell on every set's test split\n\nRows: the cell (trained on dataset / base model / loss); columns: "
        f"the set scored (• its own dataset). Test Spearman with the gain over its base model on that set; "
        f"▼ marks a loss of quality.\n\n{transfer_md}"))
    files.write_text(paths.LEADERBOARD_CSV, leaderboard.leaderboard_csv(board))
    files.write_text(paths.TRANSFER_CSV, leaderboard.transfer_csv(board))
    for dataset, metrics in leaderboard.dvc_metrics(board).items():
        files.write_json(paths.dataset_metrics(dataset), metrics)
    files.write_text(paths.VALIDATION_CURVES, plots.long_curves(board, validation, "spearman").to_csv(index=False))
    files.write_text(paths.LOSS_CURVES, plots.long_curves(board, training, "loss").to_csv(index=False))
    plots.heatmap(board, paths.HEATMAP)
    plots.transfer_heatmap(board, paths.TRANSFER_PNG)
    plots.curves(board, validation, training, paths.CURVES_PNG)

    runs.log_report(params.mlflow.experiment, leaderboard.run_metrics(board), leaderboard.run_tags(board), outputs)
    print(f"report: {paths.LEADERBOARD_MD}, {paths.METRICS}/ and plots written; the leaderboard follows publish")


if __name__ == "__main__":
    run_command(main)
