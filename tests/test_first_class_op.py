"""tether as a first-class PyTorch op: whole-graph torch.compile and export, any memory
layout without copies, and the autograd edge cases (gradcheck, retain_graph, double
backward). On CPU the kernels run under the interpreter (float32) and the reference path
runs for float64; on a GPU the same tests run the compiled kernels."""

import pytest
import torch
from torch import nn

import tether
from tests.conftest import DEVICE
from tether.functional import ALIFSubFunction, LIFSubFunction, PLIFSubFunction, ops
from tether.tuning import table
from tether.tuning.space import KernelConfig


class SpikingNet(nn.Module):
    """conv (channels_last) -> BN -> per-channel PLIF -> Linear -> LIF -> Linear -> ALIF."""

    def __init__(self, stateful: bool, channels: int = 4, size: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.plif = tether.PLIF(channels, per_channel=True, stateful=stateful)
        self.fc1 = nn.Linear(channels * size * size, 16)
        self.lif = tether.LIF(16, stateful=stateful)
        self.fc2 = nn.Linear(16, 5)
        self.alif = tether.ALIF(5, stateful=stateful)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (T, B, 2, H, W)`` -> spikes ``(T, B, 5)``."""
        n_steps, batch = x.shape[:2]
        y = self.bn(self.conv(x.flatten(0, 1))).to(memory_format=torch.channels_last)
        s = self.plif(y.view(n_steps, batch, *y.shape[1:]))
        s = self.lif(self.fc1(s.flatten(2)))
        return self.alif(self.fc2(s))


def _inputs(dtype=torch.float32, n_steps: int = 3, batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n_steps, batch, 2, 4, 4, generator=g, dtype=dtype) * 2 + 1
    return x.to(DEVICE)


def _step(model: nn.Module, x: torch.Tensor):
    """Spikes, a loss over spikes and the carried state, and the gradient of every input;
    the state is then detached (truncated BPTT) for the next call."""
    spikes = model(x)
    net = getattr(model, "_orig_mod", model)
    loss = spikes.sum() + (net.alif.v.sum() if net.alif.v is not None else 0)
    grads = torch.autograd.grad(loss, [x, *model.parameters()])
    for m in model.modules():
        if hasattr(m, "detach_state"):
            m.detach_state()
    return spikes, loss, grads


def _reset(model: nn.Module) -> None:
    for m in model.modules():
        if hasattr(m, "reset"):
            m.reset()


@pytest.mark.parametrize(
    "stateful,segments",
    [(False, 1), (True, 1), (True, 2)],
    ids=["stateless", "stateful", "segments"],
)
def test_fullgraph_compile_matches_eager(device, monkeypatch, stateful, segments):
    """A model with LIF, PLIF and ALIF compiles into one graph (``fullgraph=True``: a graph
    break raises) and gives eager's spikes, loss and every gradient, over two calls that
    carry state; carrying state does not recompile on every call. ``segments``: every
    backward in time segments (two launches a neuron, over 6 steps in chunks of 2: segments
    of 2 chunks and 1)."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    torch.manual_seed(0)
    n_steps = 3
    if segments > 1:
        config = KernelConfig(32, 1, 1, 2, 32, True, True, segments)
        monkeypatch.setattr(ops, "_PLANS", {})
        monkeypatch.setattr(table, "select_config", lambda *args: config)
        monkeypatch.setattr(table, "select_training_configs", lambda *args: (config, config))
        n_steps = 6
    model = SpikingNet(stateful).to(device)
    x = _inputs(n_steps=n_steps).requires_grad_()
    eager = [_step(model, x), _step(model, x)]
    _reset(model)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    traced = [_step(compiled, x) for _ in range(3)]
    for (s_e, loss_e, grads_e), (s_c, loss_c, grads_c) in zip(eager, traced):
        assert torch.equal(s_e, s_c)
        torch.testing.assert_close(loss_c, loss_e)
        for a, b in zip(grads_c, grads_e):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert graphs <= (2 if stateful else 1)  # stateful: the first call has no state yet
    if segments > 1:  # eager's backwards ran in segments (the plans it cached)
        assert any(plan.maps is not None for plan in ops._PLANS.values())


def test_inductor_training_step_matches_eager(device):
    """The default backend (inductor) with an optimizer step."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    torch.manual_seed(0)
    eager_model = SpikingNet(stateful=False).to(device)
    compiled_model = SpikingNet(stateful=False).to(device)
    compiled_model.load_state_dict(eager_model.state_dict())
    x = _inputs()
    losses = {}
    for name, model in (("eager", eager_model), ("compiled", compiled_model)):
        step = model if name == "eager" else torch.compile(model, fullgraph=True)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        losses[name] = []
        for _ in range(2):
            loss = step(x).sum()
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses[name].append(loss.detach())
    torch.testing.assert_close(losses["compiled"], losses["eager"])
    for a, b in zip(compiled_model.parameters(), eager_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_functions_compile_on_the_reference_path():
    """float64 runs the eager reference inside the same ops: Functions trace with
    ``fullgraph=True`` and match eager."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(6, 10, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    decay = torch.full((10,), 0.8, dtype=torch.float64, requires_grad=True)

    def run(x, decay):
        s, v, h = PLIFSubFunction.apply(x, None, decay, 1.0, 2.0)
        a = ALIFSubFunction.apply(x, None, None, decay, 0.7, 1.0, 0.3)[0]
        return s, v, h, a

    eager = run(x, decay)
    traced = torch.compile(run, fullgraph=True, backend="aot_eager")(x, decay)
    for a, b in zip(traced, eager):
        torch.testing.assert_close(a, b)
    weights = [torch.randn_like(t) for t in eager]
    grads_e = torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, eager)), [x, decay])
    grads_c = torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, traced)), [x, decay])
    for a, b in zip(grads_c, grads_e):
        torch.testing.assert_close(a, b)


def test_export_for_inference(device):
    torch.manual_seed(0)
    model = SpikingNet(stateful=False).to(device).eval()
    x = _inputs()
    with torch.no_grad():
        expected = model(x)
    program = torch.export.export(model, (x,))
    assert any("tether.neuron_fwd" in str(n.target) for n in program.graph.nodes)
    with torch.no_grad():
        assert torch.equal(program.module()(x), expected)


LAYOUTS = {
    "contiguous": lambda x: x,
    "channels_last": lambda x: (
        x.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(x.shape)
    ),
    "permuted": lambda x: x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3),
    "not_dense": lambda x: torch.stack([x, x], dim=-1)[..., 0],
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("neuron", ["lif", "plif_channel", "plif_neuron", "alif"])
def test_layouts_give_the_contiguous_result(device, neuron, layout):
    """Any layout: the contiguous input's spikes, state and gradients; a dense layout's
    spikes come back with the input's strides (the next conv gets channels_last)."""
    channels, size = 3, 4
    features = channels * size * size
    make = {
        "lif": lambda: tether.LIF(features),
        "plif_channel": lambda: tether.PLIF(channels, per_channel=True),
        "plif_neuron": lambda: tether.PLIF(features),
        "alif": lambda: tether.ALIF(features),
    }[neuron]
    torch.manual_seed(0)
    base = make().to(device)
    for p in base.parameters():  # distinct per-entry values: a mis-indexed entry shows
        p.data += torch.rand_like(p) * 0.1
    other = make().to(device)
    other.load_state_dict(base.state_dict())
    x = torch.randn(5, 2, channels, size, size, device=device) * 0.8 + 0.6
    x_laid = LAYOUTS[layout](x.clone()).requires_grad_()
    x_plain = x.clone().requires_grad_()
    out_laid, out_plain = other(x_laid), base(x_plain)
    assert torch.equal(out_laid, out_plain)
    torch.testing.assert_close(other.v, base.v)
    if layout != "not_dense":
        assert out_laid.stride() == x_laid.stride() and other.v.stride() == x_laid[0].stride()
    g = torch.randn_like(x)
    leaves_laid = [x_laid, *other.parameters()]
    leaves_plain = [x_plain, *base.parameters()]
    grads_laid = torch.autograd.grad((out_laid * g).sum() + other.v.sum(), leaves_laid)
    grads_plain = torch.autograd.grad((out_plain * g).sum() + base.v.sum(), leaves_plain)
    for a, b in zip(grads_laid, grads_plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # state carried into a second call with another layout is re-laid, not misread
    torch.testing.assert_close(other(x_plain.detach()), base(x_laid.detach()))


def test_functions_take_sequences_of_any_rank(device):
    x = torch.randn(4, 2, 3, 5, device=device) + 0.5
    spikes, v_final, v_seq = LIFSubFunction.apply(x, None, 0.9, 1.0)
    flat = LIFSubFunction.apply(x.reshape(4, -1), None, 0.9, 1.0)
    assert spikes.shape == x.shape and v_final.shape == x.shape[1:]
    assert torch.equal(spikes.reshape(4, -1), flat[0])
    torch.testing.assert_close(v_final.reshape(-1), flat[1])


def _lif_smooth_outputs(x, decay):
    """LIF's final membrane and membrane trace: differentiable almost everywhere (with the
    reset detached, a spike only switches which terms are kept), so gradcheck's finite
    differences apply; the spikes' own gradient is a surrogate, which they cannot check."""
    _, v_final, v_seq = PLIFSubFunction.apply(x, None, decay, 1.0, 2.0, 0, False, True)
    return v_final, v_seq


def test_reference_path_passes_gradcheck():
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(5, 6, generator=g, dtype=torch.float64) * 0.5 + 0.4).requires_grad_()
    decay = (torch.rand(6, generator=g, dtype=torch.float64) * 0.2 + 0.7).requires_grad_()
    assert torch.autograd.gradcheck(_lif_smooth_outputs, (x, decay))


def test_reference_path_backward_twice_with_retain_graph():
    x = (torch.randn(5, 6, dtype=torch.float64) + 0.5).requires_grad_()
    spikes, v_final, _ = LIFSubFunction.apply(x, None, 0.9, 1.0)
    loss = spikes.sum() + v_final.sum()
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * first)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["kernel", "reference"])
def test_double_backward_raises(device, dtype):
    x = (torch.randn(5, 6, device=device, dtype=dtype) + 0.5).requires_grad_()
    spikes, _, _ = LIFSubFunction.apply(x, None, 0.9, 1.0)
    with pytest.raises(RuntimeError, match="differentiable once"):
        torch.autograd.grad(spikes.sum(), x, create_graph=True)


gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


@gpu
def test_reduce_overhead_training_step_matches_eager():
    """``mode="reduce-overhead"`` (CUDA graphs) replays a training step to eager's result."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    torch.manual_seed(0)
    model = SpikingNet(stateful=False).cuda()
    x = _inputs()

    def step(x):
        spikes = model(x)
        loss = spikes.float().mean()
        loss.backward()
        return loss.detach()

    expected = step(x)
    grads = [p.grad.clone() for p in model.parameters()]
    compiled = torch.compile(step, mode="reduce-overhead")
    for _ in range(4):  # warm-up, record, replays
        model.zero_grad(set_to_none=False)
        got = compiled(x)
    torch.testing.assert_close(got, expected)
    for p, g in zip(model.parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)


@gpu
@pytest.mark.parametrize("neuron", ["lif", "plif_channel"])
def test_channels_last_module_call_launches_only_tether_kernels(neuron):
    """No layout copy around the neuron: forward and backward of a module call on
    channels_last activations launch tether's kernels and, for learnable parameters, the
    one reduction of their gradients, and for PLIF the map of its learnable decay
    (``sigmoid(decay_logit)`` and its backward, C elements), nothing else. (Per-neuron
    parameters of a channels_last map are put in memory order: copies of parameter size,
    not activations.)"""
    c, h = 8, 6
    module = {
        "lif": lambda: tether.LIF(c * h * h),
        "plif_channel": lambda: tether.PLIF(c, per_channel=True),
    }[neuron]().cuda()
    x = torch.randn(4 * 3, c, h, h, device="cuda").to(memory_format=torch.channels_last)
    x = x.view(4, 3, c, h, h).requires_grad_()
    g = torch.randn_like(x)
    for _ in range(2):  # compile first
        module.reset()
        torch.autograd.grad(module(x), x, g)
    module.reset()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        torch.autograd.grad(module(x), x, g)  # no accumulation into x.grad
        torch.cuda.synchronize()
    kernels = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    ours = [k for k in kernels if "neuron_" in k]
    others = [k for k in kernels if "neuron_" not in k and "reduce" not in k.lower()]
    decay_map = [k for k in others if "sigmoid" in k]
    assert len(ours) == 2 and len(decay_map) == len(others) <= 2, kernels
    assert bool(decay_map) == (neuron == "plif_channel"), kernels


@pytest.mark.parametrize("op", ["lif", "alif"])
def test_the_compiled_benchmark_call_matches_tethers(device, op):
    """``tether-bench run --impls tether-ro`` compiles tether's call whole (``reduce-overhead``
    on a GPU; inductor without CUDA graphs here) and gets its spikes and gradient."""
    from tether.benchmark.providers import Problem, compiled_tether, tether_impl

    torch._dynamo.reset()
    problem = Problem.make(op, "fwdbwd", 9, 70, torch.float32, device)
    mode = "reduce-overhead" if device.type == "cuda" else "default"
    spikes, grad = compiled_tether(problem, mode)()
    expected_spikes, expected_grad = tether_impl(problem)()
    assert torch.equal(spikes, expected_spikes)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-6)
