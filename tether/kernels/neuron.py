"""One Triton template per direction for every neuron: LIF, PLIF and ALIF.

Constexpr switches compile away what a neuron does not use: ``ADAPTIVE`` (ALIF's threshold
state ``a``), ``SOFT_RESET``, ``DETACH_RESET``, ``SURROGATE`` and, per parameter,
``*_IS_TENSOR`` (a pointer read at ``(n // group_size) % n_params``, stride 0 for a
one-element tensor) versus a plain float argument. The equations are those of
``tether/reference.py``.

Layout: sequences are ``(T, N)`` row-major, so step ``t`` of neuron ``n`` is at ``t*N + n``
(computed in int64). Each program owns ``BLOCK`` neurons and walks time in chunks of
``CHUNK`` steps: a chunk of input is loaded as one ``(CHUNK, BLOCK)`` tile so that ``CHUNK``
loads are in flight, and a step's row is taken from the tile with a constant-index select
(free when a thread holds whole columns of the tile: ``BLOCK >= 32*num_warps*vector width``).

Bytes per element (fp32; ``W = PACK_BITS``, ``K = CHUNK``):

- forward, inference: read x (4), write spikes (4) = 8.
- forward, training: + packed spikes (1/8 = 4/32) + a float32 checkpoint of ``v``
  (and ``a``) at the start of every chunk (4/K each).
- backward: read x (4), grad_spikes (4), packed spikes (1/8), checkpoints (4/K);
  write grad_x (4). The membrane is recomputed from the checkpoint and x, not saved.
  Learned parameters: each one's gradient summed over time, one float32 a neuron (4/T,
  read back by the reduction over neurons: 8/T in all, 2 bytes an element per parameter
  at T=4), or with ``PROGRAM_SUMS``, where runs (or residues) of a program's neurons share
  an entry of every parameter, summed over the run too: ``PROGRAM_SUMS`` float32 a program
  (one-entry parameters: 1; per channel of a contiguous input, runs of H*W; channels_last,
  residues mod C where C divides BLOCK).

Latency (long T, few neurons: the bytes are not the bound). A program walks ``T/K`` chunks
one after another. Loading a chunk costs one memory latency ``L`` (~0.6-1 us on an H100
under load) whatever its size; its ``K`` steps then run a serial chain of ``s`` per step
(forward: multiply-add, compare, two selects, ~10-20 ns; backward: the recompute plus the
reverse step with the surrogate, ``s_b`` ~30-50 ns per step). Stores do not wait. Per
program, without ``PREFETCH``::

    time ~ (T/K) * (L + K*s)            = T*s + (T/K)*L

With ``PREFETCH`` the loads of the next chunk are issued before the current one computes, so
a chunk costs whichever is longer::

    time ~ (T/K) * max(L, K*s) + L

Prefetching one chunk ahead hides the compute under the latency (or the latency under the
compute once ``K*s >= L``), never more: a chunk needs ``K >= L/s`` (~50 forward, ~20
backward steps) to keep the chain busy. The grid must also cover the GPU (``N/BLOCK >=``
132 programs on an H100), else the time is that of one SM's programs run in turn.

At T=512, N=8192 (fp32, L = 0.8 us, s = 15 ns, s + s_b = 50 ns), with a block of 64 (128
programs): forward K=8: 59 us without prefetch, 51 us with; K=32: 21 us, 13 us (the bytes
floor of 8 B/element at 3 TB/s is 11 us). Backward K=8: 77 us / 51 us; K=16: 51 us / 26 us
(= T*(s + s_b), the chain). Measured before this model, with 1024- and 512-neuron blocks (8
and 16 programs): training forward 197 us, backward 104 us.

Segments (backward, ``SPLIT``). With N/BLOCK programs, fewer than a warp a scheduler, the
chain of T steps is the time whatever the loads. The reverse step is affine in the adjoints
``(grad_v, grad_a)`` it carries, with coefficients from the forward alone (``_adjoint``), so
a segment of steps maps the adjoints at its end to those at its start by ``M @ g + K``
(1x1 or 2x2). Cutting T into S segments: launch 1 runs each segment (but the first) from the
checkpoints with zero adjoints (K) and carries the tangents of M beside them, storing
nothing else; launch 2 starts each segment from the maps of the later ones
(``_segment_carry``) and runs it as the whole walk does. Both launches have S times the
programs, each a chain of T/S steps: time ~ 2*(T/S)*(s + s_b) + L while the GPU's warps
last, for twice the backward's reads (the bytes matter only at large N). Learned
parameters: each segment writes its own sums; with ``SUM_SEGMENTS`` the segment of a neuron
that finishes last (a count a neuron in a row after the maps, zeroed by launch 1, taken with
acquire-release atomics) adds them up, every row's segments loaded at once (all rows before
any store: a store between rows made one round trip a row) and summed in a fixed order, into
segment 0's row: no reduction kernel after the backward (one of four kernels of ALIF's call
at 512x8192).

Lean levels (``LEAN``: the same arithmetic on the state, fewer instructions a step). 1: tile
offsets computed once (``rows * N + n``), the forward's output pointers advanced a step at a
time, a tile's row and a spike's bit taken by selects of constants. 2 (the backward; with
``PREFETCH`` the forward too): the surrogate's reciprocals as ``rsqrt(x)**2`` (relative
error under 3e-7: ``rsqrt.approx`` twice plus a rounding), the spike word shifted once a
chunk, no per-step bounds checks in the backward when ``T % CHUNK == 0`` (``EVEN_STEPS``;
the forward's at every level) and, with ``PREFETCH``, two chunks an iteration so that the
tiles in flight alternate between two register sets instead of being copied each iteration.
"""

import triton
import triton.language as tl

PI = tl.constexpr(3.141592653589793)


@triton.jit
def _param(value, index, stride, IS_TENSOR: tl.constexpr):
    """A parameter per neuron: ``value[index * stride]`` if a tensor, else the float itself."""
    if IS_TENSOR:
        out = tl.load(value + index * stride).to(tl.float32)
    else:
        out = value
    return out


@triton.jit
def _load_tile(
    ptr, t0, rows, n, n_mask, n_steps, n_neurons, tile_offsets, BOUNDED: tl.constexpr,
    LEAN: tl.constexpr,
):  # fmt: skip
    """Steps ``t0 + rows`` of neurons ``n`` of a ``(T, N)`` sequence as a ``(CHUNK, BLOCK)``
    float32 tile, 0 where ``n_mask`` is off or, if ``BOUNDED``, where the step is past T.
    ``LEAN``: offsets from the loop-invariant ``tile_offsets`` (``rows * N + n``) plus one
    scalar, not a 64-bit multiply per row."""
    if LEAN:
        offsets = tl.cast(t0, tl.int64) * n_neurons + tile_offsets
    else:
        offsets = (t0 + rows).to(tl.int64) * n_neurons + n[None, :]
    if BOUNDED:
        mask = (t0 + rows < n_steps) & n_mask[None, :]
    else:
        mask = n_mask[None, :]
    return tl.load(ptr + offsets, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _bwd_loads(
    chunk,
    x_ptr,
    grad_spikes_ptr,
    grad_h_ptr,
    grad_a_seq_ptr,
    packed_ptr,
    ckpt_v_ptr,
    ckpt_a_ptr,
    rows,
    n,
    n_mask,
    n_steps,
    n_neurons,
    tile_offsets,
    HAS_GRAD_SPIKES: tl.constexpr,
    HAS_GRAD_H: tl.constexpr,
    HAS_GRAD_A_SEQ: tl.constexpr,
    ADAPTIVE: tl.constexpr,
    CHUNK: tl.constexpr,
    PACK_BITS: tl.constexpr,
    LEAN: tl.constexpr,
    V_STARTS_AT_ZERO: tl.constexpr,
    A_STARTS_AT_ZERO: tl.constexpr,
):
    """What the backward reads of one chunk, for the neurons in ``n_mask``: the ``(CHUNK,
    BLOCK)`` tiles of x, grad_spikes, grad_h and grad_a_seq (float32), the packed word that
    holds the chunk's spikes (int32) with the chunk's first bit in it, and the checkpoints of
    v and a (``(BLOCK,)`` float32; zeros for a state that ``*_STARTS_AT_ZERO``, read from
    nothing). A tile or checkpoint the switches leave out is x's or v's (never read)."""
    t0 = chunk * CHUNK
    x_tile = _load_tile(x_ptr, t0, rows, n, n_mask, n_steps, n_neurons, tile_offsets, True, LEAN)
    gs_tile = x_tile
    gh_tile = x_tile
    ga_tile = x_tile
    if HAS_GRAD_SPIKES:
        gs_tile = _load_tile(
            grad_spikes_ptr, t0, rows, n, n_mask, n_steps, n_neurons, tile_offsets, True, LEAN
        )
    if HAS_GRAD_H:
        gh_tile = _load_tile(
            grad_h_ptr, t0, rows, n, n_mask, n_steps, n_neurons, tile_offsets, True, LEAN
        )
    if HAS_GRAD_A_SEQ:
        ga_tile = _load_tile(
            grad_a_seq_ptr, t0, rows, n, n_mask, n_steps, n_neurons, tile_offsets, True, LEAN
        )
    word_offsets = tl.cast(t0 // PACK_BITS, tl.int64) * n_neurons + n
    word = tl.load(packed_ptr + word_offsets, mask=n_mask, other=0).to(tl.int32)
    bit0 = t0 % PACK_BITS
    if LEAN >= 2:  # the chunk's first bit at bit 0: each step tests a constant mask
        word = word >> bit0
    ckpt_offsets = tl.cast(chunk, tl.int64) * n_neurons + n
    if V_STARTS_AT_ZERO:
        v = tl.zeros(n.shape, tl.float32)
    else:
        v = tl.load(ckpt_v_ptr + ckpt_offsets, mask=n_mask, other=0.0).to(tl.float32)
    a = v
    if ADAPTIVE:
        if A_STARTS_AT_ZERO:
            a = tl.zeros(n.shape, tl.float32)
        else:
            a = tl.load(ckpt_a_ptr + ckpt_offsets, mask=n_mask, other=0.0).to(tl.float32)
    return x_tile, gs_tile, gh_tile, ga_tile, word, bit0, v, a


@triton.jit
def _row(tile, rows, k: tl.constexpr, LEAN: tl.constexpr):
    """Row ``k`` of a ``(CHUNK, BLOCK)`` tile as a ``(BLOCK,)`` vector. ``LEAN``: the other
    rows sum as -0.0, and ``x + -0.0 == x`` folds away (``x + 0.0`` does not: -0.0)."""
    if LEAN:
        out = tl.sum(tl.where(rows == k, tile, -0.0), axis=0)
    else:
        out = tl.sum(tl.where(rows == k, tile, 0.0), axis=0)
    return out


@triton.jit
def _bit(word, bit0, k: tl.constexpr, LEAN: tl.constexpr):
    """Bit ``bit0 + k`` (a scalar) of each ``word``, as a bool. ``LEAN``: masked with
    ``1 << (bit0 + k)`` (one scalar shift for the block), not a shift of each word;
    ``LEAN >= 2``: the word comes shifted by ``bit0`` (``_bwd_loads``), so bit ``k``, a
    constant mask (bit 31 of a 32-step chunk: the sign, ``1 << 31`` is no int32)."""
    if LEAN >= 2:
        if k == 31:
            out = word < 0
        else:
            out = (word & (1 << k)) != 0
    elif LEAN:
        out = (word & (1 << (bit0 + k))) != 0
    else:
        out = ((word >> (bit0 + k)) & 1) != 0
    return out


@triton.jit
def _set_row(tile, rows, k: tl.constexpr, row):
    """The tile with row ``k`` replaced by ``row: (BLOCK,)``."""
    return tl.where(rows == k, row[None, :], tile)


@triton.jit
def _adjoint(grad_s, grad_v, grad_a, h, theta, spike_f, dsdu, ADAPTIVE: tl.constexpr,
             SOFT_RESET: tl.constexpr, DETACH_RESET: tl.constexpr):  # fmt: skip
    """One reverse step: from ``grad_s`` (dL/ds_t from the layer above) and the adjoints
    ``grad_v``, ``grad_a`` of the state after the step, ``(grad_s, grad_h, grad_theta)``:
    dL/ds_t in all, dL/dh_t before grad_h's trace term, and dL/dtheta_t. Affine in
    ``(grad_v, grad_a)`` with coefficients of the forward alone (what ``SPLIT`` uses)."""
    if ADAPTIVE:
        grad_s = grad_s + grad_a
    if not DETACH_RESET:
        if SOFT_RESET:
            grad_s = grad_s - grad_v * theta
        else:
            grad_s = grad_s - grad_v * h
    grad_u = grad_s * dsdu
    if SOFT_RESET:
        grad_h = grad_u + grad_v
        grad_theta = -grad_u - grad_v * spike_f
    else:
        grad_h = grad_u + grad_v * (1.0 - spike_f)
        grad_theta = -grad_u
    return grad_s, grad_h, grad_theta


@triton.jit
def _tangent_step(t_v, t_a, h, theta, spike_f, dsdu, valid, dv, da, b, zeros,
                  ADAPTIVE: tl.constexpr, SOFT_RESET: tl.constexpr, DETACH_RESET: tl.constexpr):  # fmt: skip
    """One reverse step of a tangent ``(t_v, t_a)`` of the adjoints: the step without its
    sources (no grad_spikes, traces or parameter sums), so only its linear part."""
    _, t_h, t_theta = _adjoint(zeros, t_v, t_a, h, theta, spike_f, dsdu, ADAPTIVE, SOFT_RESET,
                               DETACH_RESET)  # fmt: skip
    if ADAPTIVE:
        t_a = tl.where(valid, t_a * da + t_theta * b, t_a)
    t_v = tl.where(valid, t_h * dv, t_v)
    return t_v, t_a


@triton.jit
def _map_tile(maps_ptr, row: tl.constexpr, later, offsets, segment_stride, identity: tl.constexpr,
              SEGMENTS: tl.constexpr):  # fmt: skip
    """Row ``row`` of every segment's map as a ``(SEGMENTS, BLOCK)`` tile; ``identity``
    (the identity map's value) where ``later`` is off."""
    base = maps_ptr + tl.cast(row * SEGMENTS, tl.int64) * segment_stride
    return tl.load(base + offsets, mask=later, other=identity)


@triton.jit
def _segment_carry(maps_ptr, grad_v, grad_a, segment, n_segments, n, n_mask, n_neurons,
                   ADAPTIVE: tl.constexpr, SEGMENTS: tl.constexpr, LEAN: tl.constexpr):  # fmt: skip
    """The adjoints ``(grad_v, grad_a)`` at the end of ``segment``: those at the end of the
    sequence carried through the maps of every later segment, last to first. A map takes
    ``(g_v, g_a)`` at its segment's end to ``M @ (g_v, g_a) + K`` at its start; rows of
    ``maps: (MAP_ROWS, SEGMENTS, N)``: K_v, M_vv, then K_a, M_av, M_va, M_aa (adaptive)."""
    q = tl.arange(0, SEGMENTS)[:, None]
    later = (q > segment) & (q < n_segments) & n_mask[None, :]
    offsets = q.to(tl.int64) * n_neurons + n[None, :]
    k_v = _map_tile(maps_ptr, 0, later, offsets, n_neurons, 0.0, SEGMENTS)
    m_vv = _map_tile(maps_ptr, 1, later, offsets, n_neurons, 1.0, SEGMENTS)
    if ADAPTIVE:
        k_a = _map_tile(maps_ptr, 2, later, offsets, n_neurons, 0.0, SEGMENTS)
        m_av = _map_tile(maps_ptr, 3, later, offsets, n_neurons, 0.0, SEGMENTS)
        m_va = _map_tile(maps_ptr, 4, later, offsets, n_neurons, 0.0, SEGMENTS)
        m_aa = _map_tile(maps_ptr, 5, later, offsets, n_neurons, 1.0, SEGMENTS)
    for r in tl.static_range(SEGMENTS):
        s = SEGMENTS - 1 - r
        g_v = _row(m_vv, q, s, LEAN) * grad_v + _row(k_v, q, s, LEAN)
        if ADAPTIVE:
            g_v += _row(m_va, q, s, LEAN) * grad_a
            grad_a = (
                _row(m_av, q, s, LEAN) * grad_v + _row(m_aa, q, s, LEAN) * grad_a
                + _row(k_a, q, s, LEAN)
            )  # fmt: skip
        grad_v = g_v
    return grad_v, grad_a


@triton.jit
def _recip(x, FAST: tl.constexpr):
    """``1 / x`` for ``x >= 1`` (or inf: 0). ``FAST``: as ``rsqrt(x)**2``, two instructions
    (``MUFU.RSQ``, a multiply) where the division takes eight (range checks and scalings
    around ``MUFU.RCP``), relative error under 3e-7; ``x >= 1`` keeps it off the denormals."""
    if FAST:
        r = tl.math.rsqrt(x)
        out = r * r
    else:
        out = 1.0 / x
    return out


@triton.jit
def _surrogate(u, alpha, SURROGATE: tl.constexpr, FAST: tl.constexpr = False):
    """``(sigma'(u), dPhi/dalpha)`` for surrogate id 0 Arctan, 1 Sigmoid, 2 FastSigmoid."""
    if SURROGATE == 0:
        scaled = alpha * PI * u
        inv = _recip(1.0 + scaled * scaled, FAST)
        dsdu = alpha * inv
        dphi_dalpha = u * inv
    elif SURROGATE == 1:
        sig = _recip(1.0 + tl.exp(-alpha * u), FAST)
        slope = sig * (1.0 - sig)
        dsdu = alpha * slope
        dphi_dalpha = u * slope
    else:
        inv = _recip(1.0 + tl.abs(alpha * u), FAST)
        dsdu = inv * inv
        inv_primitive = _recip(1.0 + alpha * tl.abs(u), FAST)  # alpha > 0
        dphi_dalpha = -u * tl.abs(u) * inv_primitive * inv_primitive
    return dsdu, dphi_dalpha


@triton.jit
def _fwd_chunk(
    t0, x_tile, v, a, word, spikes_at, h_at, a_at,
    spikes_ptr, h_seq_ptr, a_seq_ptr, packed_ptr, ckpt_v_ptr, ckpt_a_ptr,
    dv, thr, da, b, rows, n, n_mask, n_steps, n_neurons,
    ADAPTIVE: tl.constexpr, SOFT_RESET: tl.constexpr, STORE_H: tl.constexpr,
    STORE_A: tl.constexpr, SAVE_FOR_BACKWARD: tl.constexpr, EVEN_STEPS: tl.constexpr,
    BLOCK: tl.constexpr, CHUNK: tl.constexpr, PACK_BITS: tl.constexpr, LEAN: tl.constexpr,
):  # fmt: skip
    """The forward over the chunk starting at step ``t0`` from its ``(CHUNK, BLOCK)`` tile of
    x: its checkpoint, its steps, its packed word. Returns the carried values (states, the
    word being packed, the output pointers) updated."""
    out_dtype = spikes_ptr.dtype.element_ty
    if SAVE_FOR_BACKWARD:
        ckpt_offsets = tl.cast(t0 // CHUNK, tl.int64) * n_neurons + n
        tl.store(ckpt_v_ptr + ckpt_offsets, v, mask=n_mask)
        if ADAPTIVE:
            tl.store(ckpt_a_ptr + ckpt_offsets, a, mask=n_mask)
    for k in tl.static_range(CHUNK):
        # a vector: the interpreter mistypes bool scalar & vector
        if EVEN_STEPS:
            valid = tl.full([BLOCK], 1, tl.int1)  # constant: the selects fold away
        else:
            valid = tl.full([BLOCK], t0 + k, tl.int32) < n_steps
        offsets = tl.cast(t0 + k, tl.int64) * n_neurons + n  # LEAN: unused
        step_mask = n_mask & valid
        h = dv * v + _row(x_tile, rows, k, LEAN)
        if ADAPTIVE:
            theta = thr + b * a
        else:
            theta = thr
        spike = (h >= theta) & valid
        if SOFT_RESET:
            v = tl.where(valid, tl.where(spike, h - theta, h), v)
        else:
            v = tl.where(valid, tl.where(spike, 0.0, h), v)
        spike_f = tl.where(spike, 1.0, 0.0)
        spikes_out = spikes_at if LEAN else spikes_ptr + offsets
        tl.store(spikes_out, spike_f.to(out_dtype), mask=step_mask)
        if STORE_H:
            h_out = h_at if LEAN else h_seq_ptr + offsets
            tl.store(h_out, h.to(out_dtype), mask=step_mask)
        if ADAPTIVE:
            if STORE_A:
                a_out = a_at if LEAN else a_seq_ptr + offsets
                tl.store(a_out, a.to(out_dtype), mask=step_mask)
            a = tl.where(valid, da * a + spike_f, a)
        if SAVE_FOR_BACKWARD:
            if LEAN:  # a select of the step's bit, not a shift per neuron
                word = word | tl.where(spike, 1 << ((t0 % PACK_BITS) + k), 0)
            else:
                word = word | (spike.to(tl.int32) << ((t0 % PACK_BITS) + k))
        if LEAN:
            spikes_at += n_neurons
            if STORE_H:
                h_at += n_neurons
            if STORE_A:
                a_at += n_neurons
    if SAVE_FOR_BACKWARD:
        t_end = tl.full([BLOCK], t0 + CHUNK, tl.int32)
        word_done = (t_end % PACK_BITS == 0) | (t_end >= n_steps)
        word_offsets = tl.cast(t0 // PACK_BITS, tl.int64) * n_neurons + n
        packed_dtype = packed_ptr.dtype.element_ty
        tl.store(packed_ptr + word_offsets, word.to(packed_dtype), mask=n_mask & word_done)
        word = tl.where(word_done, 0, word)
    return v, a, word, spikes_at, h_at, a_at


@triton.jit(do_not_specialize=["n_steps", "group_size", "n_params"])
def neuron_fwd_kernel(
    x_ptr,  # (T, N) input dtype, read
    spikes_ptr,  # (T, N) input dtype, written
    h_seq_ptr,  # (T, N) input dtype, written if STORE_H
    a_seq_ptr,  # (T, N) input dtype, written if STORE_A (ALIF: a_{t-1})
    v_init_ptr,  # (N,) read if HAS_V_INIT, else v starts at 0
    a_init_ptr,  # (N,) read if HAS_A_INIT
    v_final_ptr,  # (N,) float32, written if STORE_FINAL
    a_final_ptr,  # (N,) float32, written if STORE_FINAL and ADAPTIVE
    packed_ptr,  # (ceil(T / PACK_BITS), N) int8|int16|int32, written if SAVE_FOR_BACKWARD
    ckpt_v_ptr,  # (ceil(T / CHUNK), N) float32: v at each chunk start, if SAVE_FOR_BACKWARD
    ckpt_a_ptr,  # same for a, if SAVE_FOR_BACKWARD and ADAPTIVE
    decay_v,
    threshold,
    decay_a,
    beta,
    decay_v_stride,
    threshold_stride,
    decay_a_stride,
    beta_stride,
    n_steps,
    n_neurons,
    group_size,
    n_params,
    DECAY_V_IS_TENSOR: tl.constexpr,
    THRESHOLD_IS_TENSOR: tl.constexpr,
    DECAY_A_IS_TENSOR: tl.constexpr,
    BETA_IS_TENSOR: tl.constexpr,
    ADAPTIVE: tl.constexpr,
    SOFT_RESET: tl.constexpr,
    HAS_V_INIT: tl.constexpr,
    HAS_A_INIT: tl.constexpr,
    STORE_H: tl.constexpr,
    STORE_A: tl.constexpr,
    SAVE_FOR_BACKWARD: tl.constexpr,
    STORE_FINAL: tl.constexpr,
    EVEN_STEPS: tl.constexpr,  # n_steps % CHUNK == 0: no per-step bounds checks
    BLOCK: tl.constexpr,
    CHUNK: tl.constexpr,
    PACK_BITS: tl.constexpr,
    PER_THREAD: tl.constexpr,  # BLOCK // (32 * num_warps): neurons per thread
    PREFETCH: tl.constexpr,  # load chunk c+1 before computing chunk c (registers x2)
    LEAN: tl.constexpr,  # fewer instructions a step: see the module docstring
):
    pid = tl.program_id(0)
    n = pid.to(tl.int64) * BLOCK + tl.max_contiguous(tl.arange(0, BLOCK), [PER_THREAD])
    n_mask = n < n_neurons
    p_index = (n // group_size) % n_params
    dv = _param(decay_v, p_index, decay_v_stride, DECAY_V_IS_TENSOR)
    thr = _param(threshold, p_index, threshold_stride, THRESHOLD_IS_TENSOR)
    if HAS_V_INIT:
        v = tl.load(v_init_ptr + n, mask=n_mask, other=0.0).to(tl.float32)
    else:
        v = tl.zeros([BLOCK], dtype=tl.float32)
    a = v  # ALIF's; the others carry these unused
    da = v
    b = v
    if ADAPTIVE:
        da = _param(decay_a, p_index, decay_a_stride, DECAY_A_IS_TENSOR)
        b = _param(beta, p_index, beta_stride, BETA_IS_TENSOR)
        if HAS_A_INIT:
            a = tl.load(a_init_ptr + n, mask=n_mask, other=0.0).to(tl.float32)
        else:
            a = tl.zeros([BLOCK], dtype=tl.float32)
    rows = tl.arange(0, CHUNK)[:, None]
    word = tl.zeros([BLOCK], dtype=tl.int32)
    tile_offsets = rows.to(tl.int64) * n_neurons + n[None, :]  # LEAN: loop-invariant
    spikes_at = spikes_ptr + n  # LEAN: the step's output pointers, advanced a step at a time
    h_at = h_seq_ptr + n
    a_at = a_seq_ptr + n
    if PREFETCH:
        x_next = _load_tile(x_ptr, 0, rows, n, n_mask, n_steps, n_neurons, tile_offsets, True, LEAN)
    # Two chunks an iteration with PREFETCH at LEAN >= 2: the tiles in flight alternate
    # between two register sets instead of being copied into one at every iteration.
    PAIR: tl.constexpr = 2 if PREFETCH and LEAN >= 2 else 1
    for i in range(0, n_steps, PAIR * CHUNK):
        for half in tl.static_range(PAIR):
            t0 = i
            if half == 1:
                t0 += CHUNK
            # PREFETCH: load the next chunk (nothing past T), in flight while this one computes
            loaded = _load_tile(
                x_ptr, t0 + PREFETCH * CHUNK, rows, n, n_mask, n_steps, n_neurons, tile_offsets,
                PREFETCH or not EVEN_STEPS, LEAN,
            )  # fmt: skip
            if PREFETCH:
                x_tile = x_next
                x_next = loaded
            else:
                x_tile = loaded
            run = True
            if half == 1:  # the last pair of an odd count of chunks has no second
                run = t0 < n_steps
            if run:
                v, a, word, spikes_at, h_at, a_at = _fwd_chunk(
                    t0, x_tile, v, a, word, spikes_at, h_at, a_at,
                    spikes_ptr, h_seq_ptr, a_seq_ptr, packed_ptr, ckpt_v_ptr, ckpt_a_ptr,
                    dv, thr, da, b, rows, n, n_mask, n_steps, n_neurons,
                    ADAPTIVE=ADAPTIVE, SOFT_RESET=SOFT_RESET, STORE_H=STORE_H, STORE_A=STORE_A,
                    SAVE_FOR_BACKWARD=SAVE_FOR_BACKWARD, EVEN_STEPS=EVEN_STEPS, BLOCK=BLOCK,
                    CHUNK=CHUNK, PACK_BITS=PACK_BITS, LEAN=LEAN,
                )  # fmt: skip
    if STORE_FINAL:  # off when the caller drops the state: 4 bytes/neuron less
        tl.store(v_final_ptr + n, v, mask=n_mask)
        if ADAPTIVE:
            tl.store(a_final_ptr + n, a, mask=n_mask)


@triton.jit
def _bwd_chunk(
    t0, x_tile, gs_tile, gh_tile, ga_tile, word, bit0, v, a,
    grad_v, grad_a, acc_decay_v, acc_threshold, acc_decay_a, acc_beta, acc_alpha,
    tv_v, tv_a, ta_v, ta_a, grad_x_at,
    grad_x_ptr, dv, thr, da, b, alpha, zeros, zero_tile, rows, n, n_mask, n_steps, n_neurons,
    ADAPTIVE: tl.constexpr, SOFT_RESET: tl.constexpr, DETACH_RESET: tl.constexpr,
    SURROGATE: tl.constexpr, HAS_GRAD_SPIKES: tl.constexpr, HAS_GRAD_H: tl.constexpr,
    HAS_GRAD_A_SEQ: tl.constexpr, EVEN_STEPS: tl.constexpr, SPLIT: tl.constexpr,
    DECAY_V_GRAD_ROW: tl.constexpr, THRESHOLD_GRAD_ROW: tl.constexpr,
    DECAY_A_GRAD_ROW: tl.constexpr, BETA_GRAD_ROW: tl.constexpr, ALPHA_GRAD_ROW: tl.constexpr,
    BLOCK: tl.constexpr, CHUNK: tl.constexpr, LEAN: tl.constexpr,
):  # fmt: skip
    """The backward over the chunk starting at step ``t0``, from what ``_bwd_loads`` read of
    it: recompute its states from the checkpoint, then walk its steps last to first. Returns
    the carried values (adjoints, parameter sums, tangents, grad_x's pointer) updated."""
    out_dtype = grad_x_ptr.dtype.element_ty
    # Recompute the chunk forward from its checkpoint, keeping the state before each step.
    v_prev_tile = zero_tile
    if ADAPTIVE:  # every row is set below; x's tile gives it x's register layout
        a_prev_tile = x_tile
    for k in tl.static_range(CHUNK):
        v_prev_tile = _set_row(v_prev_tile, rows, k, v)
        spike = _bit(word, bit0, k, LEAN)
        h = dv * v + _row(x_tile, rows, k, LEAN)
        if ADAPTIVE:
            a_prev_tile = _set_row(a_prev_tile, rows, k, a)
            theta = thr + b * a
            a = da * a + tl.where(spike, 1.0, 0.0)
        else:
            theta = thr
        if SOFT_RESET:
            v = tl.where(spike, h - theta, h)
        else:
            v = tl.where(spike, 0.0, h)
    # Walk the chunk backwards.
    for kk in tl.static_range(CHUNK):
        j = CHUNK - 1 - kk  # step within the chunk, a constexpr
        # a vector: the interpreter mistypes bool scalar & vector
        if EVEN_STEPS:
            valid = tl.full([BLOCK], 1, tl.int1)  # constant: the selects fold away
        else:
            valid = tl.full([BLOCK], t0 + j, tl.int32) < n_steps
        spike = _bit(word, bit0, j, LEAN)
        spike_f = tl.where(spike, 1.0, 0.0)
        v_prev = _row(v_prev_tile, rows, j, LEAN)
        h = dv * v_prev + _row(x_tile, rows, j, LEAN)
        if ADAPTIVE:
            a_prev = _row(a_prev_tile, rows, j, LEAN)
            theta = thr + b * a_prev
        else:
            theta = thr
        u = h - theta
        dsdu, dphi_dalpha = _surrogate(u, alpha, SURROGATE, LEAN >= 2)
        grad_s = zeros
        if HAS_GRAD_SPIKES:
            grad_s = _row(gs_tile, rows, j, LEAN)
        grad_s, grad_h, grad_theta = _adjoint(
            grad_s, grad_v, grad_a, h, theta, spike_f, dsdu, ADAPTIVE, SOFT_RESET, DETACH_RESET
        )
        if HAS_GRAD_H:
            grad_h = grad_h + _row(gh_tile, rows, j, LEAN)
        grad_h = tl.where(valid, grad_h, 0.0)
        grad_theta = tl.where(valid, grad_theta, 0.0)
        if SPLIT == 1:
            tv_v, tv_a = _tangent_step(tv_v, tv_a, h, theta, spike_f, dsdu, valid, dv, da, b,
                                       zeros, ADAPTIVE, SOFT_RESET, DETACH_RESET)  # fmt: skip
            if ADAPTIVE:
                ta_v, ta_a = _tangent_step(ta_v, ta_a, h, theta, spike_f, dsdu, valid, dv, da,
                                           b, zeros, ADAPTIVE, SOFT_RESET, DETACH_RESET)  # fmt: skip
        else:
            if LEAN:
                tl.store(grad_x_at, grad_h.to(out_dtype), mask=n_mask & valid)
                grad_x_at += -n_neurons
            else:
                tl.store(
                    grad_x_ptr + tl.cast(t0 + j, tl.int64) * n_neurons + n,
                    grad_h.to(out_dtype),
                    mask=n_mask & valid,
                )
            if DECAY_V_GRAD_ROW >= 0:
                acc_decay_v += grad_h * v_prev
            if THRESHOLD_GRAD_ROW >= 0:
                acc_threshold += grad_theta
            if ALPHA_GRAD_ROW >= 0:
                acc_alpha += tl.where(valid, grad_s * dphi_dalpha, 0.0)
        if ADAPTIVE:
            if SPLIT != 1:
                if BETA_GRAD_ROW >= 0:
                    acc_beta += grad_theta * a_prev
                if DECAY_A_GRAD_ROW >= 0:
                    acc_decay_a += tl.where(valid, grad_a * a_prev, 0.0)
            grad_a_prev = grad_a * da + grad_theta * b
            if HAS_GRAD_A_SEQ:
                grad_a_prev += _row(ga_tile, rows, j, LEAN)
            grad_a = tl.where(valid, grad_a_prev, grad_a)
        grad_v = tl.where(valid, grad_h * dv, grad_v)
    return (
        grad_v, grad_a, acc_decay_v, acc_threshold, acc_decay_a, acc_beta, acc_alpha,
        tv_v, tv_a, ta_v, ta_a, grad_x_at,
    )  # fmt: skip


@triton.jit(do_not_specialize=["n_steps", "group_size", "n_params", "n_segment_chunks"])
def neuron_bwd_kernel(
    x_ptr,  # (T, N) input dtype, read
    packed_ptr,  # (ceil(T / PACK_BITS), N) spikes, 1 bit each, read
    ckpt_v_ptr,  # (ceil(T / CHUNK), N) float32, read unless V_STARTS_AT_ZERO
    ckpt_a_ptr,  # (ceil(T / CHUNK), N) float32, read if ADAPTIVE unless A_STARTS_AT_ZERO
    grad_spikes_ptr,  # (T, N) read if HAS_GRAD_SPIKES
    grad_h_ptr,  # (T, N) read if HAS_GRAD_H (gradient of v_seq)
    grad_a_seq_ptr,  # (T, N) read if HAS_GRAD_A_SEQ
    grad_v_final_ptr,  # (N,) read if HAS_GRAD_V_FINAL
    grad_a_final_ptr,  # (N,) read if HAS_GRAD_A_FINAL
    grad_x_ptr,  # (T, N) input dtype, written
    grad_v_init_ptr,  # (N,) float32, written
    grad_a_init_ptr,  # (N,) float32, written if ADAPTIVE
    grad_params_ptr,  # (rows, N) float32: per-neuron sums over time, one row per parameter
    decay_v,
    threshold,
    decay_a,
    beta,
    alpha,
    decay_v_stride,
    threshold_stride,
    decay_a_stride,
    beta_stride,
    n_steps,
    n_neurons,
    group_size,
    n_params,
    maps_ptr,  # (MAP_ROWS, SEGMENTS, N) float32: each segment's map, if SPLIT
    n_segment_chunks,  # chunks per segment, if SPLIT
    DECAY_V_IS_TENSOR: tl.constexpr,
    THRESHOLD_IS_TENSOR: tl.constexpr,
    DECAY_A_IS_TENSOR: tl.constexpr,
    BETA_IS_TENSOR: tl.constexpr,
    ALPHA_IS_TENSOR: tl.constexpr,
    ADAPTIVE: tl.constexpr,
    SOFT_RESET: tl.constexpr,
    DETACH_RESET: tl.constexpr,
    SURROGATE: tl.constexpr,
    HAS_GRAD_SPIKES: tl.constexpr,
    HAS_GRAD_H: tl.constexpr,
    HAS_GRAD_A_SEQ: tl.constexpr,
    HAS_GRAD_V_FINAL: tl.constexpr,
    HAS_GRAD_A_FINAL: tl.constexpr,
    V_STARTS_AT_ZERO: tl.constexpr,  # T <= CHUNK from v = 0: no checkpoint saved (ckpt_v unused)
    A_STARTS_AT_ZERO: tl.constexpr,  # the same for a (ckpt_a unused)
    EVEN_STEPS: tl.constexpr,  # n_steps % CHUNK == 0: no per-step bounds checks (LEAN >= 2)
    SPLIT: tl.constexpr,  # 0: the whole sequence; 1: segment maps; 2: segments (module doc)
    DECAY_V_GRAD_ROW: tl.constexpr,  # row of grad_params_ptr, or -1 for no gradient
    THRESHOLD_GRAD_ROW: tl.constexpr,
    DECAY_A_GRAD_ROW: tl.constexpr,
    BETA_GRAD_ROW: tl.constexpr,
    ALPHA_GRAD_ROW: tl.constexpr,
    BLOCK: tl.constexpr,
    CHUNK: tl.constexpr,
    PACK_BITS: tl.constexpr,
    PER_THREAD: tl.constexpr,  # BLOCK // (32 * num_warps): neurons per thread
    PREFETCH: tl.constexpr,  # load the chunk before the current one ahead of its compute
    LEAN: tl.constexpr,  # fewer instructions a step: see the module docstring
    SEGMENTS: tl.constexpr,  # SPLIT: at most this many segments (a power of two)
    PROGRAM_SUMS: tl.constexpr = 0,  # SPLIT 0: parameter sums a program writes (see the end)
    PERIODIC_SUMS: tl.constexpr = False,  # those sums by neuron mod PROGRAM_SUMS, else in runs
    SUM_SEGMENTS: tl.constexpr = False,  # SPLIT 2: the segments' parameter rows summed here
):
    pid = tl.program_id(0)
    n = pid.to(tl.int64) * BLOCK + tl.max_contiguous(tl.arange(0, BLOCK), [PER_THREAD])
    n_mask = n < n_neurons
    p_index = (n // group_size) % n_params
    dv = _param(decay_v, p_index, decay_v_stride, DECAY_V_IS_TENSOR)
    thr = _param(threshold, p_index, threshold_stride, THRESHOLD_IS_TENSOR)
    alpha = _param(alpha, 0, 0, ALPHA_IS_TENSOR)
    zeros = tl.zeros([BLOCK], dtype=tl.float32)
    zero_tile = tl.zeros([CHUNK, BLOCK], dtype=tl.float32)
    # Adjoints of the state after the current step: dL/dv_t and dL/da_t.
    if HAS_GRAD_V_FINAL:
        grad_v = tl.load(grad_v_final_ptr + n, mask=n_mask, other=0.0).to(tl.float32)
    else:
        grad_v = zeros
    grad_a = zeros
    da = zeros  # ALIF's; the others carry these unused
    b = zeros
    tv_v, tv_a, ta_v, ta_a = zeros, zeros, zeros, zeros  # SPLIT == 1: the tangents
    if ADAPTIVE:
        da = _param(decay_a, p_index, decay_a_stride, DECAY_A_IS_TENSOR)
        b = _param(beta, p_index, beta_stride, BETA_IS_TENSOR)
        if HAS_GRAD_A_FINAL:
            grad_a = tl.load(grad_a_final_ptr + n, mask=n_mask, other=0.0).to(tl.float32)
    acc_decay_v = zeros
    acc_threshold = zeros
    acc_decay_a = zeros
    acc_beta = zeros
    acc_alpha = zeros
    rows = tl.arange(0, CHUNK)[:, None]
    n_chunks = tl.cdiv(n_steps, CHUNK)
    c_lo = 0  # the chunks [c_lo, c_hi) this program walks
    c_hi = n_chunks
    if SPLIT > 0:  # one program per (block, segment of n_segment_chunks chunks)
        segment = tl.program_id(1)
        if SPLIT == 1:  # the first segment's map is never used
            segment += 1
        n_segments = tl.cdiv(n_chunks, n_segment_chunks)
        c_lo = segment * n_segment_chunks
        c_hi = tl.minimum(c_lo + n_segment_chunks, n_chunks)
        if SPLIT == 1:  # the map: K from zero adjoints, M from the tangents of each one
            grad_v = zeros
            grad_a = zeros
            # d(g_v, g_a) at the segment's start / d g_v at its end, and / d g_a (adaptive)
            tv_v, ta_a = zeros + 1.0, zeros + 1.0
        else:
            grad_v, grad_a = _segment_carry(
                maps_ptr, grad_v, grad_a, segment, n_segments, n, n_mask, n_neurons, ADAPTIVE,
                SEGMENTS, LEAN,
            )  # fmt: skip
    tile_offsets = rows.to(tl.int64) * n_neurons + n[None, :]  # LEAN: loop-invariant
    # LEAN: grad_x's pointers at the current step, moved back a step at a time
    grad_x_at = grad_x_ptr + tl.cast(c_hi * CHUNK - 1, tl.int64) * n_neurons + n
    pointers = (
        x_ptr,
        grad_spikes_ptr,
        grad_h_ptr,
        grad_a_seq_ptr,
        packed_ptr,
        ckpt_v_ptr,
        ckpt_a_ptr,
    )
    # The switches go by name: a tuple of constexprs splatted into a call loses constexpr-ness
    # (the helper's branches then compile as runtime ones, over pointers of other dtypes).
    if PREFETCH:
        ahead = _bwd_loads(
            c_hi - 1, *pointers, rows, n, n_mask, n_steps, n_neurons, tile_offsets,
            HAS_GRAD_SPIKES=HAS_GRAD_SPIKES, HAS_GRAD_H=HAS_GRAD_H, HAS_GRAD_A_SEQ=HAS_GRAD_A_SEQ,
            ADAPTIVE=ADAPTIVE, CHUNK=CHUNK, PACK_BITS=PACK_BITS, LEAN=LEAN,
            V_STARTS_AT_ZERO=V_STARTS_AT_ZERO, A_STARTS_AT_ZERO=A_STARTS_AT_ZERO,
        )  # fmt: skip
    # Two chunks an iteration with PREFETCH at LEAN >= 2: the tiles in flight alternate
    # between two register sets instead of being copied into one at every iteration.
    PAIR: tl.constexpr = 2 if PREFETCH and LEAN >= 2 else 1
    for i in range(0, c_hi - c_lo, PAIR):
        for half in tl.static_range(PAIR):
            chunk = c_hi - 1 - i
            if half == 1:
                chunk -= 1
            t0 = chunk * CHUNK
            # PREFETCH: load the chunk before (nothing before the first; chunks run last to
            # first), in flight while this one computes
            load_mask = n_mask
            if PREFETCH:
                load_mask = n_mask & (tl.full([BLOCK], chunk - 1, tl.int32) >= c_lo)
            loaded = _bwd_loads(
                chunk - PREFETCH, *pointers, rows, n, load_mask, n_steps, n_neurons,
                tile_offsets, HAS_GRAD_SPIKES=HAS_GRAD_SPIKES, HAS_GRAD_H=HAS_GRAD_H,
                HAS_GRAD_A_SEQ=HAS_GRAD_A_SEQ, ADAPTIVE=ADAPTIVE, CHUNK=CHUNK,
                PACK_BITS=PACK_BITS, LEAN=LEAN, V_STARTS_AT_ZERO=V_STARTS_AT_ZERO,
                A_STARTS_AT_ZERO=A_STARTS_AT_ZERO,
            )  # fmt: skip
            if PREFETCH:
                current = ahead
                ahead = loaded
            else:
                current = loaded
            x_tile, gs_tile, gh_tile, ga_tile, word, bit0, v, a = current
            run = True
            if half == 1:  # an odd count of chunks: the last pair has no second
                run = chunk >= c_lo
            if run:
                (
                    grad_v, grad_a, acc_decay_v, acc_threshold, acc_decay_a, acc_beta, acc_alpha,
                    tv_v, tv_a, ta_v, ta_a, grad_x_at,
                ) = _bwd_chunk(
                    t0, x_tile, gs_tile, gh_tile, ga_tile, word, bit0, v, a,
                    grad_v, grad_a, acc_decay_v, acc_threshold, acc_decay_a, acc_beta, acc_alpha,
                    tv_v, tv_a, ta_v, ta_a, grad_x_at,
                    grad_x_ptr, dv, thr, da, b, alpha, zeros, zero_tile, rows, n, n_mask,
                    n_steps, n_neurons, ADAPTIVE=ADAPTIVE, SOFT_RESET=SOFT_RESET,
                    DETACH_RESET=DETACH_RESET, SURROGATE=SURROGATE,
                    HAS_GRAD_SPIKES=HAS_GRAD_SPIKES, HAS_GRAD_H=HAS_GRAD_H,
                    HAS_GRAD_A_SEQ=HAS_GRAD_A_SEQ, EVEN_STEPS=EVEN_STEPS, SPLIT=SPLIT,
                    DECAY_V_GRAD_ROW=DECAY_V_GRAD_ROW, THRESHOLD_GRAD_ROW=THRESHOLD_GRAD_ROW,
                    DECAY_A_GRAD_ROW=DECAY_A_GRAD_ROW, BETA_GRAD_ROW=BETA_GRAD_ROW,
                    ALPHA_GRAD_ROW=ALPHA_GRAD_ROW, BLOCK=BLOCK, CHUNK=CHUNK, LEAN=LEAN,
                )  # fmt: skip

    if SPLIT == 1:  # rows of maps (see _segment_carry)
        at = maps_ptr + tl.cast(segment, tl.int64) * n_neurons + n
        row = tl.cast(SEGMENTS, tl.int64) * n_neurons
        tl.store(at, grad_v, mask=n_mask)
        tl.store(at + row, tv_v, mask=n_mask)
        if ADAPTIVE:
            tl.store(at + 2 * row, grad_a, mask=n_mask)
            tl.store(at + 3 * row, tv_a, mask=n_mask)
            tl.store(at + 4 * row, ta_v, mask=n_mask)
            tl.store(at + 5 * row, ta_a, mask=n_mask)
        if SUM_SEGMENTS:  # the second launch's counters (a row after the maps), zeroed once
            first = tl.full([BLOCK], segment, tl.int32) == 1
            tl.store(_counters(maps_ptr, n, n_neurons, ADAPTIVE, SEGMENTS), zeros,
                     mask=n_mask & first)  # fmt: skip
    else:
        init_mask = n_mask  # the initial state's adjoints: the first segment's
        params_at = grad_params_ptr  # SPLIT: rows (R, n_segments, N), summed by SUM_SEGMENTS
        row_stride = n_neurons
        if SPLIT == 2:
            init_mask = n_mask & (tl.full([BLOCK], segment, tl.int32) == 0)
            params_at += tl.cast(segment, tl.int64) * n_neurons
            row_stride = tl.cast(n_segments, tl.int64) * n_neurons
        tl.store(grad_v_init_ptr + n, grad_v, mask=init_mask)
        if ADAPTIVE:
            tl.store(grad_a_init_ptr + n, grad_a, mask=init_mask)
        if PROGRAM_SUMS:  # runs or residues of neurons that share a parameter entry: a sum each
            params_at = grad_params_ptr + pid * PROGRAM_SUMS  # rows (R, programs * PROGRAM_SUMS)
            row_stride = tl.num_programs(0) * PROGRAM_SUMS
        if DECAY_V_GRAD_ROW >= 0:
            _store_param_grad(params_at + DECAY_V_GRAD_ROW * row_stride, acc_decay_v, n, n_mask,
                              BLOCK, PROGRAM_SUMS, PERIODIC_SUMS)  # fmt: skip
        if THRESHOLD_GRAD_ROW >= 0:
            _store_param_grad(params_at + THRESHOLD_GRAD_ROW * row_stride, acc_threshold, n,
                              n_mask, BLOCK, PROGRAM_SUMS, PERIODIC_SUMS)  # fmt: skip
        if DECAY_A_GRAD_ROW >= 0:
            _store_param_grad(params_at + DECAY_A_GRAD_ROW * row_stride, acc_decay_a, n, n_mask,
                              BLOCK, PROGRAM_SUMS, PERIODIC_SUMS)  # fmt: skip
        if BETA_GRAD_ROW >= 0:
            _store_param_grad(params_at + BETA_GRAD_ROW * row_stride, acc_beta, n, n_mask,
                              BLOCK, PROGRAM_SUMS, PERIODIC_SUMS)  # fmt: skip
        if ALPHA_GRAD_ROW >= 0:
            _store_param_grad(params_at + ALPHA_GRAD_ROW * row_stride, acc_alpha, n, n_mask,
                              BLOCK, PROGRAM_SUMS, PERIODIC_SUMS)  # fmt: skip
        if SUM_SEGMENTS:  # the last of a neuron's segments to get here sums all of them
            tl.debug_barrier()  # the program's rows stored before its counts (release)
            counters = _counters(maps_ptr, n, n_neurons, ADAPTIVE, SEGMENTS)
            done = tl.atomic_add(counters, zeros + 1.0, mask=n_mask, sem="acq_rel")
            q = tl.arange(0, SEGMENTS)[:, None]  # every segment's sums in one load a row
            offsets = q.to(tl.int64) * n_neurons + n[None, :]
            last = n_mask & (done == n_segments - 1)
            in_tile = (q < n_segments) & last[None, :]
            at = grad_params_ptr  # every row's tile loaded before the first store
            sum_decay_v = _segment_sum(at, DECAY_V_GRAD_ROW, row_stride, offsets, in_tile)
            sum_threshold = _segment_sum(at, THRESHOLD_GRAD_ROW, row_stride, offsets, in_tile)
            sum_decay_a = _segment_sum(at, DECAY_A_GRAD_ROW, row_stride, offsets, in_tile)
            sum_beta = _segment_sum(at, BETA_GRAD_ROW, row_stride, offsets, in_tile)
            sum_alpha = _segment_sum(at, ALPHA_GRAD_ROW, row_stride, offsets, in_tile)
            _store_row(at, DECAY_V_GRAD_ROW, row_stride, n, last, sum_decay_v)
            _store_row(at, THRESHOLD_GRAD_ROW, row_stride, n, last, sum_threshold)
            _store_row(at, DECAY_A_GRAD_ROW, row_stride, n, last, sum_decay_a)
            _store_row(at, BETA_GRAD_ROW, row_stride, n, last, sum_beta)
            _store_row(at, ALPHA_GRAD_ROW, row_stride, n, last, sum_alpha)


@triton.jit
def _counters(maps_ptr, n, n_neurons, ADAPTIVE: tl.constexpr, SEGMENTS: tl.constexpr):
    """``SUM_SEGMENTS``: each neuron's count of the segments done, float32, in the row after
    the maps (``maps: (MAP_ROWS + 1, SEGMENTS, N)``, its first ``N``)."""
    map_rows: tl.constexpr = 6 if ADAPTIVE else 2
    return maps_ptr + tl.cast(map_rows * SEGMENTS, tl.int64) * n_neurons + n


@triton.jit
def _segment_sum(params_ptr, ROW: tl.constexpr, row_stride, offsets, in_tile):
    """``SUM_SEGMENTS``: row ``ROW`` of ``params: (R, S, N)`` summed over its segments, the
    ``(SEGMENTS, BLOCK)`` tile at ``offsets`` where ``in_tile``, loaded at once through L2
    (other programs wrote it), summed in a fixed order: ``(BLOCK,)``; zeros if ``ROW < 0``."""
    if ROW >= 0:
        tile = tl.load(params_ptr + ROW * row_stride + offsets, mask=in_tile, other=0.0,
                       cache_modifier=".cg")  # fmt: skip
    else:
        tile = tl.zeros(offsets.shape, tl.float32)
    return tl.sum(tile, axis=0)


@triton.jit
def _store_row(params_ptr, ROW: tl.constexpr, row_stride, n, mask, values):
    """``values: (BLOCK,)`` into segment 0's row ``ROW`` of ``params`` (none if ``ROW < 0``)."""
    if ROW >= 0:
        tl.store(params_ptr + ROW * row_stride + n, values, mask=mask)


@triton.jit
def _store_param_grad(
    at, acc, n, n_mask, BLOCK: tl.constexpr, SUMS: tl.constexpr, PERIODIC: tl.constexpr
):
    """A program's row of one parameter's gradient from ``acc: (BLOCK,)``: per neuron at
    ``at + n`` (``SUMS`` 0), else ``SUMS`` sums at ``at``: sum ``k`` over the program's
    neurons ``i`` with ``i % SUMS == k`` (``PERIODIC``), else ``i // (BLOCK // SUMS) == k``."""
    if SUMS == 0:
        tl.store(at + n, acc, mask=n_mask)
    elif SUMS == 1:
        tl.store(at, tl.sum(tl.where(n_mask, acc, 0.0), axis=0))
    elif PERIODIC:
        acc = tl.where(n_mask, acc, 0.0)
        tl.store(at + tl.arange(0, SUMS), tl.sum(tl.reshape(acc, (BLOCK // SUMS, SUMS)), axis=0))
    else:
        acc = tl.where(n_mask, acc, 0.0)
        tl.store(at + tl.arange(0, SUMS), tl.sum(tl.reshape(acc, (SUMS, BLOCK // SUMS)), axis=1))
