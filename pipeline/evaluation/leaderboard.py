"""Comparing the cells of a run: the winner per dataset, picked on validation, and the tables people read.

The winner rule: per dataset, the cell (base model x loss) whose kept checkpoint has the best validation
Spearman; cells within TIE of it tie, and a tie goes to the simpler loss (pipeline/core/loss_specs.py::SIMPLICITY),
then to the base model listed first in run.base_models. Every cell of a dataset is scored on the same validation
pairs, whatever its base model. The test split is never used to choose: its score is reported for the winner
exactly as for every other cell, so it stays an honest estimate of how the chosen model does on unseen data.
Gains are over each cell's own base model.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core import paths
from pipeline.core.handoffs import BaselineScores, EvalResult, SetResult, SplitReport, TrainFacts
from pipeline.core.loss_specs import simplicity
from pipeline.core.params import Params

TIE = 1e-4  # validation Spearman within this of the best counts as equal (the tables show 4 decimals)
WINNER_RULE = ("★ marks each dataset's winner: the best validation Spearman of the kept checkpoints, across base "
               f"models and losses; within {TIE} of each other counts as a tie, which goes to the simpler loss, then "
               "to the base model listed first. The test split is never used to choose: every cell's test score, the "
               "winner's included, is an honest estimate. Gains are over each cell's own base model.")


@dataclass(frozen=True)
class Cell:
    """One (dataset, base model, loss) cell as the report compares it."""

    dataset: str
    base: str
    loss: str
    validation: float | None  # the kept checkpoint's validation Spearman (None: trained without validation)
    result: EvalResult
    # lower is preferred among tied cells: the loss's simplicity (pipeline/core/loss_specs.py), the base's place
    preference: tuple[int, bool, int]

    @property
    def test(self) -> SetResult:
        return self.result.test

    @property
    def name(self) -> str:
        return paths.cell_name(self.dataset, self.base, self.loss)


def pick_winner(cells: list[Cell]) -> Cell | None:
    """The winner among one dataset's cells by the rule above; None when no cell was validated."""
    validated = [cell for cell in cells if cell.validation is not None]
    if not validated:
        return None
    best = max(cell.validation for cell in validated)
    tied = [cell for cell in validated if best - cell.validation < TIE]
    return min(tied, key=lambda cell: cell.preference)


@dataclass(frozen=True)
class Board:
    """Everything the report shows: the cells, each base model per set, rows per split."""

    datasets: list[str]
    bases: list[str]  # the base models' params names, in run.base_models order
    losses: list[str]
    sets: list[str]  # every set a cell is scored on: the datasets, then the eval sets
    cells: dict[tuple[str, str, str], Cell]  # (dataset, base, loss)
    base_models: dict[str, str]  # base name -> the model as cards show it (Hub id or directory name)
    base_test: dict[tuple[str, str], float]  # (set, base) -> that base model's test Spearman
    base_validation: dict[tuple[str, str], float]  # (dataset, base) -> that base model's validation Spearman
    rows: dict[str, dict[str, int]]  # dataset -> rows per split

    def cell(self, dataset: str, base: str, loss: str) -> Cell:
        return self.cells[dataset, base, loss]

    def dataset_cells(self, dataset: str) -> list[Cell]:
        return [self.cell(dataset, base, loss) for base in self.bases for loss in self.losses]

    def winner(self, dataset: str) -> Cell | None:
        return pick_winner(self.dataset_cells(dataset))


def read_board(params: Params) -> Board:
    """The run's Board, read from every cell's evaluation and training facts and every set's baselines."""
    from pipeline.core.models import display_id

    datasets, bases, losses = params.run.datasets, params.run.base_models, params.run.losses
    cells = {}
    for dataset in datasets:
        for place, base in enumerate(bases):
            for loss in losses:
                kept = TrainFacts.read(paths.train_facts(dataset, base, loss)).selection
                config = params.losses[loss]
                cells[dataset, base, loss] = Cell(dataset, base, loss, kept.kept_spearman,
                                                  EvalResult.read(paths.eval_result(dataset, base, loss)),
                                                  (*simplicity(config.class_name, config.matryoshka is not None), place))
    baselines = {(name, base): BaselineScores.read(paths.baseline_scores(name, base))
                 for name in params.evaluation_sets for base in bases}
    return Board(datasets=list(datasets), bases=list(bases), losses=list(losses), sets=params.evaluation_sets,
                 cells=cells, base_models={base: display_id(params.base(base).model) for base in bases},
                 base_test={key: b.test.spearman for key, b in baselines.items()},
                 base_validation={key: b.validation.spearman for key, b in baselines.items() if b.validation},
                 rows={dataset: SplitReport.read(paths.split_report(dataset)).rows for dataset in datasets})


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def base_models_line(board: Board) -> str:
    """The run's base models as `name (Hub id)`, for the headers above the tables."""
    return ", ".join(f"{base} ({board.base_models[base]})" for base in board.bases)


def leaderboard_markdown(board: Board) -> str:
    """One row per dataset and base model, one column per loss: validation / test Spearman (test gain over that
    base model), and the base model's own validation / test Spearman."""
    lines = ["| dataset | base model | untuned | " + " | ".join(board.losses) + " |",
             "|:--|:--|--:|" + "--:|" * len(board.losses)]
    for dataset in board.datasets:
        winner = board.winner(dataset)
        for base in board.bases:
            cells = []
            for loss in board.losses:
                cell = board.cell(dataset, base, loss)
                text = f"{_score(cell.validation)} / {cell.test.tuned.spearman:.4f} ({cell.test.gain:+.4f})"
                cells.append(f"★ **{text}**" if cell is winner else text)
            untuned = f"{_score(board.base_validation.get((dataset, base)))} / {board.base_test[dataset, base]:.4f}"
            lines.append(f"| {dataset} | {base} | {untuned} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def transfer_markdown(board: Board) -> str:
    """Rows: each untuned base model, then the cells (trained on); columns: every set (evaluated on); test
    Spearman and the gain over the cell's own base model on that set, a loss of quality marked ▼; the cell's own
    dataset marked •."""
    lines = ["| trained on | " + " | ".join(board.sets) + " |", "|:--|" + "--:|" * len(board.sets)]
    for base in board.bases:
        lines.append(f"| {base} (untuned) | " + " | ".join(f"{board.base_test[name, base]:.4f}" for name in board.sets) + " |")
    for cell in board.cells.values():
        shown = []
        for name in board.sets:
            scores = cell.result.on(name, cell.dataset)
            text = f"{scores.tuned.spearman:.4f} ({scores.gain:+.4f}{' ▼' if scores.gain < 0 else ''})"
            shown.append(f"• {text}" if name == cell.dataset else text)
        lines.append(f"| {cell.dataset} / {cell.base} / {cell.loss} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def leaderboard_csv(board: Board) -> str:
    rows = ["dataset,base,base_model,loss,validation_spearman,test_spearman_cosine,test_pearson_cosine,"
            "base_spearman_cosine,spearman_gain,winner"]
    for dataset in board.datasets:
        winner = board.winner(dataset)
        for cell in board.dataset_cells(dataset):
            validation = "" if cell.validation is None else f"{cell.validation:.6f}"
            rows.append(f"{dataset},{cell.base},{board.base_models[cell.base]},{cell.loss},{validation},"
                        f"{cell.test.tuned.spearman:.6f},{cell.test.tuned.similarity['pearson_cosine']:.6f},"
                        f"{cell.test.base.spearman:.6f},{cell.test.gain:.6f},{int(cell is winner)}")
    return "\n".join(rows) + "\n"


def transfer_csv(board: Board) -> str:
    rows = ["trained_on,base,loss,evaluated_on,test_spearman_cosine,base_spearman_cosine,spearman_gain"]
    for (dataset, base, loss), cell in board.cells.items():
        for name in board.sets:
            scores = cell.result.on(name, dataset)
            rows.append(f"{dataset},{base},{loss},{name},{scores.tuned.spearman:.6f},{scores.base.spearman:.6f},"
                        f"{scores.gain:.6f}")
    return "\n".join(rows) + "\n"


def dvc_metrics(board: Board) -> dict[str, dict[str, object]]:
    """Per dataset, its DVC metrics file: the winner (base model and loss), its validation and test Spearman, each
    base model's test Spearman (`base_test.<base>`) and every cell's (`test.<base>.<loss>`). The same keys for
    every dataset, so `dvc metrics show` is one row per dataset under one header; the per-cell validation scores
    and split sizes stay in the leaderboard."""
    metrics: dict[str, dict[str, object]] = {}
    for dataset in board.datasets:
        row: dict[str, object] = {
            "base_test": {base: round(board.base_test[dataset, base], 6) for base in board.bases},
            "test": {base: {loss: round(board.cell(dataset, base, loss).test.tuned.spearman, 6) for loss in board.losses}
                     for base in board.bases}}
        if (winner := board.winner(dataset)) is not None:
            row.update(winner=f"{winner.base}/{winner.loss}", winner_val=round(winner.validation, 6),
                       winner_test=round(winner.test.tuned.spearman, 6))
        metrics[dataset] = row
    return metrics


def run_metrics(board: Board) -> dict[str, float]:
    """The leaderboard as MLflow metrics of the invocation run: per dataset the winner's validation and test
    Spearman and each base model's, and every cell's validation and test Spearman."""
    metrics: dict[str, float] = {}
    for dataset in board.datasets:
        for base in board.bases:
            metrics[f"{dataset}/{base}/base_test_spearman"] = board.base_test[dataset, base]
        if (winner := board.winner(dataset)) is not None:
            metrics[f"{dataset}/winner_validation_spearman"] = winner.validation
            metrics[f"{dataset}/winner_test_spearman"] = winner.test.tuned.spearman
        for cell in board.dataset_cells(dataset):
            metrics[f"{cell.name}/test_spearman"] = cell.test.tuned.spearman
            if cell.validation is not None:
                metrics[f"{cell.name}/validation_spearman"] = cell.validation
    return metrics


def run_tags(board: Board) -> dict[str, str]:
    """Which cell won each dataset, as base/loss (a tag: it is a name, and may change when the invocation re-runs)."""
    return {f"winner.{dataset}": f"{winner.base}/{winner.loss}" if (winner := board.winner(dataset)) else "none (no validation)"
            for dataset in board.datasets}
