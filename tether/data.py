"""Input encodings for spiking networks."""

from __future__ import annotations

import torch


def rate_encoding(
    x: torch.Tensor, n_steps: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Bernoulli rate code: ``x: (B, ...)`` intensities in [0, 1] -> spikes ``(n_steps, B, ...)``.

    Each step fires independently with probability ``x``; the result has x's dtype.
    Pass a seeded ``generator`` (on x's device) for a reproducible code.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {type(x).__name__}")
    if not isinstance(n_steps, int) or isinstance(n_steps, bool) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive int, got {n_steps!r}")
    if x.device.type == "cpu" and bool(((x < 0) | (x > 1)).any()):  # no GPU sync for a check
        raise ValueError("x must hold probabilities in [0, 1]")
    probs = x.unsqueeze(0).expand(n_steps, *x.shape)
    return torch.bernoulli(probs, generator=generator).to(x.dtype)
