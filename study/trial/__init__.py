"""One trial, a pure function of its spec (`spec.TrialSpec`): `train.run_trial` composes the training loop (`loop`:
set-up, step, epoch, hold-Ψ window), its data (`batches`), measurement (`evaluate`: epoch report, validation, test,
summary) and checkpoints (`checkpoint`); `execute` runs it once with retries and writes its folder; `packing` checks
GPU packing."""
