"""Dropout with a cheaper random mask for CPU training: same p, same 1/(1-p) scaling, another random stream.

On CPU torch draws one Mersenne-Twister number per dropped-or-kept element (~3.4 ns each), so at MiniLM's
shapes a dropout call cost 2.6 ms, ~20% of a training forward pass, and SDPA with dropout_p > 0 ran
4 ms per layer against 1.3 ms without. Here one 64-bit draw from the same seeded torch generator gives
four 16-bit lanes, each kept when >= p * 2^16 (p exact to 1.5e-5): 0.84 ms per call. Attention
dropout needs the probabilities outside the fused kernel, so training attention runs the eager
softmax path with this mask; evaluation (no dropout) keeps SDPA. Figures: benchmarks/README.md.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

ATTENTION = "pipeline_fast_dropout"  # registered with transformers' AttentionInterface; never saved in config.json


class _CheapDropout(torch.autograd.Function):
    """Inverted dropout that keeps a 1-byte keep mask for backward (x * float_mask would keep 4 bytes)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, p: float) -> torch.Tensor:
        words = (x.numel() + 3) // 4
        lanes = torch.randint(-2**63, 2**63 - 1, (words,), dtype=torch.int64, device=x.device).view(torch.int16)
        keep = lanes[:x.numel()].view(x.shape) >= -2**15 + round(p * 2**16)
        ctx.save_for_backward(keep)
        ctx.scale = 1.0 / (1.0 - p)
        return torch.mul(x, keep).mul_(ctx.scale)  # a bool factor: ~2x faster than masked_fill on CPU

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (keep,) = ctx.saved_tensors
        return torch.mul(grad, keep).mul_(ctx.scale), None


def cheap_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout of x (training mode) with a mask drawn four elements per 64-bit random word."""
    return x if p == 0.0 else _CheapDropout.apply(x, p)


class FastDropout(nn.Dropout):
    """nn.Dropout with the cheaper mask; identical in eval mode and in the saved model (it has no state)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cheap_dropout(x, self.p) if self.training else x


def attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
              **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Bidirectional attention: eager softmax with the cheap dropout mask while training, SDPA otherwise."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    plain = (not module.training or dropout == 0.0 or getattr(module, "is_causal", False)
             or getattr(module, "num_key_value_groups", 1) != 1 or query.shape != key.shape
             or any(kwargs.get(k) is not None for k in ("position_bias", "cache", "softcap", "is_causal")))
    if plain:  # anything but plain bidirectional self-attention is left to the library's own kernel
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    scores = torch.matmul(query, key.transpose(2, 3)) * (query.size(-1) ** -0.5 if scaling is None else scaling)
    if attention_mask is not None:
        scores = (scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min) if attention_mask.dtype == torch.bool
                  else scores + attention_mask)
    weights = cheap_dropout(torch.softmax(scores, dim=-1), dropout)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), None


def install(transformer: nn.Module) -> int:
    """Swap the cheap mask into a Hugging Face model's dropout layers and attention; returns layers swapped."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    swapped = 0
    for module in transformer.modules():
        for name, child in module.named_children():
            if type(child) is nn.Dropout:
                setattr(module, name, FastDropout(child.p, child.inplace))
                swapped += 1
    if getattr(transformer.config, "_attn_implementation", None) == "sdpa":
        AttentionInterface.register(ATTENTION, attention)
        AttentionMaskInterface.register(ATTENTION, sdpa_mask)  # same masks as SDPA; unregistered names get none
        try:
            transformer.set_attn_implementation(ATTENTION)
        except (ValueError, NotImplementedError):
            pass  # an architecture without the attention interface keeps its own attention dropout
    return swapped
