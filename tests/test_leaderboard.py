"""The winner rule and the report's tables, on constructed cells: the winner is picked on validation, never
on test; ties go to the simpler loss; a cell without validation cannot win."""

from __future__ import annotations

import pytest

from pipeline.core.handoffs import EvalResult, Scores, SetResult
from pipeline.core.loss_specs import simplicity
from pipeline.evaluation.leaderboard import TIE, Board, Cell, leaderboard_markdown, pick_winner, run_metrics, transfer_markdown

LOSSES = {"mnrl": "MultipleNegativesRankingLoss", "cosine": "CosineSimilarityLoss", "cosent": "CoSENTLoss"}


def scores(spearman: float) -> Scores:
    return Scores(similarity={"spearman_cosine": spearman, "pearson_cosine": spearman})


def cell(loss: str, validation: float | None, test: float, dataset: str = "d", base: float = 0.5,
         transfer: dict[str, tuple[float, float]] | None = None, matryoshka: bool = False) -> Cell:
    result = EvalResult(test=SetResult(tuned=scores(test), base=scores(base)),
                        transfer={name: SetResult(tuned=scores(t), base=scores(b)) for name, (t, b) in (transfer or {}).items()})
    return Cell(dataset, loss, validation, result, simplicity(LOSSES[loss], matryoshka))


def test_winner_is_the_best_validation_even_when_test_disagrees() -> None:
    best_on_validation = cell("mnrl", validation=0.80, test=0.70)
    best_on_test = cell("cosent", validation=0.75, test=0.90)
    assert pick_winner([best_on_validation, best_on_test]) is best_on_validation


def test_a_tie_on_validation_goes_to_the_simpler_loss() -> None:
    mnrl, cosine = cell("mnrl", 0.80, 0.9), cell("cosine", 0.80 - TIE / 2, 0.1)
    assert pick_winner([mnrl, cosine]) is cosine  # CosineSimilarityLoss is simpler than MNRL
    assert pick_winner([cell("mnrl", 0.80, 0.9), cell("cosine", 0.80 - 2 * TIE, 0.1)]).loss == "mnrl"
    plain, wrapped = cell("mnrl", 0.8, 0.5), cell("mnrl", 0.8, 0.6, matryoshka=True)
    assert pick_winner([wrapped, plain]) is plain  # a Matryoshka wrapper counts as less simple


def test_no_validation_no_winner() -> None:
    assert pick_winner([cell("mnrl", None, 0.9), cell("cosent", None, 0.8)]) is None
    assert pick_winner([cell("mnrl", None, 0.99), cell("cosent", 0.1, 0.2)]).loss == "cosent"


@pytest.fixture
def board() -> Board:
    cells = {
        ("a", "mnrl"): cell("mnrl", 0.81, 0.70, "a", 0.60, transfer={"b": (0.40, 0.45), "held": (0.55, 0.50)}),
        ("a", "cosent"): cell("cosent", 0.79, 0.75, "a", 0.60, transfer={"b": (0.50, 0.45), "held": (0.52, 0.50)}),
        ("b", "mnrl"): cell("mnrl", 0.60, 0.50, "b", 0.45, transfer={"a": (0.62, 0.60), "held": (0.49, 0.50)}),
        ("b", "cosent"): cell("cosent", 0.65, 0.55, "b", 0.45, transfer={"a": (0.58, 0.60), "held": (0.51, 0.50)}),
    }
    return Board(datasets=["a", "b"], losses=["mnrl", "cosent"], sets=["a", "b", "held"], cells=cells,
                 base_test={"a": 0.60, "b": 0.45, "held": 0.50}, base_validation={"a": 0.70, "b": 0.55},
                 rows={"a": {"train": 8, "validation": 1, "test": 2}, "b": {"train": 8, "validation": 1, "test": 2}})


def test_leaderboard_shows_validation_and_test_and_marks_the_winner(board: Board) -> None:
    lines = leaderboard_markdown(board).splitlines()
    assert lines[0] == "| dataset | base model | mnrl | cosent |"
    assert lines[2] == "| a | 0.7000 / 0.6000 | ★ **0.8100 / 0.7000 (+0.1000)** | 0.7900 / 0.7500 (+0.1500) |"
    assert lines[3] == "| b | 0.5500 / 0.4500 | 0.6000 / 0.5000 (+0.0500) | ★ **0.6500 / 0.5500 (+0.1000)** |"
    metrics = run_metrics(board)
    assert metrics["a/winner_validation_spearman"] == 0.81 and metrics["a/winner_test_spearman"] == 0.70


def test_transfer_table_marks_own_dataset_and_losses_of_quality(board: Board) -> None:
    lines = transfer_markdown(board).splitlines()
    assert lines[0] == "| trained on | a | b | held |"
    assert lines[2] == "| base model | 0.6000 | 0.4500 | 0.5000 |"
    assert lines[3] == "| a / mnrl | • 0.7000 (+0.1000) | 0.4000 (-0.0500 ▼) | 0.5500 (+0.0500) |"
    assert lines[6] == "| b / cosent | 0.5800 (-0.0200 ▼) | • 0.5500 (+0.1000) | 0.5100 (+0.0100) |"
