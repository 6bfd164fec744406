"""The spec's `adaptive:` section: seeds in two stages (analysis.adaptive decides stage 2). Torch-free."""

from __future__ import annotations

from typing import Optional

from pydantic import Field, model_validator

from study.spec.metric_names import MetricName
from study.spec.parts import StrictModel


class Adaptive(StrictModel):
    """Stage 1 trains every configuration `min_seeds` times; from its networks' variance (never its effects) the
    driver works out the seeds the smallest effect needs at `power`, and stage 2 adds them, up to `max_seeds`, to
    every configuration a stage-1 screen (spending `screen_alpha` of analysis.alpha) has not already decided. The
    i-th network of a configuration has the i-th value of factors.seed (continued by consecutive integers)."""

    min_seeds: int = Field(3, ge=2, description="seeds every configuration gets in stage 1 (≥ analysis.min_seeds)")
    max_seeds: int = Field(8, ge=3, description="most seeds a configuration gets")
    power: float = Field(0.8, gt=0, lt=1, description="power wanted to separate two configurations that differ by "
                         "the metric's smallest effect (analysis.min_effect)")
    metric: Optional[MetricName] = Field(None, description="the metric planned for (default: the first of metrics)")
    screen_alpha: Optional[float] = Field(None, gt=0, description="α the stage-1 screen spends (default: "
                                          "analysis.alpha / 5); the report's claims use analysis.alpha minus it")

    @model_validator(mode="after")
    def _range(self):
        if self.max_seeds <= self.min_seeds:
            raise ValueError(f"max_seeds ({self.max_seeds}) must be above min_seeds ({self.min_seeds})")
        return self


def seed_values(seeds: list[int], n: int) -> list[int]:
    """The first n seeds: factors.seed, continued after its last value by consecutive integers not in it."""
    out = list(dict.fromkeys(seeds))[:n]
    nxt = max(seeds) + 1
    while len(out) < n:
        if nxt not in out:
            out.append(nxt)
        nxt += 1
    return out
