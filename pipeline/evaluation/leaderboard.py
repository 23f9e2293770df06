"""Comparing the cells of a run: the winner per dataset, picked on validation, and the tables people read.

The winner rule: per dataset, the cell whose kept checkpoint has the best validation Spearman; cells within
TIE of it tie, and a tie goes to the simpler loss (pipeline/core/loss_specs.py::SIMPLICITY). The test split
is never used to choose: its score is reported for the winner exactly as for every other cell, so it stays an
honest estimate of how the chosen model does on unseen data.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core import paths
from pipeline.core.handoffs import BaselineScores, EvalResult, SetResult, SplitReport, TrainFacts
from pipeline.core.loss_specs import simplicity
from pipeline.core.params import Params

TIE = 1e-4  # validation Spearman within this of the best counts as equal (the tables show 4 decimals)
WINNER_RULE = ("★ marks each dataset's winner: the best validation Spearman of the kept checkpoints; within "
               f"{TIE} of each other counts as a tie, which goes to the simpler loss. The test split is never used "
               "to choose: every cell's test score, the winner's included, is an honest estimate.")


@dataclass(frozen=True)
class Cell:
    """One (dataset, loss) cell as the report compares it."""

    dataset: str
    loss: str
    validation: float | None  # the kept checkpoint's validation Spearman (None: trained without validation)
    result: EvalResult
    simplicity: tuple[int, bool]  # lower is simpler (pipeline/core/loss_specs.py::simplicity)

    @property
    def test(self) -> SetResult:
        return self.result.test


def pick_winner(cells: list[Cell]) -> Cell | None:
    """The winner among one dataset's cells by the rule above; None when no cell was validated."""
    validated = [cell for cell in cells if cell.validation is not None]
    if not validated:
        return None
    best = max(cell.validation for cell in validated)
    tied = [cell for cell in validated if best - cell.validation < TIE]
    return min(tied, key=lambda cell: cell.simplicity)


@dataclass(frozen=True)
class Board:
    """Everything the report shows: the cells, the base model per set, rows per split."""

    datasets: list[str]
    losses: list[str]
    sets: list[str]  # every set a cell is scored on: the datasets, then the eval sets
    cells: dict[tuple[str, str], Cell]
    base_test: dict[str, float]  # set -> the base model's test Spearman
    base_validation: dict[str, float]  # dataset -> the base model's validation Spearman
    rows: dict[str, dict[str, int]]  # dataset -> rows per split

    def cell(self, dataset: str, loss: str) -> Cell:
        return self.cells[dataset, loss]

    def winner(self, dataset: str) -> Cell | None:
        return pick_winner([self.cell(dataset, loss) for loss in self.losses])


def read_board(params: Params) -> Board:
    """The run's Board, read from every cell's evaluation and training facts and every set's baseline."""
    datasets, losses = params.run.datasets, params.run.losses
    cells = {}
    for dataset in datasets:
        for loss in losses:
            kept = TrainFacts.read(paths.train_facts(dataset, loss)).selection
            config = params.losses[loss]
            cells[dataset, loss] = Cell(dataset, loss, kept.kept_spearman, EvalResult.read(paths.eval_result(dataset, loss)),
                                        simplicity(config.class_name, config.matryoshka is not None))
    baselines = {name: BaselineScores.read(paths.baseline_scores(name)) for name in params.evaluation_sets}
    return Board(datasets=list(datasets), losses=list(losses), sets=params.evaluation_sets, cells=cells,
                 base_test={name: b.test.spearman for name, b in baselines.items()},
                 base_validation={name: b.validation.spearman for name, b in baselines.items() if b.validation},
                 rows={dataset: SplitReport.read(paths.split_report(dataset)).rows for dataset in datasets})


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def leaderboard_markdown(board: Board) -> str:
    """One row per dataset, one column per loss: validation / test Spearman (test gain over the base model)."""
    lines = ["| dataset | base model | " + " | ".join(board.losses) + " |", "|:--|--:|" + "--:|" * len(board.losses)]
    for dataset in board.datasets:
        winner = board.winner(dataset)
        cells = []
        for loss in board.losses:
            cell = board.cell(dataset, loss)
            text = f"{_score(cell.validation)} / {cell.test.tuned.spearman:.4f} ({cell.test.gain:+.4f})"
            cells.append(f"★ **{text}**" if cell is winner else text)
        base = f"{_score(board.base_validation.get(dataset))} / {board.base_test[dataset]:.4f}"
        lines.append(f"| {dataset} | {base} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def transfer_markdown(board: Board) -> str:
    """Rows: the cells (trained on); columns: every set (evaluated on); test Spearman and the gain over the base
    model on that set, a loss of quality marked ▼; the cell's own dataset marked •."""
    lines = ["| trained on | " + " | ".join(board.sets) + " |", "|:--|" + "--:|" * len(board.sets),
             "| base model | " + " | ".join(f"{board.base_test[name]:.4f}" for name in board.sets) + " |"]
    for dataset in board.datasets:
        for loss in board.losses:
            result = board.cell(dataset, loss).result
            shown = []
            for name in board.sets:
                scores = result.on(name, dataset)
                text = f"{scores.tuned.spearman:.4f} ({scores.gain:+.4f}{' ▼' if scores.gain < 0 else ''})"
                shown.append(f"• {text}" if name == dataset else text)
            lines.append(f"| {dataset} / {loss} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def leaderboard_csv(board: Board) -> str:
    rows = ["dataset,loss,validation_spearman,test_spearman_cosine,test_pearson_cosine,base_spearman_cosine,"
            "spearman_gain,winner"]
    for dataset in board.datasets:
        winner = board.winner(dataset)
        for loss in board.losses:
            cell = board.cell(dataset, loss)
            validation = "" if cell.validation is None else f"{cell.validation:.6f}"
            rows.append(f"{dataset},{loss},{validation},{cell.test.tuned.spearman:.6f},"
                        f"{cell.test.tuned.similarity['pearson_cosine']:.6f},{cell.test.base.spearman:.6f},"
                        f"{cell.test.gain:.6f},{int(cell is winner)}")
    return "\n".join(rows) + "\n"


def transfer_csv(board: Board) -> str:
    rows = ["trained_on,loss,evaluated_on,test_spearman_cosine,base_spearman_cosine,spearman_gain"]
    for (dataset, loss), cell in board.cells.items():
        for name in board.sets:
            scores = cell.result.on(name, dataset)
            rows.append(f"{dataset},{loss},{name},{scores.tuned.spearman:.6f},{scores.base.spearman:.6f},{scores.gain:.6f}")
    return "\n".join(rows) + "\n"


def dvc_metrics(board: Board) -> dict[str, dict[str, object]]:
    """Per dataset, its DVC metrics file: the winner, its validation and test Spearman, the base model's test
    Spearman and every loss's (`test.<loss>`). The same keys for every dataset, so `dvc metrics show` is one
    row per dataset under one header; the per-loss validation scores and split sizes stay in the leaderboard."""
    metrics: dict[str, dict[str, object]] = {}
    for dataset in board.datasets:
        row: dict[str, object] = {"base_test": round(board.base_test[dataset], 6),
                                  "test": {loss: round(board.cell(dataset, loss).test.tuned.spearman, 6)
                                           for loss in board.losses}}
        if (winner := board.winner(dataset)) is not None:
            row.update(winner=winner.loss, winner_val=round(winner.validation, 6),
                       winner_test=round(winner.test.tuned.spearman, 6))
        metrics[dataset] = row
    return metrics


def run_metrics(board: Board) -> dict[str, float]:
    """The leaderboard as MLflow metrics of the invocation run: per dataset the winner's validation and test
    Spearman and the base model's, and every cell's validation and test Spearman."""
    metrics: dict[str, float] = {}
    for dataset in board.datasets:
        metrics[f"{dataset}/base_test_spearman"] = board.base_test[dataset]
        if (winner := board.winner(dataset)) is not None:
            metrics[f"{dataset}/winner_validation_spearman"] = winner.validation
            metrics[f"{dataset}/winner_test_spearman"] = winner.test.tuned.spearman
        for loss in board.losses:
            cell = board.cell(dataset, loss)
            metrics[f"{dataset}/{loss}/test_spearman"] = cell.test.tuned.spearman
            if cell.validation is not None:
                metrics[f"{dataset}/{loss}/validation_spearman"] = cell.validation
    return metrics


def run_tags(board: Board) -> dict[str, str]:
    """Which loss won each dataset (a tag: it is a name, and may change when the invocation re-runs)."""
    return {f"winner.{dataset}": winner.loss if (winner := board.winner(dataset)) else "none (no validation)"
            for dataset in board.datasets}
