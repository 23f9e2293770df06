"""Skip the padding in a BERT layer's token-wise work while training.

A BERT-style layer is self-attention, which needs the padded [batch, length] layout, and then blocks that
treat every token on its own: the attention output projection + LayerNorm and the feed-forward block.
Those blocks hold 9 of the layer's 12 hidden^2 multiply-adds per token. Length buckets still leave ~27% of a
docstrings batch as padding (pipeline/training/sampling.py). Here forward hooks gather the batch's real tokens into one
[tokens, hidden] matrix before the attention output block and scatter the layer's output back into the
padded layout after the feed-forward block, so that work is done for real tokens only.

Padded positions leave each layer as zeros instead of LayerNorm(bias + residual). Nothing reads them: they
are masked keys in the next attention, and pooling weighs them by the attention mask (CLS is position 0).
The hooks hold no weights and act in training mode only, so evaluation and the saved model are the library's
own. Figures: benchmarks/README.md.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def token_wise_layers(transformer: nn.Module) -> list[nn.Module]:
    """BERT-family encoder layers (BERT, RoBERTa, XLM-R, ELECTRA...): attention.output, intermediate and
    output blocks, feed-forward not chunked, no cross-attention."""
    return [m for m in transformer.modules()
            if type(m).__name__.endswith("Layer") and isinstance(getattr(m, "intermediate", None), nn.Module)
            and type(getattr(getattr(m, "attention", None), "output", None)).__name__.endswith("SelfOutput")
            and isinstance(getattr(m, "output", None), nn.Module)
            and not getattr(m, "chunk_size_feed_forward", 0) and not getattr(m, "add_cross_attention", False)]


def install(st_module: nn.Module) -> int:
    """Hook unpadding into the layers of a sentence-transformers Transformer module's `auto_model`; the
    module's input features carry the 2-D attention mask. Returns the layers hooked (0: not a BERT layout)."""
    layers = token_wise_layers(st_module.auto_model)
    if not layers:
        return 0
    batch: dict[str, Any] = {}  # the running forward's real-token index and padded shape

    def read_mask(module: nn.Module, args: tuple[Any, ...]) -> None:
        batch.clear()
        mask = args[0].get("attention_mask") if args and isinstance(args[0], dict) else None
        if module.training and mask is not None and mask.dim() == 2 and not bool(mask.all()):
            batch["index"], batch["shape"] = mask.reshape(-1).nonzero().squeeze(1), tuple(mask.shape)

    def gather(module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | None:
        if "index" not in batch or tuple(args[0].shape[:2]) != batch["shape"]:  # index is set in training only
            return None
        return tuple(a.reshape(-1, a.shape[-1]).index_select(0, batch["index"]) for a in args)

    def scatter(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor | None:
        if output.dim() != 2 or "index" not in batch:  # the gather did not run for this forward
            return None
        rows, length = batch["shape"]
        # in place: the out-of-place index_copy would clone the zeros first
        full = output.new_zeros(rows * length, output.shape[-1]).index_copy_(0, batch["index"], output)
        return full.view(rows, length, -1)

    st_module.register_forward_pre_hook(read_mask)
    for layer in layers:
        layer.attention.output.register_forward_pre_hook(gather)
        layer.output.register_forward_hook(scatter)
    return len(layers)
