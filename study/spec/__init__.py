"""The study spec: YAML → validated pydantic models, the only place defaults live.

`metric_names` (the metrics a spec may name, their smallest effects and units), `parts` (window, data, model,
training, losses, encoders), `slurm`, `study` (factors … the whole `StudySpec`),
`load` (YAML → spec, one-line errors), `yaml_io` (safe YAML reading). Import from here.
`reference` (not imported here) writes docs/spec-reference.md and docs/study.schema.json from the models.
"""

from study.spec.load import MAX_QUOTE, load_spec, parse_spec
from study.spec.metric_names import (CT_METRICS, LEARNED_METRICS, METRIC_UNITS, METRICS, MIN_EFFECT,
                                     NO_REFERENCE_METRICS, MetricName)
from study.spec.parts import (BUILTIN_LOSSES, BUILTIN_PRETRAININGS, MAYO_SPLIT, WINDOWS, CriticSpec, DataSpec,
                              EncoderSpec, LossSpec, ModelSpec, PixelTerm, TrainingSpec, Window)
from study.spec.slurm import SlurmSpec
from study.spec.study import AnalysisSpec, Factors, Resources, SearchSpec, StudySpec, Tracking

__all__ = ["MAX_QUOTE", "load_spec", "parse_spec", "BUILTIN_LOSSES", "BUILTIN_PRETRAININGS", "CT_METRICS",
           "MAYO_SPLIT", "METRICS", "WINDOWS", "CriticSpec", "DataSpec", "EncoderSpec", "LossSpec", "MetricName",
           "ModelSpec", "PixelTerm", "TrainingSpec", "Window", "SlurmSpec", "METRIC_UNITS", "MIN_EFFECT",
           "LEARNED_METRICS", "NO_REFERENCE_METRICS",
           "AnalysisSpec", "Factors", "Resources", "SearchSpec", "StudySpec", "Tracking"]
