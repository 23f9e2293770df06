"""Each seed card's setup (configs/seed_*.yaml) runs with the tiny model for a few steps, and its card
shows that setup: loss and its parameters, hyperparameters, adapter, precision."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipeline import card, evaluate, train
from pipeline.core import paths
from pipeline.core.handoffs import TrainFacts
from tests.conftest import ROOT, prepare_set, tiny_params

CONFIGS = sorted((ROOT / "configs").glob("seed_*.yaml"))


def merge(base: dict, override: dict) -> dict:
    for key, value in override.items():
        base[key] = merge(base.get(key, {}), value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return base


EXPECTED = {
    "seed_000_mnrl_lora": ["loss:MultipleNegativesRankingLoss", "`per_device_train_batch_size`: 16",
                           "LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, target_modules=['query', 'key', 'value'])"],
    "seed_001_mnrl_10_epochs": ["`num_train_epochs`: 10", "`eval_strategy`: steps", "`per_device_train_batch_size`: 32"],
    "seed_002_other_base_0_10_scores": ["`num_train_epochs`: 2", "Maximum Sequence Length:** 128 tokens",
                                        "* Adaptation: scored pairs -> pairs"],
    "seed_003_triplet_zh_products": ['"distance_metric": "TripletDistanceMetric.EUCLIDEAN"', '"triplet_margin": 5',
                                     "loss:TripletLoss", "`num_train_epochs`: 2"],
    "seed_004_cosine_fp16": ["loss:CosineSimilarityLoss", '"loss_fct": "torch.nn.modules.loss.MSELoss"',
                             "fp32 (fp16 requested; it needs a CUDA GPU)", "`eval_strategy`: steps"],
}


def test_every_seed_has_a_config_and_expectation() -> None:
    assert {c.stem for c in CONFIGS} == set(EXPECTED)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_seed_setup_runs_and_card_shows_it(config: Path, tiny_model_dir: Path, workdir: Path) -> None:
    override = yaml.safe_load(config.read_text())
    override.pop("experiment_name")
    shutil.copytree(ROOT / "data" / "raw", workdir / "data" / "raw")
    params = merge(tiny_params(tiny_model_dir, [], []), override)
    (base,) = params["run"]["base_models"]  # the seed's model is replaced by the tiny one, nothing else
    params["base_models"][base] = {**params["base_models"].get(base, {}), "model": str(tiny_model_dir)}
    for dataset in params["datasets"].values():
        if "rows" in dataset:
            dataset["rows"] = 80
    params["train"]["max_steps"] = 3
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    (dataset,), (loss,) = params["run"]["datasets"], params["run"]["losses"]
    prepare_set(dataset, base)
    for stage in (train, evaluate, card):
        stage.main(["--dataset", dataset, "--base", base, "--loss", loss])
    text = (workdir / paths.card(dataset, base, loss)).read_text()
    for expected in EXPECTED[config.stem]:
        assert expected in text, expected
    facts = TrainFacts.read(workdir / paths.train_facts(dataset, base, loss))
    assert facts.reload_max_abs_diff <= 1e-5  # the saved model (adapter included) gives the trained embeddings
    if params["train"].get("lora"):
        saved = workdir / paths.model_dir(dataset, base, loss)
        assert (saved / "adapter_config.json").exists() and not (saved / "model.safetensors").exists()
