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
nothing else holds it. The registry holds weak references only.

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
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import torch
from torch import nn

from tether.kernels.unpack import unpack_spikes

__all__ = ["spike_memory"]

_LOCAL = threading.local()  # .depth: spike_memory contexts entered by this thread


def recording() -> bool:
    """Whether neurons should register their spikes (a ``spike_memory`` is active)."""
    return getattr(_LOCAL, "depth", 0) > 0


@dataclass(eq=False)
class _Bits:
    """The 1-bit form of one spike tensor of ``shape``/``stride`` (dense, T outermost):
    ``words (ceil(T / W), N)`` int8|int16|int32 from the neuron's kernel, or, packed here,
    ``(ceil(numel / 8),)`` uint8 over its memory order (``pack_bits`` 0)."""

    words: torch.Tensor
    pack_bits: int
    shape: torch.Size
    stride: tuple[int, ...]
    dtype: torch.dtype

    def unpack(self) -> torch.Tensor:
        """The spike tensor, in a fresh allocation."""
        out = torch.empty_strided(
            self.shape, self.stride, dtype=self.dtype, device=self.words.device
        )
        flat = out.as_strided((out.numel(),), (1,))
        if out.numel() == 0:
            return out
        if self.pack_bits:
            unpack_spikes(self.words, flat.view(self.shape[0], -1))
        else:
            bits = (self.words[:, None] >> _shifts(out.device)) & 1
            flat.copy_(bits.view(-1)[: out.numel()])
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


def register_spikes(spikes: torch.Tensor, words: torch.Tensor | None) -> None:
    """Record ``spikes: (T, *F)`` (dense, T outermost, just written by a neuron) and, if the
    neuron's kernel wrote them, its packed ``words: (ceil(T / W), N)``."""
    key = spikes.untyped_storage().data_ptr()

    def forget(_: weakref.ref) -> None:
        if _REGISTRY.get(key) is entry:
            del _REGISTRY[key]

    entry = _Entry(
        spikes=weakref.ref(spikes, forget),
        words=None if words is None else weakref.ref(words),
        version=spikes._version,
        dtype=spikes.dtype,
        device=spikes.device,
        nbytes=spikes.untyped_storage().nbytes(),
        shape=spikes.shape,
        stride=spikes.stride(),
    )
    _REGISTRY[key] = entry


@dataclass(eq=False)
class _Saved:
    """What a save of spikes keeps: the bits, the saved tensor's view of them, and the
    registration (weak references only) with the version at the save."""

    bits: _Bits
    size: torch.Size
    stride: tuple[int, ...]
    offset: int
    entry: _Entry


def _entry_of(t: torch.Tensor) -> _Entry | None:
    """The registered spikes that ``t`` views unchanged, or None."""
    if type(t) is not torch.Tensor or t.layout != torch.strided:
        return None  # parameters, fake and functional tensors, subclasses: as usual
    storage = t.untyped_storage()
    entry = _REGISTRY.get(storage.data_ptr())
    if (
        entry is None
        or entry.spikes() is None
        or t._version != entry.version
        or t.dtype != entry.dtype
        or t.device != entry.device
        or storage.nbytes() != entry.nbytes
    ):
        return None
    return entry


def _modified(t: torch.Tensor, version: int) -> RuntimeError:
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: [{t.dtype}, {tuple(t.shape)}] is at version {t._version}; "
        f"expected version {version} instead (checked by tether.spike_memory, as autograd "
        "does without saved-tensor hooks)"
    )


def _unpack(saved: object) -> torch.Tensor:
    if isinstance(saved, _Saved):
        spikes = saved.entry.spikes()
        if spikes is not None and spikes._version != saved.entry.version:
            raise _modified(spikes, saved.entry.version)
        return saved.bits.unpack().as_strided(saved.size, saved.stride, saved.offset)
    t, version = saved
    if t._version != version:
        raise _modified(t, version)
    return t


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
        entry = _entry_of(t) if _REGISTRY else None
        if entry is None:
            return t, t._version  # saved as usual, with autograd's in-place check
        self.packed += 1
        return _Saved(entry.get_bits(t), t.shape, t.stride(), t.storage_offset(), entry)

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
