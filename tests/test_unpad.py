"""Unpadded feed-forward blocks: the same embeddings and gradients as the padded model, work done on real
tokens only, and no effect outside training."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pipeline.training.unpad import install, token_wise_layers

TEXTS = ["a short sentence", "a rather longer sentence with many more words in it than the others", "x"]


def load(model_dir: Path, *, hooked: bool) -> tuple[object, list[nn.Module]]:
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model = SentenceTransformer(str(model_dir))
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0  # training mode without randomness, so padded and unpadded runs can be compared
    layers = token_wise_layers(model[0].auto_model)
    if hooked:
        assert install(model[0]) == len(layers) > 0
    return model, layers


def test_same_embeddings_and_gradients_on_real_tokens_only(tiny_model_dir: Path) -> None:
    (padded, _), (unpadded, layers) = (load(tiny_model_dir, hooked=h) for h in (False, True))
    seen: list[torch.Size] = []
    layers[0].intermediate.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape))
    features = padded.preprocess(TEXTS)
    real_tokens = int(features["attention_mask"].sum())
    assert real_tokens < features["attention_mask"].numel()  # the batch has padding to skip

    grads = []
    for model in (padded, unpadded):
        model.train()
        embedding = model(dict(features))["sentence_embedding"]
        (embedding * torch.linspace(-1, 1, embedding.shape[-1])).sum().backward()
        grads.append({name: p.grad for name, p in model.named_parameters() if p.grad is not None})
        model.zero_grad()
        model.eval()
        assert embedding.shape == (len(TEXTS), model.get_embedding_dimension())
        grads[-1]["embedding"] = embedding.detach()
    assert seen == [torch.Size([real_tokens, padded[0].auto_model.config.hidden_size])]  # real tokens, no batch axis
    assert grads[0].keys() == grads[1].keys()
    for name, reference in grads[0].items():
        assert torch.allclose(grads[1][name], reference, atol=1e-5, rtol=1e-4), name


def test_no_effect_in_eval_or_without_padding(tiny_model_dir: Path) -> None:
    (padded, _), (unpadded, layers) = (load(tiny_model_dir, hooked=h) for h in (False, True))
    seen: list[int] = []
    layers[0].intermediate.register_forward_pre_hook(lambda module, args: seen.append(args[0].dim()))
    assert (padded.encode(TEXTS) == unpadded.encode(TEXTS)).all()  # eval: the library's own code path
    unpadded.train()
    unpadded(dict(unpadded.preprocess(TEXTS[:1])))  # one text: nothing to skip
    assert seen == [3, 3]


def test_other_layouts_are_left_alone() -> None:
    assert token_wise_layers(nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))) == []
    st_module = nn.Module()
    st_module.auto_model = nn.Sequential(nn.Linear(4, 4))
    assert install(st_module) == 0
