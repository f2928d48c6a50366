"""Host-side launch path: the compiled-kernel cache, no saving under no_grad, the untuned
switch. (The cached launch itself runs on the GPU, where every kernel test goes through it.)"""

import pytest
import torch

from tether.functional import ops, plans
from tether.functional.alif import ALIFSubFunction
from tether.functional.lif import LIFSubFunction
from tether.functional.plif import PLIFSubFunction
from tether.kernels import launch
from tether.tuning import table
from tether.tuning.space import KernelConfig, default_config, training_forward_config


class FakeKernel:
    """Records launches through ``kernel[grid]`` and through the compiled binary."""

    arg_names = ["x_ptr", "n", "scale", "BLOCK", "FLAG"]

    def __init__(self):
        self.jit_calls, self.binary_calls = [], []

    def __getitem__(self, grid):
        def run(*args, **kwargs):
            self.jit_calls.append((grid, args, kwargs))
            compiled = self.Compiled()
            compiled.owner = self
            return compiled

        return run

    class Compiled:
        def __getitem__(self, grid):
            return lambda *args: self.owner.binary_calls.append((grid, args))


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(launch, "INTERPRET", False)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    kernel = FakeKernel()
    return kernel, launch.Launcher(kernel)


def test_launcher_compiles_once_per_specialization(fake):
    kernel, launcher = fake
    x = torch.zeros(64)
    constexprs = {"BLOCK": 128, "FLAG": True}
    launcher((4, 1, 1), (x, 64, 0.5), constexprs, 4, 1)
    launcher((5, 1, 1), (x, 32, 0.25), constexprs, 4, 1)  # same classes: the cached binary
    assert len(kernel.jit_calls) == 1
    assert kernel.binary_calls == [((5, 1, 1), (x, 32, 0.25, 128, True))]
    # Each of these differs in something Triton specializes on: a new jit launch.
    launcher((5, 1, 1), (x[1:], 32, 0.25), constexprs, 4, 1)  # pointer not 16-byte aligned
    launcher((5, 1, 1), (x, 33, 0.25), constexprs, 4, 1)  # int not divisible by 16
    launcher((5, 1, 1), (x, 1, 0.25), constexprs, 4, 1)  # int equal to 1
    launcher((5, 1, 1), (x.double(), 32, 0.25), constexprs, 4, 1)  # dtype
    launcher((5, 1, 1), (x, 32, 0.25), {"BLOCK": 256, "FLAG": True}, 4, 1)  # constexpr
    launcher((5, 1, 1), (x, 32, 0.25), constexprs, 8, 1)  # num_warps
    assert len(kernel.jit_calls) == 7
    assert len(kernel.binary_calls) == 1


def test_launcher_switches_to_the_tensors_device(fake, monkeypatch):
    """Tensors on cuda:1 while cuda:0 is current: launched inside ``torch.cuda.device``."""
    kernel, launcher = fake
    current = [0]
    entered = []

    class FakeDevice:
        def __init__(self, device):
            self.index = device.index

        def __enter__(self):
            entered.append(self.index)
            current[0], self.previous = self.index, current[0]

        def __exit__(self, *exc):
            current[0] = self.previous

    class OnSecondGPU:
        device = torch.device("cuda", 1)

    monkeypatch.setattr(torch.cuda, "current_device", lambda: current[0])
    monkeypatch.setattr(torch.cuda, "device", FakeDevice)
    launcher((1, 1, 1), (OnSecondGPU(), 4, 1.0), {"BLOCK": 128, "FLAG": True}, 4, 1)
    assert entered == [1] and current == [0] and len(kernel.jit_calls) == 1


def test_launcher_rejects_constexprs_out_of_signature_order(fake):
    _, launcher = fake
    with pytest.raises(ValueError, match="signature order"):
        launcher((1, 1, 1), (torch.zeros(4), 4, 1.0), {"FLAG": True, "BLOCK": 128}, 4, 1)


def test_no_grad_forward_saves_nothing(device, monkeypatch):
    """Inputs that require grad under no_grad: no spike words or checkpoints are written."""
    saves = []
    original = ops.allocate_forward

    def spy(*args, **kwargs):
        saves.append(args[3])  # save_for_backward
        return original(*args, **kwargs)

    monkeypatch.setattr(ops, "allocate_forward", spy)
    x = torch.randn(5, 64, device=device, requires_grad=True)
    with torch.no_grad():
        spikes, _, _ = LIFSubFunction.apply(x, None, 0.9, 1.0)
    assert saves == [False] and spikes.grad_fn is None
    LIFSubFunction.apply(x, None, 0.9, 1.0)
    assert saves == [False, True]


def _checkpoint_rows(spikes: torch.Tensor, n_neurons: int) -> int:
    """How many float32 (1, N) tensors (single-row checkpoints) the graph of ``spikes`` saves."""
    saved = spikes.grad_fn.saved_tensors
    return sum(
        t is not None and t.dtype == torch.float32 and t.shape == (1, n_neurons) for t in saved
    )


@pytest.mark.parametrize("n_steps", [4, 40])
def test_a_zero_initial_state_is_not_saved(device, n_steps):
    """With T <= chunk and no v_init/a_init the checkpoints are one row of zeros: not kept
    (the backward kernel starts that state at zero), with gradients bitwise those of
    explicit zero states."""
    n = 64
    chunk = table.select_training_configs("alif", torch.float32, n_steps, n, device)[1].chunk
    x = torch.randn(n_steps, n, device=device, requires_grad=True)
    params = (0.9, 0.8, 1.0, 0.5)  # decay_v, decay_a, threshold, beta
    grads = {}
    for init in ("none", "v_init", "both"):
        states = [torch.zeros(n, device=device) if init != "none" else None,
                  torch.zeros(n, device=device) if init == "both" else None]  # fmt: skip
        spikes, *_ = ALIFSubFunction.apply(x, *states, *params)
        single_chunk = n_steps <= chunk
        dropped = {"none": 2, "v_init": 1, "both": 0}[init] if single_chunk else 0
        rows = _checkpoint_rows(spikes, n)
        assert rows == (2 - dropped if single_chunk else 0), (init, chunk, rows)
        grads[init] = torch.autograd.grad((spikes * torch.arange(n, device=device)).sum(), x)[0]
    assert grads["none"].abs().sum() > 0
    assert torch.equal(grads["none"], grads["both"]) and torch.equal(grads["v_init"], grads["both"])


@pytest.fixture
def empty_caches():
    caches = (table._BY_BUCKET, ops._PLANS)
    saved = [dict(c) for c in caches]
    for c in caches:
        c.clear()
    yield
    for c, old in zip(caches, saved):
        c.clear()
        c.update(old)


def test_untuned_block_runs_the_default(monkeypatch, empty_caches):
    tuned = KernelConfig(256, 2, 1, 4, 8)
    monkeypatch.setattr(table, "_choose", lambda *args: (tuned, True))
    cpu = torch.device("cpu")
    default_bwd = default_config("bwd", torch.float32, "lif", 7)  # no GPU: no fill_gpu
    assert table.select_config("lif", "bwd", torch.float32, 7, 100, cpu) == tuned
    with table.untuned():
        assert table.select_config("lif", "bwd", torch.float32, 7, 100, cpu) == default_bwd
        fwd, bwd = table.select_training_configs("lif", torch.float32, 7, 100, cpu)
        assert bwd == default_bwd and (fwd.chunk, fwd.pack_bits) == (bwd.chunk, bwd.pack_bits)
    fwd, bwd = table.select_training_configs("lif", torch.float32, 7, 100, cpu)
    assert bwd == tuned and (fwd.chunk, fwd.pack_bits) == (tuned.chunk, tuned.pack_bits)
    # the training forward runs the launch shape the tuner paired with each backward config
    assert fwd == training_forward_config(tuned)


def test_shared_binaries_that_differ_in_specialization_raise(fake, monkeypatch):
    kernel, launcher = fake
    monkeypatch.setattr(launch.Launcher, "check_keys", True)
    x = torch.zeros(64)
    constexprs = {"BLOCK": 128, "FLAG": True}
    binaries = {}
    launcher((4, 1, 1), (x, 64, 0.5), constexprs, 4, 1, binaries)
    launcher((4, 1, 1), (x, 32, 0.5), constexprs, 4, 1, binaries)  # same classes: fine
    with pytest.raises(RuntimeError, match="differ in specialization"):
        launcher((4, 1, 1), (x[1:], 32, 0.5), constexprs, 4, 1, binaries)  # unaligned: not the same


def test_shared_binaries_skip_the_classes(fake, monkeypatch):
    kernel, launcher = fake
    monkeypatch.setattr(launch.Launcher, "check_keys", False)  # the suite turns checks on
    calls = []
    monkeypatch.setattr(launch, "arg_class", lambda arg: calls.append(arg) or type(arg))
    constexprs = {"BLOCK": 128, "FLAG": True}
    binaries = {}
    launcher((4, 1, 1), (torch.zeros(8), 8, 0.5), constexprs, 4, 1, binaries)
    launcher((4, 1, 1), (torch.zeros(8), 8, 0.5), constexprs, 4, 1, binaries)
    assert len(calls) == 3 and len(kernel.jit_calls) == 1 and len(kernel.binary_calls) == 1
    assert list(binaries) == [0]  # by device


def _varied_calls(device):
    """Forward and backward calls that differ in what a binary is specialized on: dtype,
    alignment (views at an odd offset), scalar / one-element / vector parameters, initial
    states, traces, which gradients flow."""
    n = 64
    base = torch.randn(9 * n + 1, device=device)
    aligned, unaligned = base[: 8 * n].view(8, n), base[1 : 8 * n + 1].view(8, n)
    vec = torch.rand(n + 1, device=device)
    for x in (aligned, unaligned, aligned.bfloat16(), aligned[:, :48]):
        width = x.shape[1]
        for decay in (0.9, torch.tensor([0.9], device=device), vec[:width], vec[1 : width + 1]):
            for grad in (False, True):
                leaf = x.detach().clone().requires_grad_(grad) if grad else x
                v_init = torch.zeros(width, device=device)
                yield LIFSubFunction, (leaf, None, decay, 1.0)
                yield PLIFSubFunction, (leaf, v_init, decay, vec[:width], 2.0, 1)
                yield ALIFSubFunction, (leaf, None, v_init, decay, 0.8, 1.0, 0.2)


def test_plan_keys_stand_for_one_specialization_each(fake, monkeypatch, empty_caches):
    """Every autograd-path launch goes through a cached plan that keeps its binary; with
    ``check_keys`` the launcher computes the argument classes anyway and raises if one plan
    covered two specializations. The kernels are fakes: this checks the host-side keys."""
    monkeypatch.setattr(launch.Launcher, "check_keys", True)
    monkeypatch.setattr(ops, "uses_kernels", lambda x: True)
    launchers = {}
    for name in ("_launch_fwd", "_launch_bwd"):
        fake_kernel = FakeKernel()
        real = getattr(plans, name).kernel
        fake_kernel.arg_names, fake_kernel.fn = real.arg_names, real.fn
        launchers[name] = launch.Launcher(fake_kernel)
        monkeypatch.setattr(plans, name, launchers[name])
    cpu = torch.device("cpu")
    for function, args in _varied_calls(cpu):
        for _ in range(2):  # a forward's second backward: the spikes-only plan (``ops``)
            outputs = [t for t in function.apply(*args) if t is not None and t.requires_grad]
            if outputs:
                torch.autograd.backward(outputs[0], torch.ones_like(outputs[0]))
    counts = {"fwd": 0, "bwd": 0, ops.SPIKES_ONLY: 0}
    general = [plan for key, plan in ops._PLANS.items() if key[0] == "bwd"]
    for key, plan in ops._PLANS.items():
        counts[key[0]] += 1
        assert list(plan.binaries) == [0]  # each plan was launched and kept its binary
        if key[0] == ops.SPIKES_ONLY:  # the general plan of the same calls, by another key
            assert any(plan is other for other in general)
    for direction, name in (("fwd", "_launch_fwd"), ("bwd", "_launch_bwd")):
        assert counts[direction] >= len(launchers[name].compiled) > 4
    assert counts[ops.SPIKES_ONLY] > 4


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_second_gpu_while_the_first_is_current():
    """Training on cuda:1 while cuda:0 is current gives cuda:0's spikes and gradients (the
    launcher must switch devices: Triton launches on the current one)."""
    torch.manual_seed(0)
    x0 = torch.randn(24, 4000, device="cuda:0") * 0.8 + 0.4
    decay0 = torch.rand(4000, device="cuda:0") * 0.1 + 0.85
    results = []
    with torch.cuda.device(0):
        for device in ("cuda:0", "cuda:1"):
            x = x0.to(device, copy=True).requires_grad_()  # a leaf on each device
            decay = decay0.to(device, copy=True).requires_grad_()
            spikes, v_final, _ = PLIFSubFunction.apply(x, None, decay, 1.0, 2.0, 0)
            (spikes.sum() + v_final.sum()).backward()
            assert spikes.device == torch.device(device)
            results.append([t.to("cuda:0") for t in (spikes, v_final, x.grad, decay.grad)])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_even_and_ragged_step_counts_take_both_forward_paths(device, monkeypatch):
    """T a multiple of CHUNK runs the forward without per-step bounds (EVEN_STEPS), any
    other T with them; test_sequence_lengths checks both against the reference, this that
    both are taken."""
    monkeypatch.setattr(ops, "_PLANS", {})
    for n_steps in (32, 33):
        x = torch.randn(n_steps, 300, device=device)
        with torch.no_grad():
            LIFSubFunction.call(x, None, 0.9, 1.0, 2.0)
    flags = {plan.constexprs["EVEN_STEPS"] for key, plan in ops._PLANS.items() if key[0] == "fwd"}
    assert flags == {True, False}


@pytest.mark.parametrize("op", ["lif", "plif", "alif"])
def test_spikes_only_backward_is_the_general_one(op, device, empty_caches, monkeypatch):
    """A backward of the spikes' gradient alone, laid out like x, runs the plan looked up by
    the forward's key (``ops.neuron_backward``): the general path's gradients, bitwise, with
    learned parameters; a gradient in another layout, or of v_final too, takes the general
    path."""
    torch.manual_seed(0)
    x0 = torch.randn(9, 3, 4, 5, 6, device=device) * 0.8 + 0.5  # (T, B, C, H, W)
    x0 = x0.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)  # channels_last
    g0 = torch.randn_like(x0)  # x's strides
    decay0 = torch.rand(4 * 5 * 6 * 3, device=device) * 0.2 + 0.7
    built = []
    general_plan = ops._backward_plan
    monkeypatch.setattr(ops, "_backward_plan", lambda *a: built.append(1) or general_plan(*a))

    def grads(grad_spikes: torch.Tensor, with_state: bool = False) -> tuple[torch.Tensor, ...]:
        x = x0.detach().clone().requires_grad_()
        decay = decay0.clone().requires_grad_()
        if op == "lif":
            spikes, v_final, *_ = LIFSubFunction.apply(x, None, 0.8, 1.0)
        elif op == "plif":
            spikes, v_final, *_ = PLIFSubFunction.apply(x, None, decay, 1.0, 2.0, 0)
        else:
            spikes, v_final, *_ = ALIFSubFunction.apply(x, None, None, decay, 0.9, 1.0, 0.2)
        leaves = [x] if op == "lif" else [x, decay]
        outputs, grad_outputs = [spikes], [grad_spikes]
        if with_state:
            outputs, grad_outputs = [spikes, v_final], [grad_spikes, torch.ones_like(v_final)]
        return torch.autograd.grad(outputs, leaves, grad_outputs)

    def same(mine: tuple, theirs: tuple) -> None:
        for a, b in zip(mine, theirs, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)

    general = grads(g0)
    assert len(built) == 1
    same(grads(g0), general)  # the forward's key finds the plan: none built
    assert len(built) == 1 and any(key[0] == ops.SPIKES_ONLY for key in ops._PLANS)
    other_layout = grads(g0.contiguous())  # copied into x's layout: the general path
    with_state = grads(g0, with_state=True)
    assert len(built) == 3
    monkeypatch.setattr(ops, "_spikes_only", lambda grads, x: False)
    ops._PLANS.clear()
    same(grads(g0), general)
    same(grads(g0.contiguous()), other_layout)
    same(grads(g0, with_state=True), with_state)


def test_a_retained_graph_backs_up_twice_through_the_spikes_only_plan(
    device, empty_caches, monkeypatch
):
    """``retain_graph=True``: the second backward of one forward runs the plan the first
    stored (``ops.SPIKES_ONLY``) on the same saved tensors, with the same gradients."""
    built = []
    general_plan = ops._backward_plan
    monkeypatch.setattr(ops, "_backward_plan", lambda *a: built.append(1) or general_plan(*a))
    torch.manual_seed(0)
    x = (torch.randn(12, 300, device=device) + 0.5).requires_grad_()
    decay = torch.full((300,), 0.8, device=device, requires_grad=True)
    spikes = PLIFSubFunction.apply(x, None, decay, 1.0, 2.0, 0)[0]
    g = torch.randn_like(spikes)
    first = torch.autograd.grad(spikes, [x, decay], g, retain_graph=True)
    assert any(key[0] == ops.SPIKES_ONLY for key in ops._PLANS)
    second = torch.autograd.grad(spikes, [x, decay], g)
    assert len(built) == 1
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


class _StaticLauncher:
    """Records ``torch._C._StaticCudaLauncher._launch_kernel`` calls."""

    calls: list = []

    @staticmethod
    def _launch_kernel(*args):
        _StaticLauncher.calls.append(args)


def _fake_binary(signature: dict, constants: dict, **meta):
    from types import SimpleNamespace

    fn = SimpleNamespace(arg_names=list(signature))
    metadata = dict(num_warps=4, shared=64, num_ctas=1, global_scratch_size=0)
    metadata.update(profile_scratch_size=0, **meta)
    src = SimpleNamespace(fn=fn, signature=signature, constants=constants)
    return SimpleNamespace(metadata=SimpleNamespace(**metadata), src=src, function=77)


@pytest.fixture
def static_launcher(monkeypatch):
    _StaticLauncher.calls = []
    monkeypatch.setattr(torch._C, "_StaticCudaLauncher", _StaticLauncher, raising=False)
    monkeypatch.setattr(torch._C, "_cuda_getCurrentRawStream", lambda d: 1000 + d, raising=False)
    return _StaticLauncher.calls


SIGNATURE = {"x_ptr": "*fp32", "y_ptr": "constexpr", "n": "i32", "one": "i32", "big": "i64",
             "scale": "fp32", "BLOCK": "constexpr"}  # fmt: skip


def test_direct_launch_passes_what_the_binary_takes(static_launcher):
    """Arguments Triton made constants (a None pointer: "constexpr" in the signature; an int
    equal to 1: in ``constants``) are dropped; the null scratch pointers are appended; the
    stream is the binary's device's current one."""
    binary = _fake_binary(SIGNATURE, {(1,): None, (3,): 1, (6,): 128})
    run = launch.direct_launch(binary, 6, 2)
    x = torch.zeros(4)
    run((3, 2, 1), (x, None, 64, 1, 2**40, 0.5))
    expected = (77, 3, 2, 1, 4, 64, "OilfOO", (x, 64, 2**40, 0.5, None, None), 1002)
    assert static_launcher == [expected]


@pytest.mark.parametrize(
    "change",
    [{"global_scratch_size": 128}, {"num_ctas": 2}, {"cluster_dims": (2, 1, 1)},
     {"launch_pdl": True}, {"signature": "nvTmaDesc"}, {"signature": "fp16"},
     {"no_launcher": True}],
)  # fmt: skip
def test_direct_launch_declines_what_it_cannot_launch(static_launcher, monkeypatch, change):
    change = dict(change)
    signature = dict(SIGNATURE)
    kind = change.pop("signature", None)
    if kind:
        signature["scale"] = kind
    if change.pop("no_launcher", None):
        monkeypatch.delattr(torch._C, "_StaticCudaLauncher")
    binary = _fake_binary(signature, {}, **change)
    assert launch.direct_launch(binary, 6, 0) is None


def test_direct_launch_declines_with_launch_hooks(static_launcher, monkeypatch):
    import triton

    binary = _fake_binary(SIGNATURE, {})
    assert launch.direct_launch(binary, 6, 0) is not None
    hook = triton.knobs.runtime.launch_enter_hook
    if hasattr(hook, "add"):  # a HookChain (Triton >= 3.5)
        monkeypatch.setattr(hook, "calls", [lambda *args: None])
    else:
        monkeypatch.setattr(triton.knobs.runtime, "launch_enter_hook", lambda *args: None)
    assert launch.direct_launch(binary, 6, 0) is None


def test_launcher_uses_the_direct_launch_after_the_first_call(fake, static_launcher, monkeypatch):
    """The first call of a specialization runs ``kernel[grid]``; later ones the static
    launcher, unless ``Launcher.direct`` is off."""
    kernel, launcher = fake
    signature = {"x_ptr": "*fp32", "n": "i32", "scale": "fp32", "BLOCK": "constexpr",
                 "FLAG": "constexpr"}  # fmt: skip
    kernel.Compiled = lambda: _fake_binary(signature, {})
    x = torch.zeros(64)
    constexprs = {"BLOCK": 128, "FLAG": True}
    for _ in range(2):
        launcher((4, 1, 1), (x, 64, 0.5), constexprs, 4, 1)
    assert len(kernel.jit_calls) == 1 and len(static_launcher) == 1
    assert static_launcher[0][-2] == (x, 64, 0.5, None, None)
    monkeypatch.setattr(launch.Launcher, "direct", False)
    launcher((4, 1, 1), (x, 64, 0.5), constexprs, 4, 1)  # a new key: Triton's launch
    assert len(kernel.jit_calls) == 2 and len(static_launcher) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="binaries exist on a GPU only")
def test_direct_launches_equal_tritons(monkeypatch, empty_caches):
    """On the GPU the neuron binaries go through the static launcher, with the results of
    Triton's own launch (bitwise)."""
    results = []
    for direct in (True, False):
        monkeypatch.setattr(launch.Launcher, "direct", direct)
        ops._PLANS.clear()  # a plan keeps the launch of its first call
        torch.manual_seed(0)
        x = torch.randn(12, 3, 40, device="cuda", requires_grad=True)
        decay = torch.full((120,), 0.8, device="cuda", requires_grad=True)
        outs = []
        for _ in range(2):  # the second call launches the cached binaries
            spikes, v, _ = PLIFSubFunction.apply(x, None, decay, 1.0, 2.0, 0, True, False, True)
            grads = torch.autograd.grad((spikes * 2 + v.sum()).sum(), [x, decay])
            outs.append([spikes, v, *grads])
        results.append(outs)
        runs = [run.__qualname__ for run in plans._launch_fwd.compiled.values()]
        assert any(("direct_launch" in name) == direct for name in runs)
    for mine, theirs in zip(results[0], results[1]):
        for a, b in zip(mine, theirs):
            assert torch.equal(a, b)
