"""Packing several trials on one GPU (`resources: {gpu: 0.25}` = four per GPU): will they fit in its memory?

Ray's fractional GPUs schedule by the fraction alone; nothing stops four trials that each need 30 GB from sharing a
40 GB card and failing with out-of-memory errors hours later. Each trial measures its peak memory on its first
epoch and checks the packing it runs under (pure arithmetic here; the trainer calls it on CUDA).
"""

from __future__ import annotations

import math


def trials_per_gpu(gpu_fraction: float) -> int:
    return max(1, math.floor(1 / gpu_fraction + 1e-9)) if gpu_fraction > 0 else 1


def packing_warning(peak_bytes: float, total_bytes: float, gpu_fraction: float, headroom: float = 0.9) -> str | None:
    """A one-line warning when `1/gpu_fraction` trials of this peak do not fit in `headroom` of the GPU, else None."""
    k = trials_per_gpu(gpu_fraction)
    need = k * peak_bytes
    if need <= headroom * total_bytes:
        return None
    fit = max(1, int(headroom * total_bytes // max(peak_bytes, 1)))
    return (f"packing: {k} trials per GPU × {peak_bytes / 2**30:.1f} GiB peak = {need / 2**30:.1f} GiB > "
            f"{headroom:.0%} of {total_bytes / 2**30:.1f} GiB; use resources.gpu ≥ {1 / fit:.3g} ({fit} per GPU)")
