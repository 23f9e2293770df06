"""Which weights the train stage keeps (the best validation Spearman, or the last step's), early stopping,
the evaluation cadence, and the progress lines a run prints where there is no terminal — through the real
train stage with the tiny model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sentence_transformers import SentenceTransformer

from pipeline import card, evaluate, report, train
from pipeline.core import paths
from pipeline.core.handoffs import TrainFacts, Winner
from pipeline.core.params import TrainParams
from pipeline.evaluation.scoring import similarity_scores, validation_pairs
from pipeline.training.arguments import eval_steps, total_steps
from tests.conftest import ROOT, stage_project, tiny_params

# A learning rate 200x the default makes the tiny model's validation Spearman collapse after its first
# evaluations: the constructed case where the last evaluation is worse than an earlier one.
UNSTABLE = {"learning_rate": 0.01, "max_steps": 12, "eval_steps": 2}


def configure(root: Path, tiny_model_dir: Path, **train_params: object) -> dict:
    params = tiny_params(tiny_model_dir, ["sts"], ["cosent"])
    params["train"].update(train_params)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return params


@pytest.fixture(scope="module")
def project(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("selection")
    with stage_project(root, tiny_params(tiny_model_dir, ["sts"], ["cosent"]), ["sts"]):
        yield root


def kept_model_validation(root: Path) -> float:
    from pipeline.core.loading import load_params

    scored, _ = validation_pairs("sts", load_params(root / "params.yaml"))
    return similarity_scores(SentenceTransformer(str(root / paths.model_dir("sts", "tiny", "cosent"))), scored).spearman


def test_select_best_keeps_an_earlier_checkpoint_when_the_last_evaluation_is_worse(project: Path,
                                                                                     tiny_model_dir: Path) -> None:
    configure(project, tiny_model_dir, **UNSTABLE)
    train.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
    kept = TrainFacts.read(project / paths.train_facts("sts", "tiny", "cosent")).selection
    assert kept.rule == "best" and kept.evaluations == 6 and kept.last_step == 12
    assert kept.best_step < kept.last_step and kept.best_value > kept.last_value, "the constructed case"
    assert kept.kept_step == kept.best_step
    # the saved model is the best step's, not the last one's: it scores the best validation Spearman again
    assert kept_model_validation(project) == pytest.approx(kept.best_value, abs=1e-6)
    assert kept_model_validation(project) != pytest.approx(kept.last_value, abs=1e-3)

    evaluate.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
    card.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
    text = (project / paths.card("sts", "tiny", "cosent")).read_text()
    assert f"Checkpoint kept: the weights of step {kept.best_step} of 12: the best validation Spearman" in text
    assert "* The bold row denotes the saved checkpoint." in text
    logs = text[text.index("### Training Logs"):]
    bold = [line for line in logs.splitlines() if line.startswith("| **")]
    assert len(bold) == 1 and f"| **{kept.best_step}** |" in bold[0]  # the library bolds the kept step's row


def test_select_last_keeps_the_last_weights(project: Path, tiny_model_dir: Path) -> None:
    configure(project, tiny_model_dir, select="last", **UNSTABLE)
    train.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
    kept = TrainFacts.read(project / paths.train_facts("sts", "tiny", "cosent")).selection
    assert kept.rule == "last" and kept.kept_step == 12 and kept.kept_value == kept.last_value
    assert kept_model_validation(project) == pytest.approx(kept.last_value, abs=1e-6)


def test_without_validation_during_training_the_last_weights_get_one_pass_and_can_win(project: Path,
                                                                                      tiny_model_dir: Path) -> None:
    # eval_strategy: no is a legal way to save time; the report still needs a validation score to pick the
    # dataset's winner by (publish fails without one), so the kept weights get exactly one pass
    configure(project, tiny_model_dir, eval_strategy="no", select="last", max_steps=4)
    train.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
    kept = TrainFacts.read(project / paths.train_facts("sts", "tiny", "cosent")).selection
    assert kept.rule == "last" and kept.evaluations == 1 and kept.kept_step == kept.last_step == 4
    assert kept.kept_value == kept.last_value == pytest.approx(kept_model_validation(project), abs=1e-6)
    evaluate.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
    report.main([])
    winner = Winner.read(project / paths.winner("sts"))
    assert winner.loss == "cosent" and winner.validation == pytest.approx(kept.kept_value)


def test_a_mixed_precision_cell_saves_fp32_weights_that_reproduce_its_embeddings(project: Path,
                                                                                   tiny_model_dir: Path) -> None:
    # bf16 on a CPU (what `precision: auto` picks on AMX CPUs; it runs, emulated, on any CPU): the trainer
    # computes in autocast, the saved weights are fp32, and the stage's reload check must compare fp32 with
    # fp32. Before the fix this stage failed: "the saved model does not reproduce the trained embeddings"
    configure(project, tiny_model_dir, precision="bf16")
    train.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
    facts = TrainFacts.read(project / paths.train_facts("sts", "tiny", "cosent"))
    assert facts.precision == "bf16" and facts.reload_max_abs_diff <= 1e-5
    # validation during training ran in bf16: the saved model's fp32 score is close to it, not equal
    assert kept_model_validation(project) == pytest.approx(facts.selection.kept_value, abs=0.05)


def test_early_stopping_stops_before_the_last_step_and_the_card_says_so(project: Path, tiny_model_dir: Path) -> None:
    configure(project, tiny_model_dir, early_stopping_patience=2, **UNSTABLE)
    train.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
    facts = TrainFacts.read(project / paths.train_facts("sts", "tiny", "cosent"))
    kept = facts.selection
    assert kept.stopped_early_at is not None
    assert facts.global_step == kept.last_step == kept.stopped_early_at < 12
    assert kept.evaluations == kept.stopped_early_at // 2  # patience 2: two evaluations without a new best
    evaluate.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
    card.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
    text = (project / paths.card("sts", "tiny", "cosent")).read_text()
    assert f"Early stopping ended training at step {kept.stopped_early_at}" in text


def test_eval_steps_auto_makes_about_ten_passes_whatever_the_size() -> None:
    train = TrainParams(batch_size=32)
    for rows, passes in ((425, 7), (6_000, 10), (300_000, 10)):
        steps = total_steps(train, rows)
        assert -(-steps // eval_steps(train, rows)) == passes, rows  # ceil(steps / eval_steps) validation passes
    assert eval_steps(TrainParams(eval_steps=7), 6_000) == 7
    assert eval_steps(TrainParams(eval_strategy="epoch", select="last"), 6_000) is None


def test_validation_is_subsampled_and_the_card_says_so(project: Path, tiny_model_dir: Path) -> None:
    configure(project, tiny_model_dir, validation_pairs=3)
    train.main(["--dataset", "sts", "--base", "tiny", "--loss", "cosent"])
    facts = TrainFacts.read(project / paths.train_facts("sts", "tiny", "cosent"))
    assert facts.validation_pairs == 3 < facts.validation_total
    assert any(f"on 3 of the {facts.validation_total:,} validation pairs" in choice for choice in facts.recipe)


def test_progress_is_one_line_per_log_without_a_terminal(project: Path, tiny_model_dir: Path) -> None:
    configure(project, tiny_model_dir)
    env = {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PATH": str(Path(sys.executable).parent),
           "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
    proc = subprocess.run([sys.executable, "-m", "pipeline.train", "--dataset", "sts", "--base", "tiny", "--loss", "cosent"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    steps = [line for line in lines if line.startswith("train sts/tiny/cosent: step ")]
    assert "train sts/tiny/cosent: step 1/4 (25%) loss " in steps[0] and "elapsed, ~" in steps[0]
    assert any("validation Spearman" in line for line in steps)
    assert "{'loss'" not in proc.stdout  # not the library's raw dicts
    output = proc.stdout + proc.stderr
    assert "\r" not in output and "it/s]" not in output  # no progress bars in captured output
    assert "deprecated" not in output.lower() and "Warning" not in output


def test_the_estimate_counts_steps_and_validation_passes_at_their_own_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    # 100 steps of 1 s, a 5 s validation pass every 10 steps: at step 20, two passes done, 80 steps and 8 passes
    # remain: 120 s (a per-step rate with the passes folded in says 80 s just before the first pass)
    import io
    from types import SimpleNamespace

    from pipeline.training import callbacks
    from pipeline.training.callbacks import CompactProgress, passes_left

    clock = [0.0]
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: clock[0])
    args = SimpleNamespace(eval_strategy="steps", eval_steps=10)
    state = SimpleNamespace(global_step=0, max_steps=100)
    out = io.StringIO()
    progress = CompactProgress("sts/tiny/cosine", "Spearman", "eval_validation_spearman_cosine", stream=out)
    progress.on_train_begin(args, state, None)
    for step in range(1, 21):
        clock[0] += 1.0
        state.global_step = step
        progress.on_step_end(args, state, None)
        progress.on_log(args, state, None, logs={"loss": 0.5})
        if step % 10 == 0:
            clock[0] += 5.0
            progress.on_evaluate(args, state, None, metrics={"eval_validation_spearman_cosine": 0.8})
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("train sts/tiny/cosine: step 20/100 (20%) validation Spearman 0.8000 |"), last
    assert last.endswith("0:30 elapsed, ~2:00 left"), last
    assert passes_left(args, state) == 8 and passes_left(args, state, at_this_step=True) == 9
    assert passes_left(SimpleNamespace(eval_strategy="epoch", eval_steps=None), state) == 0
    assert passes_left(SimpleNamespace(eval_strategy="steps", eval_steps=0.25), state) == 4  # every 25 steps
