"""What `study run` does: the grid and run keys (`grid`), the plan, preparation and the run (`run`), the Optuna
refinement (`refine`), MLflow (`tracking`), `study status` (`status`), `study submit` (`submit`), `study calibrate`
(`calibrate`)."""
