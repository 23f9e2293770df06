"""The precision a cell trains in: measured on CPUs, asked of the device on GPUs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BF16_MIN_SPEEDUP = 1.3  # auto takes bf16 on a CPU only when its matmuls clearly beat fp32 there


def cpu_bf16_speedup(flags: set[str] | None = None) -> float | None:
    """bf16 / fp32 matmul throughput on this CPU at MiniLM's training shapes (~0.15 s to measure), or None
    when the CPU has neither AVX512-BF16 nor AMX (bf16 would be emulated).

    Measured, not assumed: the 2-core AVX512-BF16 machine these figures come from runs bf16 matmuls at
    0.5x fp32 (oneDNN 3.12, 165 vs 315 GFLOP/s; benchmarks/README.md), while AMX CPUs run them several
    times faster. A CPU that merely advertises the instructions does not get bf16 forced on it."""
    import statistics
    import time

    import torch

    if flags is None:
        cpuinfo = Path("/proc/cpuinfo")
        flags = set(cpuinfo.read_text().split()) if cpuinfo.exists() else set()
    if not flags & {"avx512_bf16", "amx_bf16"}:
        return None
    operands = {dtype: (torch.randn(1024, 384, dtype=dtype), torch.randn(384, 1536, dtype=dtype))
                for dtype in (torch.float32, torch.bfloat16)}
    for a, b in operands.values():
        a @ b  # first call sets up the kernel
    # fp32 and bf16 are timed in alternation and the median ratio is kept: a stage probing while another
    # process holds the cores (queued experiments, a test run with -n 2) slows both sides of each pair alike,
    # where timing all of fp32 and then all of bf16 let one burst of load flip the choice.
    ratios = []
    for _ in range(7):
        seconds = {}
        for dtype, (a, b) in operands.items():
            started = time.perf_counter()
            for _ in range(3):
                a @ b
            seconds[dtype] = time.perf_counter() - started
        ratios.append(seconds[torch.float32] / seconds[torch.bfloat16])
    return statistics.median(ratios)


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
        speedup = round(speedup, 2)  # the figure the card prints is the one compared
        chosen = "bf16" if speedup >= BF16_MIN_SPEEDUP else "fp32"
        return chosen, f"auto: bf16 matmuls ran {speedup:.2f}x fp32 on this CPU"
    if requested == "fp16" and not cuda:
        print("note: fp16 needs a CUDA GPU; training in fp32 instead")
        return "fp32", "fp16 requested; it needs a CUDA GPU"
    return requested, ""


def trainer_class() -> type:
    """SentenceTransformerTrainer with each step's whole loss computation in one autocast region.

    accelerate autocasts each call of the model's forward on its own, and leaving an autocast region clears
    its cache of weights cast to bf16/fp16. A loss calls the model once per column (anchor, positive, ...), so
    every weight was cast once per column and step: ~150 of the ~970 casts of a MiniLM CosineSimilarityLoss
    step. transformers' own hook for the region around compute_loss (`autocast_smart_context_manager`, a no-op
    since it leaves autocast to accelerate) now enters accelerate's autocast, so the columns share the casts,
    as in the usual torch.autocast training loop. In fp32 it enters nothing. Figures: benchmarks/README.md."""
    from sentence_transformers import SentenceTransformerTrainer

    class Trainer(SentenceTransformerTrainer):
        def autocast_smart_context_manager(self, cache_enabled: bool | None = True) -> Any:
            return self.accelerator.autocast()

    return Trainer
