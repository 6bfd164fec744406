"""Per-image quality metrics: the registry with each metric's direction (`registry`: PSNR, SSIM and NRMSE in a display
window, RMSE in HU, and dispatch to the rest), more full-reference metrics and CT-specific ones (`quality`).
Pure math: no Ray, MLflow or SLURM; `registry` is torch-free (the analysis reads it)."""
