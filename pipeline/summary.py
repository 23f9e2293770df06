"""The last thing `dvc repro` prints: the leaderboard, what was published, and where to look in MLflow.

Usage: python -m pipeline.summary   (reads params.yaml: run, eval_sets, base_models, losses, report)

Reads the cells' results (as the report does) and each dataset's publish record; writes nothing. It runs
after every publish stage, so a run's output ends with one screen: per dataset the winner and its scores,
the registered version to load, and the link that opens this experiment's runs table in the MLflow UI.
"""

from __future__ import annotations

from pipeline.core import paths
from pipeline.core.errors import cli
from pipeline.core.handoffs import PublishRecord
from pipeline.core.loading import stage_params
from pipeline.core.process import run_command


def published_lines(records: list[PublishRecord], winners: dict[str, tuple[float | None, float | None]]) -> list[str]:
    """One line per dataset: winner, its validation / test score, the registry URI and version, the folder."""
    width = max(len(record.dataset) for record in records)
    lines = []
    for record in records:
        validation, test = winners[record.dataset]
        scores = f"validation {validation:.4f} / test {test:.4f}" if validation is not None and test is not None else ""
        lines.append(f"  {record.dataset:<{width}}  {record.base}/{record.loss}  {scores}  {record.model_uri} (version "
                     f"{record.version})  {record.folder}/")
    return lines


@cli
def main(argv: list[str] | None = None) -> None:
    params, _ = stage_params(__doc__, argv)

    from pipeline.evaluation import leaderboard
    from pipeline.tracking.runs import runs_table_link, tracking_uri

    board = leaderboard.read_board(params)
    records = [PublishRecord.read(paths.publish_record(dataset)) for dataset in params.run.datasets]
    winners = {dataset: (cell.validation, board.tested(cell)[0]) if (cell := board.winner(dataset)) else (None, None)
               for dataset in board.datasets}
    uri = tracking_uri()
    start = "" if uri.startswith(("http://", "https://")) else f" (start the UI: mlflow ui --backend-store-uri {uri})"
    print("\n".join([
        f"Leaderboard ({paths.LEADERBOARD_MD}; transfer table there too). Base models {leaderboard.base_models_line(board)}; "
        f"each cell: validation / test score, test gain over its base model, in the dataset's metric (of cosine "
        f"similarity): {leaderboard.metrics_line(board)}.",
        leaderboard.WINNER_RULE, "", leaderboard.leaderboard_markdown(board),
        "Published winners (load with mlflow.sentence_transformers.load_model(URI)):",
        *published_lines(records, winners), "",
        f"MLflow runs: {runs_table_link(records[0].experiment_id)}{start}",
    ]))


if __name__ == "__main__":
    run_command(main)
