"""Benchmark 3 (GPU): patches/s for 1, 2, 4, 8 trials packed on one GPU, per trial and aggregate, AMP (bf16) on
and off, against the FLOP floor of paper 1's model (U-Net 32→512, 5 levels, 96² patches, batch 8, λ·VGG-19
block5_conv4 feature MSE; forward + backward) at the GPU's measured bf16 matmul rate.

Without a GPU it only counts the FLOPs (torch.utils.flop_counter, on the CPU) and says so in RESULTS.md.
Run: python benchmarks/gpu_packing.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

from results_md import command, table, write_section

PATCH, BATCH = 96, 8


def _model_and_encoder(device):
    from study.spec import ModelSpec
    from study.encoders.vgg import FeatureExtractor, vgg19_features
    from study.encoders.layers import layer_end
    from study.models import build_model

    model = build_model(ModelSpec(name="unet", channels=32, levels=5)).to(device)
    enc = FeatureExtractor(vgg19_features()[: layer_end("block5_conv4")], "x255").to(device)
    return model, enc


def _step(model, enc, opt, x, y, amp: bool):
    from study.losses.terms import mse_loss, perceptual_loss

    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        out = model(x)
        loss = mse_loss(out.float(), y) + 0.1 * perceptual_loss(enc, out, y).float()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def flops_per_patch() -> float:
    from torch.utils.flop_counter import FlopCounterMode

    model, enc = _model_and_encoder("cpu")
    opt = torch.optim.Adam(model.parameters())
    x, y = torch.rand(1, 1, PATCH, PATCH), torch.rand(1, 1, PATCH, PATCH)
    with FlopCounterMode(display=False) as fc:
        _step(model, enc, opt, x, y, amp=False)
    return float(fc.get_total_flops())


def _worker(seconds: float, amp: bool, barrier, queue) -> None:
    dev = torch.device("cuda")
    model, enc = _model_and_encoder(dev)
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.rand(BATCH, 1, PATCH, PATCH, device=dev).contiguous(memory_format=torch.channels_last)
    y = torch.rand_like(x)
    for _ in range(5):
        _step(model, enc, opt, x, y, amp)
    torch.cuda.synchronize()
    barrier.wait()
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        _step(model, enc, opt, x, y, amp)
        n += 1
    torch.cuda.synchronize()
    queue.put((n * BATCH / (time.perf_counter() - t), torch.cuda.max_memory_allocated() / 2**30))


def packed(k: int, seconds: float, amp: bool) -> tuple[list[float], float]:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(k), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(seconds, amp, barrier, queue)) for _ in range(k)]
    for p in procs:
        p.start()
    got = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return [g[0] for g in got], max(g[1] for g in got)


def bf16_matmul_rate(n: int = 8192, reps: int = 20) -> float:
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn_like(a)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    flops = flops_per_patch()
    if not torch.cuda.is_available():
        body = (f"No GPU was lent to this task, so this table is not measured. FLOPs of one training step per patch "
                f"(U-Net 32→512 × 5 levels + VGG-19 to block5_conv4, 96², forward + backward, counted on the CPU "
                f"with torch.utils.flop_counter): **{flops / 1e9:.2f} GFLOP**. On a GPU, this script measures the "
                f"bf16 matmul rate, the floor patches/s = rate / FLOPs, and patches/s for 1, 2, 4, 8 packed trials "
                f"with AMP on and off.")
        write_section("3. Trials packed on one GPU", command(), body)
        return
    rate = bf16_matmul_rate()
    rows = []
    for amp in (False, True):
        single = None
        for k in (1, 2, 4, 8):
            per, mem = packed(k, args.seconds, amp)
            agg = sum(per)
            single = single or agg
            rows.append({"AMP bf16": "on" if amp else "off", "trials": k, "per trial (patches/s)": statistics.median(per),
                         "aggregate (patches/s)": agg, "× one trial": agg / single, "peak GiB per trial": mem,
                         "% of FLOP floor": 100 * agg * flops / rate})
    body = (f"{torch.cuda.get_device_name(0)}: bf16 matmul {rate / 1e12:.0f} TFLOP/s; {flops / 1e9:.2f} GFLOP per "
            f"patch → floor {rate / flops:.0f} patches/s.\n\n{table(rows)}")
    write_section("3. Trials packed on one GPU", command(), body)


if __name__ == "__main__":
    main()
