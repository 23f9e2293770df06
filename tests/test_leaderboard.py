"""The winner rule and the report's tables, on constructed cells: the winner is picked on validation, never
on test; ties go to the simpler loss; a cell without validation cannot win."""

from __future__ import annotations

import pytest

from pipeline.core.handoffs import EvalResult, Scores, SetResult
from pipeline.core.loss_specs import simplicity
from pipeline.evaluation import leaderboard
from pipeline.evaluation.leaderboard import TIE, Board, Cell, leaderboard_markdown, pick_winner, run_metrics, transfer_markdown

LOSSES = {"mnrl": "MultipleNegativesRankingLoss", "cosine": "CosineSimilarityLoss", "cosent": "CoSENTLoss"}


def scores(spearman: float) -> Scores:
    return Scores(similarity={"spearman_cosine": spearman, "pearson_cosine": spearman})


def cell(loss: str, validation: float | None, test: float, dataset: str = "d", base: float = 0.5,
         transfer: dict[str, tuple[float, float]] | None = None, matryoshka: bool = False, base_name: str = "m",
         place: int = 0) -> Cell:
    result = EvalResult(test=SetResult(tuned=scores(test), base=scores(base)),
                        transfer={name: SetResult(tuned=scores(t), base=scores(b)) for name, (t, b) in (transfer or {}).items()})
    return Cell(dataset, base_name, loss, validation, result, (*simplicity(LOSSES[loss], matryoshka), place))


def test_winner_is_the_best_validation_even_when_test_disagrees() -> None:
    best_on_validation = cell("mnrl", validation=0.80, test=0.70)
    best_on_test = cell("cosent", validation=0.75, test=0.90)
    assert pick_winner([best_on_validation, best_on_test]) is best_on_validation


def test_a_tie_on_validation_goes_to_the_simpler_loss_then_the_first_base() -> None:
    mnrl, cosine = cell("mnrl", 0.80, 0.9), cell("cosine", 0.80 - TIE / 2, 0.1)
    assert pick_winner([mnrl, cosine]) is cosine  # CosineSimilarityLoss is simpler than MNRL
    assert pick_winner([cell("mnrl", 0.80, 0.9), cell("cosine", 0.80 - 2 * TIE, 0.1)]).loss == "mnrl"
    plain, wrapped = cell("mnrl", 0.8, 0.5), cell("mnrl", 0.8, 0.6, matryoshka=True)
    assert pick_winner([wrapped, plain]) is plain  # a Matryoshka wrapper counts as less simple
    first, second = cell("mnrl", 0.8, 0.5, base_name="m", place=0), cell("mnrl", 0.8, 0.6, base_name="p", place=1)
    assert pick_winner([second, first]) is first  # same loss, tied: the base model listed first in run.base_models


def test_no_validation_no_winner() -> None:
    assert pick_winner([cell("mnrl", None, 0.9), cell("cosent", None, 0.8)]) is None
    assert pick_winner([cell("mnrl", None, 0.99), cell("cosent", 0.1, 0.2)]).loss == "cosent"


def _board(cells: list[Cell], bases: list[str], base_test: dict, base_validation: dict) -> Board:
    return Board(datasets=["a", "b"], bases=bases, losses=["mnrl", "cosent"], sets=["a", "b", "held"],
                 cells={(c.dataset, c.base, c.loss): c for c in cells}, base_models={b: f"org/{b}" for b in bases},
                 base_test=base_test, base_validation=base_validation,
                 rows={"a": {"train": 8, "validation": 1, "test": 2}, "b": {"train": 8, "validation": 1, "test": 2}})


@pytest.fixture
def board() -> Board:
    cells = [cell("mnrl", 0.81, 0.70, "a", 0.60, transfer={"b": (0.40, 0.45), "held": (0.55, 0.50)}),
             cell("cosent", 0.79, 0.75, "a", 0.60, transfer={"b": (0.50, 0.45), "held": (0.52, 0.50)}),
             cell("mnrl", 0.60, 0.50, "b", 0.45, transfer={"a": (0.62, 0.60), "held": (0.49, 0.50)}),
             cell("cosent", 0.65, 0.55, "b", 0.45, transfer={"a": (0.58, 0.60), "held": (0.51, 0.50)})]
    return _board(cells, ["m"], {("a", "m"): 0.60, ("b", "m"): 0.45, ("held", "m"): 0.50},
                  {("a", "m"): 0.70, ("b", "m"): 0.55})


def test_leaderboard_shows_validation_and_test_and_marks_the_winner(board: Board) -> None:
    lines = leaderboard_markdown(board).splitlines()
    assert lines[0] == "| dataset | base model | untuned | mnrl | cosent |"
    assert lines[2] == "| a | m | 0.7000 / 0.6000 | ★ **0.8100 / 0.7000 (+0.1000)** | 0.7900 / 0.7500 (+0.1500) |"
    assert lines[3] == "| b | m | 0.5500 / 0.4500 | 0.6000 / 0.5000 (+0.0500) | ★ **0.6500 / 0.5500 (+0.1000)** |"
    metrics = run_metrics(board)
    assert metrics["a/winner_validation_spearman"] == 0.81 and metrics["a/winner_test_spearman"] == 0.70
    assert metrics["a/m/mnrl/test_spearman"] == 0.70 and metrics["a/m/base_test_spearman"] == 0.60


def test_transfer_table_marks_own_dataset_and_losses_of_quality(board: Board) -> None:
    lines = transfer_markdown(board).splitlines()
    assert lines[0] == "| trained on | a | b | held |"
    assert lines[2] == "| m (untuned) | 0.6000 | 0.4500 | 0.5000 |"
    assert lines[3] == "| a / m / mnrl | • 0.7000 (+0.1000) | 0.4000 (-0.0500 ▼) | 0.5500 (+0.0500) |"
    assert lines[6] == "| b / m / cosent | 0.5800 (-0.0200 ▼) | • 0.5500 (+0.1000) | 0.5100 (+0.0100) |"


def test_two_base_models_one_comparison_each_gain_over_its_own_base() -> None:
    # on a, the second base ("p") starts higher and its fine-tune wins on validation; its gain is over p, not m
    cells = [cell("mnrl", 0.81, 0.70, "a", 0.60, {"b": (0.4, 0.45), "held": (0.5, 0.5)}, base_name="m", place=0),
             cell("cosent", 0.79, 0.75, "a", 0.60, {"b": (0.5, 0.45), "held": (0.5, 0.5)}, base_name="m", place=0),
             cell("mnrl", 0.86, 0.80, "a", 0.72, {"b": (0.6, 0.55), "held": (0.6, 0.58)}, base_name="p", place=1),
             cell("cosent", 0.84, 0.82, "a", 0.72, {"b": (0.6, 0.55), "held": (0.6, 0.58)}, base_name="p", place=1),
             cell("mnrl", 0.60, 0.50, "b", 0.45, {"a": (0.62, 0.60), "held": (0.5, 0.5)}, base_name="m", place=0),
             cell("cosent", 0.65, 0.55, "b", 0.45, {"a": (0.58, 0.60), "held": (0.5, 0.5)}, base_name="m", place=0),
             cell("mnrl", 0.62, 0.57, "b", 0.55, {"a": (0.7, 0.72), "held": (0.6, 0.58)}, base_name="p", place=1),
             cell("cosent", 0.64, 0.58, "b", 0.55, {"a": (0.7, 0.72), "held": (0.6, 0.58)}, base_name="p", place=1)]
    two = _board(cells, ["m", "p"],
                 {("a", "m"): 0.60, ("b", "m"): 0.45, ("held", "m"): 0.50, ("a", "p"): 0.72, ("b", "p"): 0.55,
                  ("held", "p"): 0.58},
                 {("a", "m"): 0.70, ("b", "m"): 0.55, ("a", "p"): 0.80, ("b", "p"): 0.60})
    assert (two.winner("a").base, two.winner("a").loss) == ("p", "mnrl")
    assert (two.winner("b").base, two.winner("b").loss) == ("m", "cosent")  # 0.65 beats p's best, 0.64
    lines = leaderboard_markdown(two).splitlines()
    assert lines[2:6] == ["| a | m | 0.7000 / 0.6000 | 0.8100 / 0.7000 (+0.1000) | 0.7900 / 0.7500 (+0.1500) |",
                          "| a | p | 0.8000 / 0.7200 | ★ **0.8600 / 0.8000 (+0.0800)** | 0.8400 / 0.8200 (+0.1000) |",
                          "| b | m | 0.5500 / 0.4500 | 0.6000 / 0.5000 (+0.0500) | ★ **0.6500 / 0.5500 (+0.1000)** |",
                          "| b | p | 0.6000 / 0.5500 | 0.6200 / 0.5700 (+0.0200) | 0.6400 / 0.5800 (+0.0300) |"]
    transfer = transfer_markdown(two).splitlines()
    assert transfer[2:4] == ["| m (untuned) | 0.6000 | 0.4500 | 0.5000 |", "| p (untuned) | 0.7200 | 0.5500 | 0.5800 |"]
    assert "| a / p / mnrl | • 0.8000 (+0.0800) | 0.6000 (+0.0500) | 0.6000 (+0.0200) |" in transfer
    metrics = leaderboard.dvc_metrics(two)
    assert metrics["a"]["winner"] == "p/mnrl" and metrics["a"]["base_test"] == {"m": 0.6, "p": 0.72}
    assert metrics["b"]["test"]["p"] == {"mnrl": 0.57, "cosent": 0.58}
    rows = leaderboard.leaderboard_csv(two).splitlines()
    assert rows[0].startswith("dataset,base,base_model,loss,metric,") and "a,p,org/p,mnrl,spearman,0.860000,0.800000" in rows[3]


def test_the_retrieval_table_shows_ndcg_and_its_gain_on_the_sets_with_queries() -> None:
    def searched(spearman: float, ndcg: float) -> Scores:
        return scores(spearman).model_copy(update={"retrieval": {leaderboard.RETRIEVAL_METRIC: ndcg}})

    result = EvalResult(test=SetResult(tuned=searched(0.7, 0.60), base=searched(0.6, 0.50)),
                        transfer={"b": SetResult(tuned=scores(0.4), base=scores(0.45)),  # scored pairs: no queries
                                  "held": SetResult(tuned=searched(0.5, 0.30), base=searched(0.5, 0.40))})
    found = Cell("a", "m", "mnrl", 0.8, result, (*simplicity(LOSSES["mnrl"], False), 0))
    board = _board([found], ["m"], {}, {})
    assert leaderboard.retrieval_markdown(board) == ""  # no base model scored by retrieval anywhere: no table
    board = Board(**{**board.__dict__, "base_retrieval": {("a", "m"): 0.5, ("held", "m"): 0.4}})
    lines = leaderboard.retrieval_markdown(board).splitlines()
    assert lines[0] == "| trained on | a | held |" and lines[2] == "| m (untuned) | 0.5000 | 0.4000 |"
    assert lines[3] == "| a / m / mnrl | • 0.6000 (+0.1000) | 0.3000 (-0.1000 ▼) |"
    csv = leaderboard.transfer_csv(board).splitlines()
    assert csv[0].endswith(",test_ndcg_at_10,ndcg_gain") and csv[2].startswith("a,m,mnrl,b,") and csv[2].endswith(",,")
    assert csv[3].endswith(",0.300000,-0.100000")
