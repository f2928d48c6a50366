"""Input checks of the neuron Functions: every bad input gets an error naming the argument."""

from __future__ import annotations

import math
import numbers

import torch

from tether.functional.plans import NeuronSpec
from tether.surrogates import check_surrogate_id

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def _check_tensor(name: str, value: object, device: torch.device) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.device != device:
        raise ValueError(f"{name} is on {value.device}, expected x_seq's device {device}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {value.dtype}")
    return value


def check_inputs(
    spec: NeuronSpec,
    x: object,
    states: dict[str, object],
    params: dict[str, object],
    alpha: object,
) -> int:
    """Validate a call on ``x: (T, *F)``; return P, the common length of the vector
    parameters (1 if none). ``states`` and ``params`` map the caller's argument names to
    values, so errors name what the user passed."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x_seq must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"x_seq must have shape (T, N) or (T, ...), got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"x_seq must have T >= 1 and N >= 1, got shape {tuple(x.shape)}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"x_seq must be float32, float16, bfloat16 or float64, got {x.dtype}")
    features = tuple(x.shape[1:])
    for name, state in states.items():
        if state is None:
            continue
        _check_tensor(name, state, x.device)
        if tuple(state.shape) != features:
            raise ValueError(
                f"{name} must have shape x_seq.shape[1:] = {features} (N,) for (T, N) input, "
                f"got {tuple(state.shape)}"
            )
    check_surrogate_id(spec.surrogate_type)
    for flag in ("soft_reset", "detach_reset", "store_traces", "store_state"):
        if not isinstance(getattr(spec, flag), bool):
            raise TypeError(f"{flag} must be a bool, got {getattr(spec, flag)!r}")
    group_size = spec.group_size
    if not isinstance(group_size, int) or isinstance(group_size, bool) or group_size < 1:
        raise ValueError(f"group_size must be an int >= 1, got {group_size!r}")
    n_params = 1
    for name, value in {**params, "alpha": alpha}.items():
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            continue  # Python and numpy numbers
        _check_tensor(name, value, x.device)
        if value.numel() == 0:
            raise ValueError(f"{name} is an empty tensor: give a float or at least one entry")
        if value.numel() == 1:
            continue
        if name == "alpha":
            raise ValueError(f"alpha must be a float or a one-element tensor, got {value.shape}")
        if value.ndim != 1:
            raise ValueError(f"{name} must be a scalar or a 1-D vector, got shape {value.shape}")
        if n_params not in (1, value.numel()):
            raise ValueError(
                f"{name} has {value.numel()} entries but another parameter has {n_params}: "
                "vector parameters must have one common length"
            )
        n_params = value.numel()
    n_neurons = math.prod(features)
    if n_neurons % (n_params * group_size):
        raise ValueError(
            f"x_seq has N={n_neurons} neurons, not a multiple of the parameter length "
            f"({n_params}) times group_size ({group_size})"
        )
    return n_params
