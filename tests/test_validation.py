"""Bad input to the autograd Functions: a clear error naming the argument."""

import pytest
import torch

from tether.functional import ALIFSubFunction, LIFSubFunction, PLIFSubFunction


def lif(*args):
    return LIFSubFunction.apply(*args)


X = torch.randn(4, 6)


@pytest.mark.parametrize(
    "args,error,match",
    [
        ((torch.randn(4), None, 0.9, 1.0, 2.0, 0), ValueError, r"x_seq must have shape"),
        ((torch.randn(0, 6), None, 0.9, 1.0, 2.0, 0), ValueError, "T >= 1"),
        ((X.int(), None, 0.9, 1.0, 2.0, 0), TypeError, "x_seq must be float32"),
        (([[1.0]], None, 0.9, 1.0, 2.0, 0), TypeError, "x_seq must be a torch.Tensor"),
        (
            (X, torch.zeros(5), 0.9, 1.0, 2.0, 0),
            ValueError,
            r"v_init must have shape x_seq.shape\[1:\] = \(6,\)",
        ),
        ((X, None, 0.9, 1.0, 2.0, 3), ValueError, "surrogate_type must be one of"),
        ((X, None, 0.9, 1.0, 2.0, "atan"), TypeError, "surrogate_type must be an int"),
        ((X, None, torch.rand(4), 1.0, 2.0, 0), ValueError, "N=6 neurons, not a multiple"),
        ((X, None, torch.rand(3), torch.rand(2), 2.0, 0), ValueError, "one common length"),
        ((X, None, torch.rand(3, 2), 1.0, 2.0, 0), ValueError, "decay must be a scalar or"),
        ((X, None, 0.9, 1.0, torch.rand(2), 0), ValueError, "alpha must be a float"),
        ((X, None, 0.9, torch.tensor([1]), 2.0, 0), TypeError, "threshold must be a floating"),
        ((X, None, torch.rand(0), 1.0, 2.0, 0), ValueError, "decay is an empty tensor"),
        ((X, None, 0.9, 1.0, 2.0, 0, "no"), TypeError, "soft_reset must be a bool, got 'no'"),
        ((X, None, 0.9, 1.0, 2.0, 0, False, 1), TypeError, "detach_reset must be a bool"),
        ((X, None, 0.9, 1.0, 2.0, 0, False, True, True, True), ValueError, "group_size must"),
        ((X, None, 0.9, 1.0, 2.0, 0, False, True, True, 1, "no"), TypeError, "store_state must"),
    ],
)
def test_lif_rejects(path, args, error, match):
    """On the reference path and under the interpreter alike (the checks run before either;
    on a GPU these CPU tensors take the reference path)."""
    with pytest.raises(error, match=match):
        lif(*args)


def test_plif_group_size_must_divide():
    with pytest.raises(ValueError, match="group_size"):
        PLIFSubFunction.apply(X, None, torch.rand(2), torch.rand(2), 2.0, 0, False, True, True, 4)


def test_alif_checks_a_init():
    with pytest.raises(ValueError, match="a_init must have shape"):
        ALIFSubFunction.apply(X, None, torch.zeros(3), 0.9, 0.9, 1.0, 0.5, 2.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a second device")
def test_parameter_on_another_device():
    with pytest.raises(ValueError, match="decay is on cpu"):
        lif(X.cuda(), None, torch.rand(6), 1.0, 2.0, 0)


def test_parameter_on_meta_device_is_rejected():
    """The device check without a GPU: a parameter on the meta device."""
    with pytest.raises(ValueError, match="threshold is on meta"):
        lif(X, None, 0.9, torch.ones(6, device="meta"), 2.0, 0)


@pytest.mark.parametrize("alpha", [-2.0, 0.0, float("nan")])
def test_function_rejects_a_non_positive_alpha_on_every_call(alpha):
    """A float alpha is checked on every call, not only the first of its call signature
    (a negative one would flip the surrogate's sign)."""
    lif(X, None, 0.9, 1.0, 2.0, 0)  # the signature is now cached as checked
    with pytest.raises(ValueError, match="alpha must be > 0"):
        lif(X, None, 0.9, 1.0, alpha, 0)
