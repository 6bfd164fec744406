"""Planning a study, before anything runs: the grid and run keys (`grid`), the plan, its dry-run table and each
trial's spec (`plan`), what the plan will cost (`estimate`), every input checked at once (`preflight`) and the λ a
Ψ target needs (`calibrate`, for `study calibrate`). Reads the spec and its inputs; writes nothing."""
