"""Preparing a study once: the data cache and the encoder weights (made or checked), under a lock so that SLURM
array tasks starting together prepare it once. Also the results folder's start (spec, grid, identity)."""

from __future__ import annotations

from typing import Optional

import yaml
from rich.console import Console

from study.planning.plan import Plan
from study.progress import complete, progress_bar
from study.store.results import ensure_study_id, write_json


def prepare(p: Plan, console: Console):
    """Data and encoder weights, each made once per study (cached in the results folder)."""
    from study.data.cache import build_cache
    from study.encoders.cache import materialise

    from study.store.locks import file_lock

    # one preparer at a time per results folder (SLURM array tasks start together); the others then find the cache
    with file_lock(p.out / ".prepare.lock"), progress_bar(console) as prog:
        task = prog.add_task(f"data: {p.spec.data.source} pairs", total=None)
        data = build_cache(p.spec.data, p.out / "data", progress=lambda d, n: prog.update(task, completed=d, total=n),
                           note=lambda text: prog.console.print(text, markup=False, highlight=False))
        complete(prog, task)
        encoders = {}
        for name, key in p.encoder_keys.items():
            enc = p.spec.encoder(name)
            task = prog.add_task(f"encoder {name} ({enc.source})", total=None)
            images = None
            if enc.source in ("rotnet", "supervised") and enc.dataset == "study-ct":
                images = _study_ct_images(data, p.spec.data)
            encoders[name] = materialise(name, enc, key, p.out / "encoders", images,
                                         progress=lambda d, n, t=task: prog.update(t, completed=d, total=n))
            complete(prog, task)
    return data, encoders


def _study_ct_images(data, spec_data) -> list:
    """The study's full-dose training slices (≤ 256, evenly spaced) and the real test slices, in [0, 1]."""
    import numpy as np

    from study.data.ct import hu_to_unit

    fd = data.load("train")[1]
    keep = np.unique(np.linspace(0, len(fd) - 1, min(len(fd), 256)).astype(int))
    images = [np.clip(hu_to_unit(np.asarray(fd[i]), spec_data.hu_min, spec_data.hu_max), 0, 1) for i in keep]
    if (data.path / "real_fd.npy").is_file():
        images += [np.clip(hu_to_unit(np.asarray(x), spec_data.hu_min, spec_data.hu_max), 0, 1)
                   for x in data.load("real")[1]]
    return images


def start_folder(p: Plan, spec_text: Optional[str] = None) -> None:
    """The results folder of a started study: its spec and grid (what `study status` and `--resume` read)."""
    p.out.mkdir(parents=True, exist_ok=True)
    ensure_study_id(p.out, p.spec.name)
    (p.out / "study.yaml").write_text(spec_text or yaml.safe_dump(p.spec.model_dump(mode="json"), sort_keys=False))
    write_json(p.out / "grid.json", p.rows())
