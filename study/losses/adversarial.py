"""Adversarial loss of WGAN-VGG (Yang et al., IEEE TMI 2018): a Wasserstein critic with gradient penalty (WGAN-GP,
Gulrajani et al. 2017) trained `n_critic` steps per denoiser step with its own optimiser. Pure torch.

Critic: six 3×3 convolutions (64, 64, 128, 128, 256, 256 filters; strides 1, 2, 1, 2, 1, 2) with leaky ReLU, then
two fully connected layers (1024, 1) as in WGAN-VGG; a global average pool before them makes it patch-size free.
"""

from __future__ import annotations

import torch
from torch import nn


class Critic(nn.Module):
    def __init__(self, width: int = 64):
        super().__init__()
        layers, c_in = [], 1
        for c, stride in ((width, 1), (width, 2), (2 * width, 1), (2 * width, 2), (4 * width, 1), (4 * width, 2)):
            layers += [nn.Conv2d(c_in, c, 3, stride, 1), nn.LeakyReLU(0.2)]
            c_in = c
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(c_in, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))[:, 0]


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖∇ D(x̂)‖₂ − 1)² averaged over random interpolates x̂ = ε·real + (1 − ε)·fake, ε ~ U(0, 1) per sample;
    returns the penalty and the interpolates."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean(), x_hat


class WGANGP:
    """The critic side of the game: `critic_step` trains it on (real, fake) pairs; `generator_loss` is the
    denoiser's adversarial term −E[D(G(x))]. `steps` counts critic updates."""

    def __init__(self, device, lr: float = 1e-4, n_critic: int = 4, gp_weight: float = 10.0, width: int = 64):
        self.critic = Critic(width).to(device)
        self.opt = torch.optim.Adam(self.critic.parameters(), lr=lr, betas=(0.5, 0.9))
        self.n_critic, self.gp_weight, self.steps = n_critic, gp_weight, 0

    def critic_step(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        fake = fake.detach()
        gp, _ = gradient_penalty(self.critic, real, fake)
        loss = self.critic(fake).mean() - self.critic(real).mean() + self.gp_weight * gp
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.steps += 1
        return loss.detach()

    def state(self) -> dict:
        return {"critic": self.critic.state_dict(), "opt": self.opt.state_dict(), "steps": self.steps}

    def load(self, state: dict) -> None:
        self.critic.load_state_dict(state["critic"])
        self.opt.load_state_dict(state["opt"])
        self.steps = state["steps"]

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        for p in self.critic.parameters():
            p.requires_grad_(False)
        try:
            return -self.critic(fake).mean()
        finally:
            for p in self.critic.parameters():
                p.requires_grad_(True)
