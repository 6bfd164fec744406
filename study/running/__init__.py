"""Running a study: what `study run` does (`run`: prepare once, run what is not finished, tables, MLflow, report),
preparing data and encoders and starting the results folder (`prepare`), the live view fed by the backend's events
(`live`), the Optuna refinement after the grid (`refine`), `study submit` on SLURM (`submit`) and `study status`,
where a run stands from its results folder (`status`)."""
