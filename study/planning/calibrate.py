"""`study calibrate`: the λ each (feature level, pretraining) needs for each Ψ target, measured on the initial
network (or after `training.calibration_steps` pixel-only steps), exactly as a Ψ-target trial calibrates itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from study.spec import StudySpec
from study.losses.influence import calibrate
from study.losses.psi import perceptual_influence
from study.losses.terms import mse_loss
from study.trial.batches import init_output, unit_batch

DEFAULT_TARGETS = (0.5, 0.9, 0.95, 0.99)


def calibration_table(spec: StudySpec, data, encoders: dict, seed: int = 0) -> pd.DataFrame:
    from study.encoders.vgg import feature_extractor, resolve_input_mode
    from study.models import build_model

    tr, hu = spec.training, (spec.data.hu_min, spec.data.hu_max)
    torch.manual_seed(seed)
    train_ld, train_fd = data.load("train")
    targets = spec.factors.psi_target or list(DEFAULT_TARGETS)
    rng = np.random.default_rng(seed)

    def batch(generator):
        return unit_batch(train_ld, train_fd, tr.batch_size, tr.patch_size, hu, generator)

    model = build_model(spec.model)
    init_output(model, train_fd, hu)
    opt = torch.optim.Adam(model.parameters(), lr=tr.lr)
    for _ in range(tr.calibration_steps):
        x, y = batch(rng)
        loss = mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.train()
    cal_rng = np.random.default_rng(seed + 104729)  # one generator: distinct batches, as a Ψ-target trial draws them
    batches = [batch(cal_rng) for _ in range(tr.calibration_batches)]
    rows = []
    for name, (path, _wid) in encoders.items():
        mode = resolve_input_mode(spec.encoder(name).input, spec.encoder(name).source)
        for level in spec.factors.feature_level:
            enc = feature_extractor(level, str(path), input_mode=mode)  # the same frozen encoder a trial builds
            for psi in targets:
                c = calibrate(model, enc, batches, psi)
                rows.append({"feature_level": level, "pretraining": name, "psi_target": psi, "lam": c["lam"],
                             "pixel_loss": c["pixel_loss"], "perceptual_loss": c["perceptual_loss"],
                             "psi_at_lam_0.1": perceptual_influence(c["pixel_loss"], c["perceptual_loss"], 0.1)})
    return pd.DataFrame(rows)
