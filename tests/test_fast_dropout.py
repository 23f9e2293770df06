"""The cheaper CPU dropout: same keep rate and scaling as torch's, same attention as SDPA without
dropout, no trace in the saved model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from pipeline.training.fast_dropout import ATTENTION, FastDropout, attention, cheap_dropout, install


def test_keep_rate_scaling_and_gradient() -> None:
    torch.manual_seed(0)
    x = torch.ones(1_000_003, requires_grad=True)  # not a multiple of 4: the last word is cut
    y = cheap_dropout(x, 0.1)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.9) < 0.002
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.9))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(sum)/dx = mask / (1 - p), the values of y for x = 1
    torch.manual_seed(0)
    assert torch.equal(cheap_dropout(x, 0.1), y)  # the seeded torch generator makes it reproducible
    assert cheap_dropout(x, 0.0) is x
    layer = FastDropout(0.5).eval()
    assert layer(x) is x


@pytest.mark.parametrize("mask_kind", ["bool", "additive", "none"])
def test_training_attention_matches_sdpa_when_nothing_is_dropped(mask_kind: str) -> None:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 7, 8) for _ in range(3))
    keep = torch.ones(3, 1, 7, 7, dtype=torch.bool)
    keep[0, :, :, 5:] = False  # first sequence: two padding positions
    mask = {"bool": keep, "additive": torch.zeros(3, 1, 7, 7).masked_fill(~keep, -1e9), "none": None}[mask_kind]
    module = nn.Module().train()
    module.is_causal = False
    ours, _ = attention(module, q, k, v, mask, dropout=1e-9)  # takes the eager path; p rounds to keep-all
    reference, _ = sdpa_attention_forward(module, q, k, v, mask, dropout=0.0)
    assert torch.allclose(ours, reference, atol=1e-5)
    dropped, _ = attention(module, q, k, v, mask, dropout=0.5)
    assert not torch.allclose(dropped, reference, atol=1e-3)


def test_install_changes_training_only(tiny_model_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model_dir))
    texts = ["a short sentence", "a rather longer sentence with more words in it", "x"]
    before = model.encode(texts)
    dropouts = sum(type(m) is nn.Dropout for m in model.modules())
    assert install(model[0].auto_model) == dropouts > 0
    assert not any(type(m) is nn.Dropout for m in model.modules())
    assert model[0].auto_model.config._attn_implementation == ATTENTION
    assert abs(model.encode(texts) - before).max() < 1e-6  # eval mode: no dropout, SDPA as before

    model.train()
    features = model.preprocess(texts)
    first, second = (model(dict(features))["sentence_embedding"] for _ in range(2))
    assert not torch.allclose(first, second)  # dropout is active in training

    model.eval()
    model.save(str(tmp_path / "saved"))
    config = json.loads(next((tmp_path / "saved").rglob("config.json")).read_text())
    assert ATTENTION not in json.dumps(config)
    assert abs(SentenceTransformer(str(tmp_path / "saved")).encode(texts) - before).max() < 1e-6
