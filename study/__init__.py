"""study: ablation studies of perceptual-loss design for low-dose CT denoising."""

__version__ = "0.1.0"
