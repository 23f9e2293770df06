"""The report's figures (PNG, for people) and the long-format curve tables DVC plots render (`dvc plots show`
draws them with .dvc/plots/faceted_lines.json: one panel per dataset, one colour per loss, one dash per base)."""

from __future__ import annotations

from typing import Any

from pipeline.evaluation.leaderboard import Board, metrics_line

WINNER = "★"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_colours(losses: list[str]) -> dict[str, Any]:
    """One distinct colour per loss, the same in every panel and figure."""
    import matplotlib

    palette = matplotlib.colormaps["tab10" if len(losses) <= 10 else "tab20"]
    return {loss: palette(i) for i, loss in enumerate(losses)}


def heatmap(board: Board, out: Any) -> None:
    """Two panels, (dataset, base model) x loss: the validation gain over that base model in the dataset's metric
    (what the winner is picked on) and the test gain (what it is reported on); each winner outlined."""
    plt = _pyplot()
    rows, losses = [(d, base) for d in board.datasets for base in board.bases], board.losses
    fig, axes = plt.subplots(1, 2, figsize=(4 + 2.6 * len(losses), 1.8 + 0.8 * len(rows)), layout="constrained")
    panels = (
        ("validation", lambda d, base, loss: (board.cell(d, base, loss).validation, board.untuned(d, base)[0])),
        ("test", lambda d, base, loss: (board.tested(board.cell(d, base, loss))[0], board.untuned(d, base)[1])),
    )
    for ax, (name, values) in zip(axes, panels):
        pairs = [[values(d, base, loss) for loss in losses] for d, base in rows]
        gains = [[(v - b) if v is not None and b is not None else float("nan") for v, b in row] for row in pairs]
        limit = max([1e-6] + [abs(g) for row in gains for g in row if g == g])
        image = ax.imshow(gains, cmap="RdYlGn", vmin=-limit, vmax=limit)
        ax.set_xticks(range(len(losses)), losses)
        ax.set_yticks(range(len(rows)), [f"{d} / {base}" for d, base in rows])
        for i, (dataset, base) in enumerate(rows):
            winner = board.winner(dataset)
            for j, loss in enumerate(losses):
                value, _ = pairs[i][j]
                label = "-" if value is None else f"{value:.3f}\n{gains[i][j]:+.3f}"
                ax.text(j, i, label, ha="center", va="center", fontsize=8)
                if winner is not None and (winner.base, winner.loss) == (base, loss):
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2.5, ec="black"))
        fig.colorbar(image, ax=ax, label="gain over its base model", shrink=0.9)
        ax.set_title(f"{name.title()}: {metrics_line(board)}", fontsize=10)
    fig.suptitle("Winner (outlined): best validation score; test is reported, never used to choose", fontsize=9)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def transfer_heatmap(board: Board, out: Any) -> None:
    """Every cell (rows) on every set's test split (columns): gain over its base model, losses of quality in red."""
    plt = _pyplot()
    cells = list(board.cells.values())
    results = [[cell.result.on(name, cell.dataset) for name in board.sets] for cell in cells]
    gains = [[r.gain for r in row] for row in results]
    fig, ax = plt.subplots(figsize=(2.5 + 1.5 * len(board.sets), 1.2 + 0.45 * len(cells)))
    limit = max([1e-6] + [abs(g) for row in gains for g in row])
    image = ax.imshow(gains, cmap="RdYlGn", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(board.sets)), board.sets)
    ax.set_yticks(range(len(cells)), [f"{c.dataset} / {c.base} / {c.loss}" for c in cells])
    for i, cell in enumerate(cells):
        for j, name in enumerate(board.sets):
            own = " •" if name == cell.dataset else ""
            ax.text(j, i, f"{results[i][j].tuned.spearman:.3f}\n{gains[i][j]:+.3f}{own}", ha="center", va="center",
                    fontsize=7)
    fig.colorbar(image, ax=ax, label="test Spearman gain over its base model")
    ax.set(title="Transfer: each cell (trained on) scored on each set's test split (• its own)",
           xlabel="evaluated on", ylabel="trained on / base model / loss")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


Curves = dict[tuple[str, str, str], Any]  # (dataset, base, loss) -> a curve table
BASE_STYLES = ("-", "--", ":", "-.")


def curves(board: Board, validation: Curves, training: Curves, out: Any) -> None:
    """One column per dataset: validation Spearman from step 0 (the base model) on top, training loss below;
    one colour per loss, one line style per base model; the winner drawn thicker and starred."""
    plt = _pyplot()
    colours = loss_colours(board.losses)
    styles = {base: BASE_STYLES[i % len(BASE_STYLES)] for i, base in enumerate(board.bases)}
    fig, axes = plt.subplots(2, len(board.datasets), figsize=(4.6 * len(board.datasets), 7), squeeze=False)
    for column, dataset in enumerate(board.datasets):
        winner = board.winner(dataset)
        val_ax, loss_ax = axes[0][column], axes[1][column]
        for cell in board.dataset_cells(dataset):
            won = cell is winner
            label = cell.loss if len(board.bases) == 1 else f"{cell.base}/{cell.loss}"
            style = {"color": colours[cell.loss], "ls": styles[cell.base], "lw": 2.6 if won else 1.3,
                     "label": f"{label} {WINNER}" if won else label}
            val = validation[dataset, cell.base, cell.loss]
            val_ax.plot(val["step"], val["spearman"], marker="o", ms=3, **style)
            curve = training[dataset, cell.base, cell.loss]
            loss_ax.plot(curve["step"], curve["loss"], **style)
        for base in board.bases:
            val_ax.axhline(board.base_validation[dataset, base], color="grey", ls=styles[base], lw=1,
                           label=f"{base} untuned" if len(board.bases) > 1 else "base model")
        val_ax.set(title=f"{dataset}: validation Spearman", xlabel="step", ylabel="Spearman (cosine)")
        loss_ax.set(title=f"{dataset}: training loss", xlabel="step", ylabel="loss")
        val_ax.legend(fontsize=7)
    fig.suptitle(f"{WINNER} winner: best validation Spearman; step 0 is the untuned base model", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def long_curves(board: Board, curves_by_cell: Curves, value: str) -> Any:
    """One table of every cell's curve (dataset, base, loss, winner, step, value) for DVC's faceted line template."""
    import pandas as pd

    frames = []
    for (dataset, base, loss), curve in curves_by_cell.items():
        winner = board.winner(dataset)
        won = winner is not None and (winner.base, winner.loss) == (base, loss)
        frames.append(curve[["step", value]].assign(dataset=dataset, base=base, loss=loss, winner="yes" if won else "no"))
    return pd.concat(frames, ignore_index=True)[["dataset", "base", "loss", "winner", "step", value]]
