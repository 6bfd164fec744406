"""MLflow tracking (never inside a trial: a study's runs are written by its driver process): the conventions every run
of this project shares (`conventions`: the store, the experiment, params, source tags), a study's parent and child
runs (`runs.Tracker`), the writer thread that applies their calls off the backend's callbacks (`writer`), and the run
of a `study pretrain` (`pretrain`)."""
