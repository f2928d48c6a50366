"""Spikes saved in one bit by the layers that consume them.

``with tether.spike_memory(): loss = model(x)`` (or ``tether.spike_memory(model)`` once, for
every forward of ``model``): every spike tensor that a tether neuron produced in this
forward and that autograd saves for backward — by any op: linear, conv, matmul, pooling,
elementwise — is stored in 1 bit per element and unpacked when the backward needs it.
Built on ``torch.autograd.graph.saved_tensors_hooks``; gradients are bitwise those of the
run without it (spikes are exactly 0 or 1 in every dtype).

Identification. A neuron's training forward registers its spikes ``(T, *F)`` (dense, T
outermost) by their storage, with a weak reference, the version counter and the neuron's
packed bits. A saved tensor is treated as spikes when it lives in a registered storage
(the spikes themselves or any view: ``flatten(0, 1)``, ``reshape`` for the next layer,
``spikes[:, idx]``, a transpose), has the spikes' dtype and device, and the version
counter has not moved since the neuron wrote them. Anything else is saved as usual.

The bits. Where the neuron ran its Triton kernel, the 1-bit form is the one its forward
already wrote for its own backward ``(ceil(T / W), N)`` (no second packing pass), and a
Triton kernel (``tether/kernels/unpack.py``) unpacks it in the backward. Where the
neuron ran the eager reference (CPU without ``TRITON_INTERPRET``, float64), the spikes
are packed with torch ops, 8 per byte, when first saved. A save keeps the bits and the
view's size, strides and storage offset; never the spike tensor, which is freed once
nothing else holds it. The registry holds weak references only. The saves of one spike tensor
share one unpacked tensor while it lives (e.g. both operands of ``s[1] @ s[2].T``). A
node that reads the spikes for their layout only (max-pooling: ``SHAPE_ONLY_NODES``)
gets an unwritten tensor laid out as saved, without an unpack.

Behaviour:

- In-place modification of spikes (``spikes.mul_(2)``, ``spikes[0] = 0``, on the spikes or
  any view) moves the version counter: saves after it are stored as usual. A modification
  after a save raises in the backward, as autograd does without the mechanism (autograd
  skips its check under saved-tensor hooks: the hooks check every saved tensor's version
  themselves). Writes through ``.data`` bypass the counter, as they bypass autograd's own
  checks.
- ``torch.compile``: inactive inside compiled code. Spikes produced in a compiled graph are
  not registered (the graph saves what its partitioner picks, as usual), and
  ``spike_memory`` entered inside compiled code is a no-op, without a graph break. Hooks
  entered outside a compiled call apply, at run time, to what the compiled graph saves: a
  spike tensor produced eagerly and saved by a compiled layer is stored in 1 bit.
- CUDA graphs: the hooks run during capture; the replay runs the captured unpack kernels.
- DDP: unaffected (the hooks run in the forward's thread, gradients are unchanged).
- Only one pair of saved-tensor hooks is active at a time: inside ``spike_memory``, an
  enclosing ``save_on_cpu`` does not apply; a ``torch.utils.checkpoint`` region inside it
  uses checkpoint's hooks.
- tether's own Functions (neurons, ``tether.max_pool2d``) save without the hooks
  (``apply_unhooked``): nothing they save is spikes to pack but their input, which is
  then saved in full (a neuron fed another neuron's spikes).
"""

from __future__ import annotations

import functools
import math
import threading
import weakref
from dataclasses import dataclass

import torch
from torch import nn

from tether.kernels.unpack import UnpackPlan, launch_unpack, unpack_plan

__all__ = ["spike_memory"]

_LOCAL = threading.local()  # .depth: spike_memory contexts entered by this thread


def recording() -> bool:
    """Whether neurons should register their spikes (a ``spike_memory`` is active)."""
    return getattr(_LOCAL, "depth", 0) > 0


@dataclass(eq=False)
class _Bits:
    """The 1-bit form of one spike tensor of ``shape``/``stride`` (dense, T outermost):
    ``words (ceil(T / W), N)`` int8|int16|int32 from the neuron's kernel, or, packed here,
    ``(ceil(numel / 8),)`` uint8 over its memory order (``pack_bits`` 0). ``dense``: a weak
    reference to the storage of the last unpacked tensor, shared by every save of these
    spikes while an unpacked tensor lives (one unpack for, e.g., both operands of
    ``s[1] @ s[2].T``). Autograd's formulas never modify what they unpack; as without the
    hooks, the saves of one tensor see one tensor. ``plan``: the unpack kernel's launch
    (words from a kernel), looked up here once so that an unpack in the backward, where
    every microsecond of host time is the step's, is an allocation and a launch."""

    words: torch.Tensor
    pack_bits: int
    shape: torch.Size
    stride: tuple[int, ...]
    dtype: torch.dtype
    dense: weakref.ref | None = None
    plan: UnpackPlan | None = None

    def __post_init__(self) -> None:
        if self.pack_bits:
            n_neurons = math.prod(self.shape[1:])
            self.plan = unpack_plan(self.words, self.shape[0], n_neurons, self.dtype)

    def unpack(self) -> torch.Tensor:
        """The spike tensor: on the storage of a live earlier unpack, else a fresh one."""
        storage = None if self.dense is None else self.dense()
        if storage is not None:
            out = torch.empty(0, dtype=self.dtype, device=storage.device)
            return out.set_(storage, 0, self.shape, self.stride)
        out = self.unpack_fresh()
        # autograd keeps a shallow copy of what the hook returns: the storage is what lives
        self.dense = weakref.ref(out.untyped_storage())
        return out

    def empty(self) -> torch.Tensor:
        """An unwritten tensor laid out like the spikes."""
        return torch.empty_strided(
            self.shape, self.stride, dtype=self.dtype, device=self.words.device
        )

    def unpack_fresh(self) -> torch.Tensor:
        """The spike tensor, in a fresh allocation."""
        out = self.empty()
        if self.plan is not None:
            plan = self.plan
            flat = out.as_strided((plan.n_steps, plan.n_neurons), (plan.n_neurons, 1))
            launch_unpack(plan, self.words, flat)
        elif out.numel():
            bits = (self.words[:, None] >> _shifts(out.device)) & 1
            out.as_strided((out.numel(),), (1,)).copy_(bits.view(-1)[: out.numel()])
        return out


def _shifts(device: torch.device) -> torch.Tensor:
    return torch.arange(8, dtype=torch.uint8, device=device)


def _pack_bytes(flat: torch.Tensor) -> torch.Tensor:
    """``flat: (M,)`` zeros and ones as ``(ceil(M / 8),)`` uint8, element ``8i + k`` in bit k."""
    padded = torch.zeros(-(-flat.numel() // 8) * 8, dtype=torch.uint8, device=flat.device)
    padded[: flat.numel()] = flat != 0
    return (padded.view(-1, 8) << _shifts(flat.device)).sum(1, dtype=torch.uint8)


@dataclass(eq=False)
class _Entry:
    """A registered spike tensor: weak references to it, its bits and the neuron's words."""

    spikes: weakref.ref
    words: weakref.ref | None
    version: int
    dtype: torch.dtype
    device: torch.device
    nbytes: int
    shape: torch.Size
    stride: tuple[int, ...]
    bits: weakref.ref | None = None

    def get_bits(self, saved: torch.Tensor) -> _Bits:
        """The shared 1-bit form: the neuron's words, or the spikes packed from ``saved``
        (which lives in the spikes' storage) on the first save."""
        bits = None if self.bits is None else self.bits()
        if bits is None:
            words = None if self.words is None else self.words()
            if words is not None:
                pack_bits = words.element_size() * 8
            else:
                words, pack_bits = _pack_bytes(saved.as_strided((self.numel,), (1,), 0)), 0
            bits = _Bits(words, pack_bits, self.shape, self.stride, self.dtype)
            self.bits = weakref.ref(bits)
        return bits

    @property
    def numel(self) -> int:
        return self.shape.numel()


_REGISTRY: dict[int, _Entry] = {}  # by the address of the spikes' storage


def _forget(key: int, ref: weakref.ref) -> None:
    """Weak-reference callback: the spikes registered at ``key`` died (no reference cycle
    through the entry)."""
    entry = _REGISTRY.get(key)
    if entry is not None and entry.spikes is ref:
        del _REGISTRY[key]


def register_spikes(spikes: torch.Tensor, words: torch.Tensor | None) -> None:
    """Record ``spikes: (T, *F)`` (dense, T outermost, just written by a neuron) and, if the
    neuron's kernel wrote them, its packed ``words: (ceil(T / W), N)``."""
    storage = spikes.untyped_storage()
    key = storage.data_ptr()
    _REGISTRY[key] = _Entry(
        spikes=weakref.ref(spikes, functools.partial(_forget, key)),
        words=None if words is None else weakref.ref(words),
        version=spikes._version,
        dtype=spikes.dtype,
        device=spikes.device,
        nbytes=storage.nbytes(),
        shape=spikes.shape,
        stride=spikes.stride(),
    )


@dataclass(eq=False)
class _Saved:
    """What a save of spikes keeps: the bits, the saved tensor's view of them, and the
    registration (weak references only) with the version at the save."""

    bits: _Bits
    size: torch.Size
    stride: tuple[int, ...]
    offset: int
    entry: _Entry


def _modified(t: torch.Tensor, version: int) -> RuntimeError:
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: [{t.dtype}, {tuple(t.shape)}] is at version {t._version}; "
        f"expected version {version} instead (checked by tether.spike_memory, as autograd "
        "does without saved-tensor hooks)"
    )


# Autograd nodes that read a saved input for its size and strides only, never its values:
# max-pooling's backward scatters the gradient by the saved indices. Spikes such a node
# unpacks come back unwritten, laid out as saved: no unpack kernel, no launch (cifar_conv: 3
# of its 5 unpacks). ``test_shape_only_nodes_ignore_the_values`` checks PyTorch's side.
SHAPE_ONLY_NODES = frozenset({"MaxPool2DWithIndicesBackward0", "MaxPool3DWithIndicesBackward0"})


def _unpack(saved: object) -> torch.Tensor:
    if type(saved) is tuple:  # saved as usual
        t, version = saved
        if t._version != version:
            raise _modified(t, version)
        return t
    spikes = saved.entry.spikes()
    if spikes is not None and spikes._version != saved.entry.version:
        raise _modified(spikes, saved.entry.version)
    node = torch._C._current_autograd_node()
    if node is not None and node.name() in SHAPE_ONLY_NODES:
        dense = saved.bits.empty()
    else:
        dense = saved.bits.unpack()
    return dense.as_strided(saved.size, saved.stride, saved.offset)


def apply_unhooked(function: type[torch.autograd.Function], *args: object) -> object:
    """``function.apply(*args)``, with spike memory's hooks set aside when they are the
    active pair: for tether's own Functions (neurons, max-pooling), whose saves (inputs,
    packed spikes, checkpoints, parameters, pooling offsets) have no 1-bit form. Autograd
    saves them itself, with its own in-place check, and the step skips the two Python hook
    calls a save would cost (14 of the 43 saves of a tiny cifar_conv step). A neuron whose
    input is another neuron's spikes saves them in full."""
    if torch.compiler.is_compiling() or not recording():
        return function.apply(*args)  # compiled code: not traced into (no hooks there)
    autograd = torch._C._autograd
    top = autograd._top_saved_tensors_default_hooks(True)
    if top is None or top[1] is not _unpack:  # not spike memory's pair: a checkpoint's
        return function.apply(*args)
    autograd._pop_saved_tensors_default_hooks()
    try:
        return function.apply(*args)
    finally:
        autograd._push_saved_tensors_default_hooks(*top)


class spike_memory:
    """Store the spikes of tether neurons in 1 bit wherever autograd saves them (see the
    module docstring). ``with spike_memory(): loss = model(x)``, or ``spike_memory(model)``:
    every forward of ``model`` runs under it until ``remove()``. ``packed``: how many saves
    were stored in 1 bit (a check that it is active)."""

    def __init__(self, model: nn.Module | None = None) -> None:
        if model is not None and not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module or None, got {type(model).__name__}")
        self.packed = 0
        self._entered: list[torch.autograd.graph.saved_tensors_hooks | None] = []
        self._handles = []
        if model is not None:
            self._handles = [
                model.register_forward_pre_hook(self._before_forward),
                model.register_forward_hook(self._after_forward, always_call=True),
            ]

    def _pack(self, t: torch.Tensor) -> object:
        """The pack hook, run for every tensor autograd saves: spikes (a registered storage,
        unchanged, same dtype and device) as ``_Saved``, anything else as ``(t, version)``.
        Cheapest tests first: a save that is not spikes costs ~0.5 us on a CPU."""
        if _REGISTRY and type(t) is torch.Tensor and t.layout == torch.strided:
            storage = t.untyped_storage()  # parameters, fake, functional tensors: skipped
            entry = _REGISTRY.get(storage.data_ptr())
            if (
                entry is not None
                and t._version == entry.version
                and t.dtype == entry.dtype
                and t.device == entry.device
                and storage.nbytes() == entry.nbytes
                and entry.spikes() is not None
            ):
                self.packed += 1
                bits = entry.get_bits(t)
                return _Saved(bits, t.shape, t.stride(), t.storage_offset(), entry)
        return t, t._version  # saved as usual, with autograd's in-place check

    def __enter__(self) -> spike_memory:
        if torch.compiler.is_compiling():
            self._entered.append(None)  # inactive in compiled code (module docstring)
            return self
        hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, _unpack)
        hooks.__enter__()
        _LOCAL.depth = getattr(_LOCAL, "depth", 0) + 1
        self._entered.append(hooks)
        return self

    def __exit__(self, *exc: object) -> None:
        hooks = self._entered.pop()
        if hooks is not None:
            _LOCAL.depth -= 1
            hooks.__exit__(*exc)

    def _before_forward(self, module: nn.Module, args: tuple) -> None:
        self.__enter__()

    def _after_forward(self, module: nn.Module, args: tuple, out: object) -> None:
        self.__exit__(None, None, None)

    def remove(self) -> None:
        """Detach from the model given to the constructor."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
