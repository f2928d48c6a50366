"""``tether.spike_memory``: spikes saved in 1 bit by the layers that consume them.

Gradients bitwise equal to the run without it, on the kernels (interpreter or GPU: the
neuron's packed bits, the unpack kernel) and on the eager reference (float64: torch
packing); the full-size spikes freed; in-place modification, torch.compile, CUDA graphs
and DDP as documented in ``tether/spike_memory.py``.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import sys
import weakref

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tether
from tests.helpers import DDP_BACKENDS, torchrun
from tether.functional import core
from tether.kernels import aot
from tether.kernels.unpack import unpack_plan, unpack_spikes
from tether.spike_memory import _REGISTRY, SHAPE_ONLY_NODES, _Bits, _pack_bytes

T, B = 5, 3


@pytest.fixture(autouse=True)
def _deterministic_cudnn():
    """Bitwise comparisons of two runs: cuDNN's convolution algorithms fixed (on a GPU)."""
    before = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before


# --- the unpack kernel -------------------------------------------------------------------


@pytest.mark.parametrize(
    "pack_bits, dtype, n_steps, n_neurons",
    [
        (8, torch.float32, 13, 37),
        (16, torch.bfloat16, 33, 130),
        (32, torch.float16, 40, 6),
        (32, torch.float32, 1, 300),
        (32, torch.float32, 8, 70),  # shorter than a word: an 8-row tile
        (32, torch.bfloat16, 5, 9),
        (16, torch.float32, 16, 33),
    ],
)
def test_unpack_kernel_matches_the_bits(device, pack_bits, dtype, n_steps, n_neurons):
    """Bit ``t % W`` of word ``(t // W, n)`` is spike ``(t, n)``, the sign bit included."""
    g = torch.Generator().manual_seed(pack_bits + n_steps)
    spikes = torch.rand(n_steps, n_neurons, generator=g) < 0.4
    spikes[:, 0] = True  # every bit of a word set: the sign bit of int8/16/32
    words = torch.zeros(-(-n_steps // pack_bits), n_neurons, dtype=torch.int64)
    for t in range(n_steps):
        words[t // pack_bits] |= spikes[t].long() << (t % pack_bits)
    words = (words - (words >= 2 ** (pack_bits - 1)).long() * 2**pack_bits).to(
        {8: torch.int8, 16: torch.int16, 32: torch.int32}[pack_bits]
    )  # two's complement
    out = torch.full((n_steps, n_neurons), 7.0, dtype=dtype, device=device)
    unpack_spikes(words.to(device), out)
    assert torch.equal(out.cpu(), spikes.to(dtype))
    # into a tensor that is not 16-byte aligned (one element in): not the plans' binaries
    buffer = torch.full((n_steps * n_neurons + 1,), 7.0, dtype=dtype, device=device)
    unaligned = buffer[1:].view(n_steps, n_neurons)
    unpack_spikes(words.to(device), unaligned)
    assert torch.equal(unaligned.cpu(), spikes.to(dtype)) and buffer[0] == 7
    # from words that are not 16-byte aligned (a view one word in): another plan
    shifted = torch.cat([words.flatten()[:1], words.flatten()]).to(device)[1:]
    shifted = shifted.view(words.shape)
    out.fill_(7.0)
    unpack_spikes(shifted, out)
    assert torch.equal(out.cpu(), spikes.to(dtype))
    plan = unpack_plan(words.to(device), n_steps, n_neurons, dtype)
    assert unpack_plan(words.to(device), n_steps, n_neurons, dtype) is plan  # cached
    assert unpack_plan(shifted, n_steps, n_neurons, dtype).binaries is not plan.binaries


def test_unpack_kernel_compiles_for_sm90(compiled_switches):
    """Every variant the runtime launches, compiled without the interpreter (with the
    switch variants: ``conftest``)."""
    unpack = [v[0] for v in aot.unpack_variants()]
    assert len(unpack) == 14 and {compiled_switches[name] for name in unpack} == {"ok"}


def test_unpack_rejects_mismatched_words():
    with pytest.raises(ValueError, match="packed has shape"):
        unpack_spikes(torch.zeros(2, 5, dtype=torch.int8), torch.empty(9, 6))


# --- models: gradients with and without ---------------------------------------------------


class Net(nn.Module):
    """Spikes consumed every common way: conv on the ``(T*B, C, H, W)`` view (channels_last),
    max-pool, an elementwise product, a gather ``spikes[:, :, idx]`` and a matmul of two
    slices of spikes: 5 saves of spikes."""

    def __init__(self, neuron: str) -> None:
        super().__init__()
        make = {
            "lif": lambda n: tether.LIF(stateful=False),
            "plif": lambda n: tether.PLIF(n, per_channel=True, stateful=False),
            "alif": lambda n: tether.ALIF(stateful=False),
        }[neuron]
        self.n1, self.n2 = make(4), make(6)
        self.conv = nn.Conv2d(4, 6, 3, padding=1)
        self.gate = nn.Parameter(torch.rand(4, 4, 4) + 0.5)
        self.head = nn.Linear(6 * 2 * 2 + 4 * 4, 5)
        self.register_buffer("rows", torch.tensor([0, 2]))  # on the device: capturable

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.n1(x)  # (T, B, 4, 4, 4)
        y = self.conv(s1.flatten(0, 1)).unflatten(0, s1.shape[:2])
        s2 = self.n2(y)  # (T, B, 6, 4, 4)
        pooled = F.max_pool2d(s2.flatten(0, 1), 2).unflatten(0, s1.shape[:2]).flatten(2)
        gated = (s1 * self.gate)[:, :, self.rows].sum(2)  # (T, B, 4, 4)
        attn = s1[:, :, 1] @ s1[:, :, 3].transpose(-1, -2)  # (T, B, 4, 4)
        return self.head(torch.cat([pooled, (gated + attn).flatten(2)], -1))


def gradients(net: nn.Module, x: torch.Tensor, memory: tether.spike_memory | None):
    """The gradients of the input and every parameter after one step (forward and
    backward inside ``memory`` when given)."""
    net.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_()
    with memory or contextlib.nullcontext():
        (net(x).float() ** 2).sum().backward()
    return [x.grad, *(p.grad for p in net.parameters())]


def channels_last_input(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(T * B, 4, 4, 4, generator=g) * 1.5 + 0.3
    x = x.to(device, memory_format=torch.channels_last).to(dtype)
    return x.unflatten(0, (T, B))


def check_bitwise(net: nn.Module, x: torch.Tensor) -> tether.spike_memory:
    memory = tether.spike_memory()
    with_bits = gradients(net, x, memory)
    without = gradients(net, x, None)
    # conv, pool, the product and both operands of the matmul (the gather saves indices)
    assert memory.packed == 5, memory.packed
    for name, a, b in zip(["x", *dict(net.named_parameters())], with_bits, without):
        assert b is not None and b.abs().sum() > 0, f"{name}: no gradient, the test proves nothing"
        assert torch.equal(a, b), name
    return memory


@pytest.mark.parametrize("neuron", ["lif", "plif", "alif"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_kernel_gradients_bitwise_equal(device, neuron, dtype):
    """Kernels: the bits are the neuron's own (packed in its forward), unpacked by the
    kernel; every gradient is bitwise the one without spike memory."""
    torch.manual_seed(0)
    net = Net(neuron).to(device=device, dtype=dtype)
    check_bitwise(net, channels_last_input(dtype, device))


@pytest.mark.parametrize("neuron", ["lif", "alif"])
def test_reference_gradients_bitwise_equal(neuron):
    """The eager reference (float64 on the CPU): no neuron bits, packed with torch ops."""
    torch.manual_seed(0)
    net = Net(neuron).double()
    check_bitwise(net, channels_last_input(torch.float64, torch.device("cpu")))


def test_bits_are_the_neurons_own(device):
    """No second packing pass: the saved bits are the packed tensor that the neuron saved
    for its own backward."""
    lif, linear = tether.LIF(stateful=False), nn.Linear(8, 3).to(device)
    x = torch.randn(T, B, 8, device=device, requires_grad=True)
    with tether.spike_memory():
        spikes = lif(x)
        out = linear(spikes)  # holds the bits
        entry = _REGISTRY[spikes.untyped_storage().data_ptr()]
    neuron_words = spikes.grad_fn.saved_tensors[3]  # x, v_init, a_init, packed, ...
    assert entry.bits().words.data_ptr() == neuron_words.data_ptr()
    assert entry.bits().pack_bits == neuron_words.element_size() * 8
    out.sum().backward()


def count_unpacks(monkeypatch) -> list[int]:
    """Patch ``_Bits.unpack_fresh`` to count the spike tensors unpacked (one kernel launch
    each on the kernels)."""
    calls, fresh = [], _Bits.unpack_fresh
    monkeypatch.setattr(_Bits, "unpack_fresh", lambda bits: calls.append(1) or fresh(bits))
    return calls


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_saves_of_one_tensor_share_one_unpack(path, monkeypatch, dtype):
    """Both operands of ``s[:, 1] @ s[:, 3].T`` are views of one spike tensor: one
    unpack (one kernel launch on the kernels) serves both saves, gradients bitwise equal."""
    calls = count_unpacks(monkeypatch)
    lif = tether.LIF(stateful=False)
    # uniform in [0, 4): about half the neurons spike at the first step (x >= 2), so the
    # product has spikes in common and the gradient is not zero (randn drew none once)
    g = torch.Generator().manual_seed(0)
    x = (4 * torch.rand(T, 4, B, 6, generator=g)).to(path, dtype).requires_grad_()
    grads = []
    for active in (False, True):
        memory = tether.spike_memory()
        with memory if active else contextlib.nullcontext():
            s = lif(x)
            out = s[:, 1] @ s[:, 3].transpose(-1, -2)  # (T, B, B)
        (grad,) = torch.autograd.grad((out.float() ** 2).sum(), x)
        grads.append(grad)
        assert memory.packed == 2 * active
    assert len(calls) == 1 and grads[0].abs().sum() > 0
    assert torch.equal(*grads)


def test_shared_unpack_only_while_alive(monkeypatch):
    """The shared unpacked storage serves later saves while a tensor on it lives (here a
    shallow copy, as autograd keeps); once they are freed the next save unpacks afresh."""
    calls = count_unpacks(monkeypatch)
    spikes = torch.tensor([0.0, 1, 1, 0, 1, 0, 0, 1, 1])
    bits = _Bits(_pack_bytes(spikes), 0, spikes.shape, spikes.stride(), spikes.dtype)
    kept = bits.unpack().detach()
    second = bits.unpack()
    assert second.data_ptr() == kept.data_ptr() and torch.equal(second, spikes)
    assert len(calls) == 1
    del kept, second
    assert torch.equal(bits.unpack(), spikes) and len(calls) == 2


SHAPE_ONLY_CALLS = {
    "MaxPool2DWithIndicesBackward0": lambda s: F.max_pool2d(s.flatten(0, 1), 2),
    "MaxPool3DWithIndicesBackward0": lambda s: F.max_pool3d(s, 2),
}


@pytest.mark.parametrize("node", sorted(SHAPE_ONLY_NODES))
def test_shape_only_nodes_ignore_the_values(device, node):
    """PyTorch's side of ``SHAPE_ONLY_NODES``: each node's gradient is the same when every
    floating-point tensor it saved comes back as NaN (laid out as saved)."""
    assert set(SHAPE_ONLY_CALLS) == SHAPE_ONLY_NODES
    g = torch.Generator().manual_seed(1)
    spikes = (torch.rand(T, B, 4, 4, 4, generator=g) < 0.5).float()  # ties in every window
    spikes = spikes.to(device).requires_grad_()
    out = SHAPE_ONLY_CALLS[node](spikes)
    assert out.grad_fn.name() == node
    grad = torch.randn(out.shape, generator=g).to(device)
    (expected,) = torch.autograd.grad(out, spikes, grad)

    def nan_floats(t: torch.Tensor) -> torch.Tensor:
        return torch.full_like(t, float("nan")) if t.is_floating_point() else t

    with torch.autograd.graph.saved_tensors_hooks(lambda t: t, nan_floats):
        out = SHAPE_ONLY_CALLS[node](spikes)
    (poisoned,) = torch.autograd.grad(out, spikes, grad)
    assert expected.abs().sum() > 0 and torch.equal(poisoned, expected)


def test_max_pool_saves_are_not_unpacked(path, monkeypatch):
    """Spikes saved by a max-pool are stored in 1 bit and come back unwritten (the node
    reads their layout only): no unpack, gradients bitwise equal."""
    calls = count_unpacks(monkeypatch)
    lif = tether.LIF(stateful=False)
    x = channels_last_input(torch.float32, path).requires_grad_()
    grads = []
    for active in (False, True):
        memory = tether.spike_memory()
        with memory if active else contextlib.nullcontext():
            pooled = F.max_pool2d(lif(x).flatten(0, 1), 2)
        (grad,) = torch.autograd.grad((pooled * torch.arange(2.0, device=path)).sum(), x)
        grads.append(grad)
        assert memory.packed == active
    assert not calls and grads[0].abs().sum() > 0
    assert torch.equal(*grads)


# --- memory ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["kernel", "reference"])
def test_saved_bits_free_the_spikes(dtype):
    """While the graph lives, nothing holds the full-size spikes but the caller: dropped,
    they are freed (without spike memory the linear layer's saved input keeps them)."""
    lif, linear = tether.LIF(stateful=False), nn.Linear(8, 3).to(dtype)
    x = torch.randn(T, B, 8, dtype=dtype, requires_grad=True)
    for active, freed in ((False, False), (True, True)):
        memory = tether.spike_memory()
        with memory if active else contextlib.nullcontext():
            spikes = lif(x)
            out = linear(spikes.flatten(0, 1))
        alive = weakref.ref(spikes)
        del spikes
        assert (alive() is None) == freed
        assert memory.packed == int(active)
        out.sum().backward()  # the graph held on until here


def test_registry_keeps_nothing_alive():
    lif = tether.LIF(stateful=False)
    x = torch.randn(T, B, 8, requires_grad=True)
    with tether.spike_memory():
        spikes = lif(x)
        key = spikes.untyped_storage().data_ptr()
        assert key in _REGISTRY
        alive = weakref.ref(spikes)
        del spikes
    assert alive() is None and key not in _REGISTRY


# --- identification ----------------------------------------------------------------------


def test_other_tensors_untouched():
    """Non-spike tensors, spikes of a neuron run outside the context, and copies of spikes
    are saved as usual."""
    lif, linear = tether.LIF(stateful=False), nn.Linear(8, 3)
    x = torch.randn(T, B, 8, requires_grad=True)
    outside = lif(x)
    memory = tether.spike_memory()
    with memory:
        spikes = lif(x)
        linear(x)
        linear(outside)
        linear(spikes.clone())
        linear(spikes.double().float())
    assert memory.packed == 0


@pytest.mark.parametrize("neuron", ["lif", "plif", "alif"])
def test_own_saves_skip_the_hooks(device, neuron, monkeypatch):
    """tether's own Functions (the neuron, ``tether.max_pool2d``) save without the hooks
    (``apply_unhooked``): their saves have no 1-bit form; autograd keeps its own in-place
    check on them. The spikes a layer saves still go through the hooks."""
    net = Net(neuron).to(device)
    memory = tether.spike_memory()
    hooked = []
    pack = memory._pack
    monkeypatch.setattr(memory, "_pack", lambda t: hooked.append(t) or pack(t))
    x = channels_last_input(torch.float32, device).requires_grad_()
    with memory:
        y = x * 1.0  # the neuron's input, a saved tensor of its node
        s1 = net.n1(y)
        pooled = tether.max_pool2d(s1.flatten(0, 1))
    # only the module's own parameter transforms (PLIF's, ALIF's sigmoids) are hooked
    storage = y.untyped_storage().data_ptr()
    assert memory.packed == 0
    assert not [t for t in hooked if t.untyped_storage().data_ptr() == storage]  # input
    assert not [t for t in hooked if not t.is_floating_point()]  # packed spikes, offsets
    before = len(hooked)
    with memory:
        out = net.conv(s1.flatten(0, 1))
    assert memory.packed == 1 and len(hooked) == before + 2  # the spikes, the conv's weight
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (out.sum() + pooled.sum()).backward()


def test_checkpoint_region_keeps_its_hooks(device):
    """Inside ``torch.utils.checkpoint`` within spike memory the top hooks are the
    checkpoint's: the neuron's saves go through them (recomputed), gradients unchanged."""
    torch.manual_seed(0)
    lif, linear = tether.LIF(stateful=False), nn.Linear(8, 3).to(device)
    x = torch.randn(T, B, 8, device=device, requires_grad=True)
    grads = []
    for memory in (None, tether.spike_memory()):
        linear.zero_grad()
        x.grad = None
        with memory or contextlib.nullcontext():
            hidden = torch.utils.checkpoint.checkpoint(lif, x * 1.5, use_reentrant=False)
            linear(hidden).sum().backward()
        grads.append((x.grad.clone(), linear.weight.grad.clone()))
    assert grads[0][0].abs().sum() > 0
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_modified_spikes_are_saved_as_usual():
    """In place before the save (version moved): saved as usual, gradients those of the
    modified values."""
    lif, linear = tether.LIF(stateful=False), nn.Linear(8, 3)
    x = torch.randn(T, B, 8, requires_grad=True)
    grads = []
    for active in (False, True):
        memory = tether.spike_memory()
        linear.zero_grad()
        with memory if active else contextlib.nullcontext():
            spikes = lif(x)
            spikes[0] = 1.0
            linear(spikes).sum().backward()
        assert memory.packed == 0
        grads.append(linear.weight.grad.clone())
    assert torch.equal(*grads)


@pytest.mark.parametrize("what", ["spikes", "other"])
def test_modification_after_the_save_raises(what):
    """A saved tensor modified in place before the backward raises, as autograd without
    hooks does (autograd skips its check under saved-tensor hooks)."""
    lif, linear = tether.LIF(stateful=False), nn.Linear(8, 3)
    x = torch.randn(T, B, 8, requires_grad=True)
    with tether.spike_memory() as memory:
        spikes = lif(x)
        saved = spikes if what == "spikes" else x * 2
        out = linear(saved[1:])
    assert memory.packed == int(what == "spikes")
    saved.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


# --- the switches ------------------------------------------------------------------------


def test_model_switch_and_remove():
    """``spike_memory(model)``: every forward of the model under it, until ``remove()``;
    nested contexts; a bad argument named."""
    torch.manual_seed(0)
    net = Net("lif")
    x = channels_last_input(torch.float32, torch.device("cpu")).requires_grad_()
    memory = tether.spike_memory(net)
    net(x).sum().backward()
    assert memory.packed == 5
    with tether.spike_memory():  # nested: the inner context, then the model's
        net(x).sum().backward()
    memory.remove()
    count = memory.packed
    net(x).sum().backward()
    assert memory.packed == count
    with pytest.raises(TypeError, match="model must be"):
        tether.spike_memory(x)


# --- torch.compile, CUDA graphs, DDP ------------------------------------------------------


def test_compile_inactive_inside_compiled_code():
    """Inside compiled code the mechanism is a no-op without a graph break (fullgraph
    compiles), spikes made in the graph are not registered, and gradients are unchanged;
    spikes made eagerly and saved by a compiled layer are stored in 1 bit."""
    torch.manual_seed(0)
    net = Net("lif").double()
    x = channels_last_input(torch.float64, torch.device("cpu"))
    expected = gradients(net, x, None)
    memory = tether.spike_memory(net)
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    got = gradients(compiled, x, None)
    assert memory.packed == 0
    outer = tether.spike_memory()  # around the compiled call: nothing registered
    got_outer = gradients(compiled, x, outer)
    assert outer.packed == 0
    for a, b, c in zip(got, got_outer, expected):
        assert torch.equal(a, c) and torch.equal(b, c)
    memory.remove()

    lif, linear = tether.LIF(stateful=False), nn.Linear(8, 3).double()
    layer = torch.compile(linear, backend="aot_eager")
    xs = torch.randn(T, B, 8, dtype=torch.float64, requires_grad=True)
    results = []
    for active in (False, True):
        linear.zero_grad()
        boundary = tether.spike_memory()
        with boundary if active else contextlib.nullcontext():
            layer(lif(xs)).sum().backward()
        assert boundary.packed == int(active)
        results.append(linear.weight.grad.clone())
    assert torch.equal(*results)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_cuda_graph_training_step_replays(dtype):
    """A training step captured under spike memory replays on new input to the eager
    gradients without it."""
    from tether.benchmark.providers import capture

    torch.manual_seed(0)
    net = Net("plif").cuda().to(dtype)
    eager = copy.deepcopy(net)
    x = channels_last_input(dtype, torch.device("cuda")).requires_grad_()
    memory = tether.spike_memory(net)

    def step():
        for t in (x, *net.parameters()):
            t.grad = None
        (net(x).float() ** 2).sum().backward()

    graph, _ = capture(step)
    fresh = channels_last_input(dtype, torch.device("cuda")) * 0.8 + 0.2
    with torch.no_grad():
        x.copy_(fresh)
    graph.replay()
    expected = gradients(eager, fresh, None)
    assert memory.packed >= 5
    for a, b in zip([x.grad, *(p.grad for p in net.parameters())], expected):
        assert torch.equal(a, b)


def ddp_rank(out: str, cuda: bool) -> None:
    """One rank under torchrun (gloo on CPUs, NCCL on GPUs): a step with and without spike
    memory; saves whether the all-reduced gradients are equal and how many spike saves were
    packed."""
    import torch.distributed as dist

    from tether.benchmark.distributed import leave

    backend = "nccl" if cuda else "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=120))
    rank = dist.get_rank()
    device = torch.device(f"cuda:{rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    torch.manual_seed(0)
    net = Net("plif").to(device)
    x = channels_last_input(torch.float32, device) * (1 + rank)
    ids = [rank] if cuda else None
    grads, packed = [], None
    for active in (False, True):
        model = nn.parallel.DistributedDataParallel(copy.deepcopy(net), device_ids=ids)
        memory = tether.spike_memory(model) if active else None
        (model(x) ** 2).sum().backward()
        grads.append([p.grad for p in model.parameters()])
        if active:
            packed = memory.packed
    equal = all(torch.equal(a, b) for a, b in zip(*grads))
    torch.save({"equal": equal, "packed": packed}, f"{out}/{rank}.pt")
    leave()


@DDP_BACKENDS
def test_ddp_gradients_unchanged(tmp_path, cuda):
    """DDP over two processes (gloo on CPUs, NCCL on two GPUs): the all-reduced gradients
    are bitwise those without spike memory, which stored spikes in 1 bit on both ranks."""
    torchrun(2, "-m", "tests.test_spike_memory", str(tmp_path), *(["--cuda"] if cuda else []))
    for rank in (0, 1):
        result = torch.load(tmp_path / f"{rank}.pt")
        assert result["equal"] and result["packed"] == 5, (rank, result)


def test_saved_bytes_counts_the_spikes_once(monkeypatch):
    """``scripts/saved_bytes.py`` finds, among what the conv net's forward saved, exactly the
    bytes of its neurons' spikes, each storage once: those the next conv saves (the first
    neuron's), not those ``tether.max_pool2d`` pools (it saves 2-bit window offsets only)."""
    if not core.uses_kernels(torch.empty(0)):
        pytest.skip(
            "saved_bytes runs on the CPU: kernels (tether.max_pool2d's) need the interpreter"
        )
    monkeypatch.syspath_prepend("scripts")
    from saved_bytes import measure

    from tether.benchmark import models

    spec = models.MODELS["cifar_conv"]
    size = spec.quick[0]
    torch.manual_seed(0)
    source = spec.build(models.IMPLEMENTATIONS["tether"].neuron, spec.kinds[0], size)
    spikes = []
    handles = [m.register_forward_hook(lambda m, a, out: spikes.append(out.untyped_storage()))
               for m in source.modules() if isinstance(m, tether.PLIF)]  # fmt: skip
    with torch.no_grad():
        source(torch.randn(size.T, size.batch, 3, size.image, size.image))
    for handle in handles:
        handle.remove()
    rows = measure("tether", "cifar_conv", size, source)
    assert len(spikes) == 3  # conv 2 saves the first; a max-pool reads each of the others
    assert sum(r["spike_bytes"] for r in rows) == spikes[0].nbytes()
    by_node = {r["node"]: r for r in rows}
    assert by_node["ConvolutionBackward0"]["spike_bytes"] == spikes[0].nbytes()
    pools = by_node["MaxPool2dFunctionBackward"]
    # fp32 elements (4 B) -> 2x2 windows' outputs -> their offsets, 4 a byte
    offset_bytes = sum(-(-(s.nbytes() // 4 // 4) // 4) for s in spikes[1:])
    assert (pools["tensors"], pools["bytes"], pools["spike_bytes"]) == (2, offset_bytes, 0)
    assert by_node["PLIFSubFunctionBackward"]["spike_bytes"] == 0  # the neurons save inputs


if __name__ == "__main__":  # a rank of test_ddp_gradients_unchanged
    ddp_rank(sys.argv[1], cuda="--cuda" in sys.argv)
