"""Comparing the cells of a run: the winner per dataset, picked on validation, and the tables people read.

The winner rule: per dataset, the cell (base model x loss) whose kept checkpoint has the best validation score
in the dataset's metric (report.metric; by default NDCG@10 for a BEIR set, Spearman for any other; a dataset
without the metric set goes by Spearman); cells within TIE of it tie, and a tie goes to the simpler loss
(pipeline/core/loss_specs.py::SIMPLICITY), then to the base model listed first in run.base_models. Every cell
of a dataset is scored on the same validation split, whatever its base model. The test split is never used
to choose: its score is reported for the winner exactly as for every other cell, so it stays an honest estimate
of how the chosen model does on unseen data. Gains are over each cell's own base model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.core import paths
from pipeline.core.handoffs import BaselineScores, EvalResult, SetResult, SplitReport, TrainFacts
from pipeline.core.loss_specs import simplicity
from pipeline.core.params import METRIC_NAMES, Params

RETRIEVAL_METRIC = "cosine_ndcg@10"  # the retrieval table's metric (InformationRetrievalEvaluator's name)
TIE = 1e-4  # validation scores within this of the best counts as equal (the tables show 4 decimals)
WINNER_RULE = ("★ marks each dataset's winner: the best validation score of the kept checkpoints in the dataset's "
               "metric (report.metric: Spearman, or NDCG@10 for a BEIR set, unless set), across base models and "
               f"losses; within {TIE} of each other counts as a tie, which goes to the simpler loss, then "
               "to the base model listed first. The test split is never used to choose: every cell's test score, the "
               "winner's included, is an honest estimate. Gains are over each cell's own base model.")


@dataclass(frozen=True)
class Cell:
    """One (dataset, base model, loss) cell as the report compares it."""

    dataset: str
    base: str
    loss: str
    validation: float | None  # the kept checkpoint's validation score in its dataset's metric (None: not validated)
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
    # (set, base) -> that base model's test NDCG@10, for the sets with queries (pair, triplet and BEIR sets)
    base_retrieval: dict[tuple[str, str], float] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)  # dataset -> what chooses its winner (Spearman if absent)
    # (dataset, base) -> that base model's validation and test score in the dataset's metric, where not Spearman
    base_chosen: dict[tuple[str, str], tuple[float | None, float | None]] = field(default_factory=dict)

    def metric(self, dataset: str) -> str:
        return self.metrics.get(dataset, "spearman")

    def untuned(self, dataset: str, base: str) -> tuple[float | None, float | None]:
        """The base model's validation and test score in the dataset's metric."""
        if self.metric(dataset) == "spearman":
            return self.base_validation.get((dataset, base)), self.base_test[dataset, base]
        return self.base_chosen.get((dataset, base), (None, None))

    def tested(self, cell: Cell) -> tuple[float | None, float | None]:
        """The cell's test score in its dataset's metric and the gain over its base model's."""
        metric = self.metric(cell.dataset)
        tuned, base = cell.test.tuned.value(metric), cell.test.base.value(metric)
        return tuned, None if tuned is None or base is None else tuned - base

    @property
    def retrieval_sets(self) -> list[str]:
        """The sets scored by retrieval, in the order of `sets`."""
        return [name for name in self.sets if any((name, base) in self.base_retrieval for base in self.bases)]

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
    splits = {dataset: SplitReport.read(paths.split_report(dataset)) for dataset in datasets}
    baselines = {(name, base): BaselineScores.read(paths.baseline_scores(name, base))
                 for name in params.evaluation_sets for base in bases}
    # a dataset without the chosen metric (report.metric: ndcg@10, but scored pairs have no queries) goes by Spearman
    metrics = {dataset: metric if baselines[dataset, bases[0]].test.value(metric) is not None else "spearman"
               for dataset in datasets
               for metric in [params.choice_metric(searches_corpus=splits[dataset].corpus > 0)]}
    cells = {}
    for dataset in datasets:
        for place, base in enumerate(bases):
            for loss in losses:
                kept = TrainFacts.read(paths.train_facts(dataset, base, loss)).selection
                result = EvalResult.read(paths.eval_result(dataset, base, loss))
                config = params.losses[loss]
                # the metric that chose the kept checkpoint: its score as training had it, unless training searched
                # part of the passages; any other: evaluate's validation scores
                validation = kept.kept_value if kept.metric == metrics[dataset] and not kept.partial_search else (
                    result.validation.tuned.value(metrics[dataset]) if result.validation else None)
                cells[dataset, base, loss] = Cell(dataset, base, loss, validation, result,
                                                  (*simplicity(config.class_name, config.matryoshka is not None), place))
    chosen = {(dataset, base): (b.validation.value(metrics[dataset]) if b.validation else None,
                                b.test.value(metrics[dataset]))
              for (dataset, base), b in baselines.items() if dataset in metrics and metrics[dataset] != "spearman"}
    return Board(datasets=list(datasets), bases=list(bases), losses=list(losses), sets=params.evaluation_sets,
                 cells=cells, base_models={base: display_id(params.base(base).model) for base in bases},
                 base_test={key: b.test.spearman for key, b in baselines.items()},
                 base_validation={key: b.validation.spearman for key, b in baselines.items() if b.validation},
                 rows={dataset: splits[dataset].rows for dataset in datasets},
                 base_retrieval={key: b.test.retrieval[RETRIEVAL_METRIC] for key, b in baselines.items()
                                 if RETRIEVAL_METRIC in b.test.retrieval}, metrics=metrics, base_chosen=chosen)


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def base_models_line(board: Board) -> str:
    """The run's base models as `name (Hub id)`, for the headers above the tables."""
    return ", ".join(f"{base} ({board.base_models[base]})" for base in board.bases)


def metrics_line(board: Board) -> str:
    """Which metric chooses each dataset's winner and fills its row, for the line above the leaderboard."""
    by_metric: dict[str, list[str]] = {}
    for dataset in board.datasets:
        by_metric.setdefault(board.metric(dataset), []).append(dataset)
    return "; ".join(f"{METRIC_NAMES.get(metric, metric)} ({', '.join(names)})" for metric, names in by_metric.items())


def leaderboard_markdown(board: Board) -> str:
    """One row per dataset and base model, one column per loss: validation / test score in the dataset's metric
    (test gain over that base model), and the base model's own validation / test score."""
    lines = ["| dataset | base model | untuned | " + " | ".join(board.losses) + " |",
             "|:--|:--|--:|" + "--:|" * len(board.losses)]
    for dataset in board.datasets:
        winner = board.winner(dataset)
        for base in board.bases:
            cells = []
            for loss in board.losses:
                cell = board.cell(dataset, base, loss)
                test, gain = board.tested(cell)
                text = f"{_score(cell.validation)} / {_score(test)}" + ("" if gain is None else f" ({gain:+.4f})")
                cells.append(f"★ **{text}**" if cell is winner else text)
            untuned = " / ".join(map(_score, board.untuned(dataset, base)))
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


def _ndcg(result: SetResult) -> tuple[float, float] | None:
    tuned, base = result.tuned.retrieval.get(RETRIEVAL_METRIC), result.base.retrieval.get(RETRIEVAL_METRIC)
    return None if tuned is None or base is None else (tuned, tuned - base)


def retrieval_markdown(board: Board) -> str:
    """The transfer table's layout for search quality: test NDCG@10 of every cell on every set with queries, and
    the gain over its own base model (▼ a loss); the cell's own dataset marked •. Empty without such sets."""
    sets = board.retrieval_sets
    if not sets:
        return ""
    lines = ["| trained on | " + " | ".join(sets) + " |", "|:--|" + "--:|" * len(sets)]
    for base in board.bases:
        untuned = [_score(board.base_retrieval.get((name, base))) for name in sets]
        lines.append(f"| {base} (untuned) | " + " | ".join(untuned) + " |")
    for cell in board.cells.values():
        shown = []
        for name in sets:
            ndcg = _ndcg(cell.result.on(name, cell.dataset))
            text = "-" if ndcg is None else f"{ndcg[0]:.4f} ({ndcg[1]:+.4f}{' ▼' if ndcg[1] < 0 else ''})"
            shown.append(f"• {text}" if name == cell.dataset else text)
        lines.append(f"| {cell.dataset} / {cell.base} / {cell.loss} | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def leaderboard_csv(board: Board) -> str:
    """A row per cell: its validation and test score in the dataset's metric (named in `metric`) and the test gain
    over its base model, and test Spearman / Pearson whatever the metric."""
    rows = ["dataset,base,base_model,loss,metric,validation,test,gain,test_spearman_cosine,test_pearson_cosine,"
            "base_spearman_cosine,spearman_gain,winner"]
    for dataset in board.datasets:
        winner = board.winner(dataset)
        for cell in board.dataset_cells(dataset):
            chosen = ",".join("" if value is None else f"{value:.6f}" for value in (cell.validation, *board.tested(cell)))
            rows.append(f"{dataset},{cell.base},{board.base_models[cell.base]},{cell.loss},{board.metric(dataset)},{chosen},"
                        f"{cell.test.tuned.spearman:.6f},{cell.test.tuned.similarity['pearson_cosine']:.6f},"
                        f"{cell.test.base.spearman:.6f},{cell.test.gain:.6f},{int(cell is winner)}")
    return "\n".join(rows) + "\n"


def transfer_csv(board: Board) -> str:
    rows = ["trained_on,base,loss,evaluated_on,test_spearman_cosine,base_spearman_cosine,spearman_gain,"
            "test_ndcg_at_10,ndcg_gain"]  # NDCG@10 empty for a set without queries (scored pairs)
    for (dataset, base, loss), cell in board.cells.items():
        for name in board.sets:
            scores = cell.result.on(name, dataset)
            ndcg = ",".join(f"{value:.6f}" for value in _ndcg(scores) or ()) or ","
            rows.append(f"{dataset},{base},{loss},{name},{scores.tuned.spearman:.6f},{scores.base.spearman:.6f},"
                        f"{scores.gain:.6f},{ndcg}")
    return "\n".join(rows) + "\n"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def metric_key(metric: str) -> str:
    """A metric's name as MLflow takes it (no "@")."""
    return metric.replace("@", "_at_")


def dvc_metrics(board: Board) -> dict[str, dict[str, object]]:
    """Per dataset, its DVC metrics file, in the dataset's metric (named under `metric`): the winner (base model
    and loss), its validation and test score, each base model's test score (`base_test.<base>`) and every cell's
    (`test.<base>.<loss>`). The same keys for every dataset, so `dvc metrics show` is one row per dataset under
    one header; the per-cell validation scores and split sizes stay in the leaderboard."""
    metrics: dict[str, dict[str, object]] = {}
    for dataset in board.datasets:
        row: dict[str, object] = {
            "metric": board.metric(dataset),
            "base_test": {base: _rounded(board.untuned(dataset, base)[1]) for base in board.bases},
            "test": {base: {loss: _rounded(board.tested(board.cell(dataset, base, loss))[0]) for loss in board.losses}
                     for base in board.bases}}
        if (winner := board.winner(dataset)) is not None:
            row.update(winner=f"{winner.base}/{winner.loss}", winner_val=round(winner.validation, 6),
                       winner_test=_rounded(board.tested(winner)[0]))
        metrics[dataset] = row
    return metrics


def run_metrics(board: Board) -> dict[str, float]:
    """The leaderboard as MLflow metrics of the invocation run, each named with its dataset's metric: per dataset
    the winner's validation and test score and each base model's, and every cell's validation and test score."""
    metrics: dict[str, float | None] = {}
    for dataset in board.datasets:
        name = metric_key(board.metric(dataset))
        for base in board.bases:
            metrics[f"{dataset}/{base}/base_test_{name}"] = board.untuned(dataset, base)[1]
        if (winner := board.winner(dataset)) is not None:
            metrics[f"{dataset}/winner_validation_{name}"] = winner.validation
            metrics[f"{dataset}/winner_test_{name}"] = board.tested(winner)[0]
        for cell in board.dataset_cells(dataset):
            metrics[f"{cell.name}/test_{name}"] = board.tested(cell)[0]
            metrics[f"{cell.name}/validation_{name}"] = cell.validation
    return {key: value for key, value in metrics.items() if value is not None}


def run_tags(board: Board) -> dict[str, str]:
    """Which cell won each dataset, as base/loss, and the metric that chose it (tags: names, which may change
    when the invocation re-runs)."""
    return {**{f"winner.{dataset}": f"{won.base}/{won.loss}" if (won := board.winner(dataset)) else "none (no validation)"
               for dataset in board.datasets},
            **{f"chosen_by.{dataset}": board.metric(dataset) for dataset in board.datasets}}
