"""Fused kernels against the eager reference: forward and every gradient."""

import itertools

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Case, check_against_reference

NEURONS = ("lif", "plif", "alif")
PARAM_MODE = {"lif": "scalar", "plif": "neuron", "alif": "neuron"}


@pytest.mark.parametrize("neuron", NEURONS)
@pytest.mark.parametrize(
    "surrogate_type,soft_reset,detach_reset",
    list(itertools.product((0, 1, 2), (False, True), (True, False))),
    ids=lambda v: str(v),
)
def test_switches_match_reference(device, neuron, surrogate_type, soft_reset, detach_reset):
    """Every surrogate x reset x detach combination, T=33 (a partial chunk), batch 2."""
    case = Case(
        neuron=neuron,
        surrogate_type=surrogate_type,
        soft_reset=soft_reset,
        detach_reset=detach_reset,
        param_mode=PARAM_MODE[neuron],
    )
    check_against_reference(case, device)


@pytest.mark.parametrize("neuron", NEURONS)
@pytest.mark.parametrize("n_steps", [1, 5, 31, 32, 33, 70])
def test_sequence_lengths(device, neuron, n_steps):
    case = Case(neuron=neuron, n_steps=n_steps, features=(300,), param_mode=PARAM_MODE[neuron])
    check_against_reference(case, device)


@pytest.mark.parametrize(
    "neuron,batch,features,param_mode",
    [
        ("lif", 1, (1,), "scalar"),  # N = 1
        ("lif", 3, (700,), "float"),  # plain float parameters, N not a multiple of the block
        ("plif", 4, (6, 3, 5), "channel"),  # per channel of (T, B, C, H, W)
        ("plif", 3, (43,), "neuron"),  # per neuron, broadcast over the batch
        ("alif", 1, (37,), "neuron"),  # batch 1: one neuron per entry, nothing to reduce
        ("alif", 3, (4, 2, 3), "channel"),
        ("alif", 2, (1,), "scalar"),
    ],
)
def test_shapes_and_parameter_layouts(device, neuron, batch, features, param_mode):
    case = Case(neuron=neuron, n_steps=12, batch=batch, features=features, param_mode=param_mode)
    check_against_reference(case, device)


@pytest.mark.parametrize("neuron", NEURONS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_low_precision(device, neuron, dtype):
    case = Case(neuron=neuron, n_steps=20, dtype=dtype, param_mode=PARAM_MODE[neuron])
    check_against_reference(case, device)


@pytest.mark.parametrize(
    "grad_outputs",
    [("spikes",), ("v_final",), ("h_seq",), ("a_final",), ("a_seq",), ("spikes", "a_final")],
    ids=lambda v: "+".join(v),
)
def test_each_output_gradient_alone(device, grad_outputs):
    """Losses on one output at a time (the kernel skips absent gradients)."""
    case = Case(neuron="alif", n_steps=9, grad_outputs=grad_outputs, with_init=True)
    check_against_reference(case, device)


def test_no_initial_state_and_fixed_alpha(device):
    case = Case(neuron="alif", with_init=False, trainable_alpha=False, param_mode="float")
    check_against_reference(case, device)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    neuron=st.sampled_from(NEURONS),
    n_steps=st.integers(1, 40),
    batch=st.integers(1, 3),
    n_features=st.integers(1, 90),
    surrogate_type=st.integers(0, 2),
    soft_reset=st.booleans(),
    detach_reset=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_cases(
    device, neuron, n_steps, batch, n_features, surrogate_type, soft_reset, detach_reset, seed
):
    case = Case(
        neuron=neuron,
        n_steps=n_steps,
        batch=batch,
        features=(n_features,),
        surrogate_type=surrogate_type,
        soft_reset=soft_reset,
        detach_reset=detach_reset,
        param_mode=PARAM_MODE[neuron],
        seed=seed,
    )
    check_against_reference(case, device)
