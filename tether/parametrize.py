"""Constrained learnable parameters: stored raw (an unconstrained ``nn.Parameter`` the optimizer
updates), used through a map onto the allowed range. Learnable decays (PLIF's ``decay``, ALIF's
``decay_v``, ``decay_a``) are ``sigmoid(<name>_logit)``, in (0, 1) whatever the optimizer does,
as SpikingJelly's PLIF; a trainable surrogate ``alpha`` is ``exp(log_alpha)``, positive.

State dicts saved before the reparametrisation hold the effective values under the old names
(``decay``, ``alpha``): ``load_legacy`` converts them on ``load_state_dict``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch


class Constraint(NamedTuple):
    """How an effective value maps to its raw parameter, and where it must lie."""

    raw_name: Callable[[str], str]  # the raw parameter's name: decay -> decay_logit
    inverse: Callable[[torch.Tensor], torch.Tensor]  # effective -> raw
    valid: Callable[[torch.Tensor], torch.Tensor]  # elementwise: in range
    range: str


# Names by concatenation: torch.compile (Dynamo in torch 2.11) cannot trace ``str.format``.
UNIT = Constraint(lambda n: n + "_logit", torch.logit, lambda t: (t > 0) & (t < 1), "in (0, 1)")
POSITIVE = Constraint(lambda n: "log_" + n, torch.log, lambda t: t > 0, "> 0")


def raw_value(name: str, value: float, constraint: Constraint) -> float:
    """The raw parameter's initial value for an effective ``value``, or raise naming it."""
    if not (math.isfinite(value) and bool(constraint.valid(torch.tensor(value)))):
        raise ValueError(f"{name} must be {constraint.range}, got {value}")
    return float(constraint.inverse(torch.tensor(value, dtype=torch.float64)))


def load_legacy(
    state_dict: dict, prefix: str, names: tuple[str, ...], constraint: Constraint
) -> None:
    """In ``state_dict`` (a module's ``_load_from_state_dict`` argument), replace each effective
    value saved under an old name by its raw parameter."""
    for name in names:
        old, new = prefix + name, prefix + constraint.raw_name(name)
        if old not in state_dict or new in state_dict:
            continue
        value = state_dict.pop(old)
        if not bool(constraint.valid(value).all()):
            raise ValueError(
                f"{old} in the state dict must be {constraint.range} to load into the "
                f"constrained parameter {new}"
            )
        state_dict[new] = constraint.inverse(value)
