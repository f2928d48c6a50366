"""Parameter gradients are reduced without atomics: identical calls, identical bits."""

import torch

import tether


def test_backward_is_bitwise_deterministic(device):
    torch.manual_seed(3)
    alif = tether.ALIF(50, surrogate=tether.Arctan(trainable=True)).to(device)
    x = torch.randn(11, 4, 50, device=device) + 0.5
    grads = []
    for _ in range(2):
        alif.reset()
        alif.zero_grad()
        alif(x).sum().backward()
        grads.append([p.grad.clone() for p in alif.parameters()])
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_no_host_sync_in_forward_and_backward(device):
    """CUDA only: forward and backward run with synchronizing calls set to error."""
    if device.type != "cuda":
        return
    alif = tether.ALIF(64).to(device)
    x = torch.randn(9, 2, 64, device=device, requires_grad=True)
    torch.cuda.set_sync_debug_mode("error")
    try:
        alif(x).sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
