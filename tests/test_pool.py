"""``tether.max_pool2d`` / ``tether.MaxPool2d``: PyTorch's max-pool, bitwise (values,
gradients, strides), saving packed window offsets instead of int64 indices."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import tether
from tether.functional import pool

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def _input(shape, dtype, layout: str, device, seed: int) -> torch.Tensor:
    """Half spikes (ties everywhere: a window of zeros, of several ones), half normals with
    NaNs and repeated maxima."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=g) < 0.3).float()
    normal = torch.randn(shape, generator=g).round(decimals=1)  # repeated values: ties
    x[..., 1::2, :, :] = normal[..., 1::2, :, :]
    x.view(-1)[7::97] = float("nan")
    x = x.to(dtype).to(device)
    if layout == "channels_last":
        x = x.reshape(-1, *shape[-3:]).contiguous(memory_format=torch.channels_last)
        x = x.view(shape)
    elif layout == "strided":  # neither order: pooled from a contiguous copy
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    return x


def torch_pool(x: torch.Tensor, kernel) -> torch.Tensor:
    """torch's max-pool of ``(*, C, H, W)`` (it takes 3 or 4 dims)."""
    if x.dim() <= 4:
        return F.max_pool2d(x, kernel)
    return F.max_pool2d(x.flatten(0, -4), kernel).unflatten(0, x.shape[:-3])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize(
    "shape, kernel",
    [((2, 4, 8, 8), 2), ((3, 5, 9, 11), 3), ((2, 3, 6, 7, 10), (2, 3)), ((4, 7, 5), 2),
     ((2, 3, 11, 10), 5), ((3, 5, 34, 30), 2)],  # 1 offset a byte; 4 programs of outputs
)  # fmt: skip
def test_matches_torch_bitwise(device, dtype, layout, shape, kernel):
    """Values, gradients and their strides equal torch's, NaNs and ties included (the first
    maximum in window order; rows and columns past the last window get no gradient)."""
    x = _input(shape, dtype, layout, device, seed=len(shape) + shape[-1])
    mine, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = tether.max_pool2d(mine, kernel)
    expected = torch_pool(theirs, kernel)
    assert torch.equal(out.nan_to_num(-7), expected.nan_to_num(-7))
    if len(shape) > 3:  # torch lays an unbatched (C, H, W) output out contiguous
        assert out.stride() == expected.stride()
    g = torch.randn(expected.shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    out.backward(g.to(device))
    expected.backward(g.to(device))
    assert torch.equal(mine.grad, theirs.grad)
    if layout != "strided" and len(shape) > 3:  # torch: a strided input's gradient is too
        assert mine.grad.stride() == theirs.grad.stride()


@pytest.mark.parametrize("kernel, bits", [(2, 2), ((2, 1), 2), (3, 4), ((4, 4), 4), (5, 8)])
def test_saves_a_few_bits_an_output(device, kernel, bits):
    """The backward keeps only the window offsets, packed: 2 bits an output for windows of
    up to 4 elements, 4 up to 16, else 8; no input and no int64 indices."""
    x = _input((2, 3, 10, 11), torch.float32, "channels_last", device, seed=3).requires_grad_()
    saved = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = tether.max_pool2d(x, kernel)
    assert [(t.dtype, t.shape) for t in saved] == [(torch.uint8, (-(-out.numel() * bits // 8),))]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.max_pool2d(x, kernel)
    assert saved[-1].dtype == torch.int64  # what it replaces: 8 bytes an output


def test_inference_matches_and_records_nothing(device):
    """Under no_grad (or without inputs that need grad) no offsets are written or saved."""
    x = _input((2, 3, 6, 6), torch.bfloat16, "contiguous", device, seed=4)
    with torch.no_grad():
        out = tether.max_pool2d(x.requires_grad_(), 2)
    assert out.grad_fn is None
    assert torch.equal(out.nan_to_num(-7), F.max_pool2d(x, 2).nan_to_num(-7))


def test_module_pools_leading_dims(device):
    """``MaxPool2d`` keeps ``(T, B)`` and matches torch's module on the flattened batch."""
    x = _input((3, 2, 4, 6, 6), torch.float32, "contiguous", device, seed=5)
    module = tether.MaxPool2d(2)
    expected = torch.nn.MaxPool2d(2)(x.flatten(0, 1)).unflatten(0, (3, 2))
    assert torch.equal(module(x).nan_to_num(-7), expected.nan_to_num(-7))
    assert "kernel_size=(2, 2)" in repr(module)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kernel_size": 0}, "kernel_size must be a positive int"),
        ({"kernel_size": (2, 2, 2)}, "kernel_size must be a positive int"),
        ({"kernel_size": 2.0}, "kernel_size must be a positive int"),
        ({"kernel_size": 2, "stride": 1}, "stride must be None or equal to kernel_size"),
        ({"kernel_size": 5}, r"\(H, W\) = \(4, 4\) is smaller than kernel_size"),
        ({"kernel_size": (16, 17)}, r"has more than 256 elements \(window offsets are uint8\)"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tether.max_pool2d(torch.zeros(1, 2, 4, 4), **kwargs)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"x must have shape \(\*, C, H, W\), got \(4, 4\)"):
        tether.max_pool2d(torch.zeros(4, 4))
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        tether.max_pool2d([[[0.0]]])
    with pytest.raises(ValueError, match="kernel_size must be"):
        tether.MaxPool2d((1, 0))


def test_compiles_into_one_graph(device):
    """Traced, it is torch's max-pool (inductor lowers it with its own 1-byte offsets): no
    graph break, the same values and gradients as eager."""
    torch._dynamo.reset()
    x = _input((2, 2, 4, 6, 6), torch.float32, "channels_last", device, seed=6)
    x = x.nan_to_num(0.0)

    def f(t: torch.Tensor) -> torch.Tensor:
        return tether.max_pool2d(t * 2, 2).sum(dim=(-1, -2))

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.testing.assert_close(compiled(a), f(b), rtol=0, atol=0)
    compiled(a).sum().backward()
    f(b).sum().backward()
    assert torch.equal(a.grad, b.grad)


def test_under_spike_memory_gradients_are_unchanged(device):
    """LIF -> max_pool2d -> linear under ``tether.spike_memory``: the same gradients, and
    nothing of the pool's depends on the spikes' storage."""
    torch.manual_seed(0)
    lif = tether.LIF(4 * 6 * 6, stateful=False).to(device)
    head = torch.nn.Linear(4 * 3 * 3, 3).to(device)
    x = (torch.rand(5, 2, 4, 6, 6) * 1.5).to(device)

    def grads(memory: bool) -> list[torch.Tensor]:
        inputs = x.clone().requires_grad_()
        context = (
            tether.spike_memory()
            if memory
            else torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)
        )
        with context:
            pooled = tether.max_pool2d(lif(inputs), 2)
            loss = head(pooled.flatten(2)).square().sum()
        params = [inputs, *head.parameters()]
        return torch.autograd.grad(loss, params)

    for mine, theirs in zip(grads(True), grads(False)):
        assert torch.equal(mine, theirs)


def test_kernel_pair_accepts_ints_and_pairs():
    assert pool.kernel_pair(3, "k") == (3, 3)
    assert pool.kernel_pair([2, 4], "k") == (2, 4)
    with pytest.raises(ValueError, match="k must be"):
        pool.kernel_pair(True, "k")


def test_any_gradient_layout_and_empty_batches(device):
    """A gradient in another layout (copied to the output's) and an empty batch."""
    x = _input((2, 3, 4, 6), torch.float32, "channels_last", device, seed=7).nan_to_num(0.0)
    mine, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    g = torch.rand(2, 3, 3, 2).transpose(-1, -2).to(device)  # neither contiguous nor CL
    tether.max_pool2d(mine, 2).backward(g)
    F.max_pool2d(theirs, 2).backward(g)
    assert torch.equal(mine.grad, theirs.grad)
    empty = torch.zeros(0, 3, 4, 4, device=device, requires_grad=True)
    out = tether.max_pool2d(empty, 2)
    out.sum().backward()
    assert out.shape == (0, 3, 2, 2) and empty.grad.shape == empty.shape
