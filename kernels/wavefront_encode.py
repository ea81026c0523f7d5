"""Wavefront-model strip encoder: Triton twin of :func:`tricodec.wavefront_ref.encode_wavefront_lanes`, bit
for bit.

One program per strip, in three phases.  Pseudo-Python::

    for strip in range(n_strips):                                # program axis 0, in bounded launches
        for t in range(n_steps):                                 # forward, BLOCK_K symbols at a time
            (p, y, d, x) = coords(t, j);  ca, cb = contexts(ring, p, kinds[p], d, y)
            tok, n_extra, extra = token(zigzag(residuals[p, y0 + y, x] - 128))
            start[j], freq[j] = C[tok], C[tok + 1] - C[tok];  raw bits |= extra at prefix-sum offsets
            ring = residual;  count tok in (ca), (cb);  end of step: update the step's contexts
        K = states(symbols, sum(16 - floor(log2(freq)) + n_extra))      # the twin's _choose_states
        for t reversed, for round r reversed:                    # rANS is LIFO
            emit = x >= freq << 16 (lanes k of the round); words at descending positions, ascending k
            x = (x // freq) << 16 | x % freq + start
        scratch[slot, right-aligned] = [x_0 >> 16, x_0 & 0xFFFF, ..., x_K-1 ..., words]

then the wrapper gathers each strip's rANS words and raw words into one stream.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from tricodec.context_ref import ACT_MAX, N_KINDS, N_TOKENS, NB_B, NC_A, NC_B, Q_ADAPT
from tricodec.wavefront_ref import (MAX_STATES, MIX_BITS, RING, STATE_BUDGET, SYMBOLS_PER_STATE, _check_states,
                                    max_lane_words)

from ._host import RANS_L, need_tensor
from ._wavefront_jit import _contexts, _coords, _count, _end_of_step, _mixed, _step_spans, _strip_desc, \
    _strip_state, _token
from .wavefront_decode import STRIPS_PER_LAUNCH, StripState, check_model, launch_shape, strip_descriptors

BLOCK_K = MAX_STATES   # lanes of a vector step (pinned)
BLOCK_U = 128          # contexts per chunk of the table update (pinned)
SYMBOLS_PER_LAUNCH = 1 << 24   # bounds the per-symbol scratch of one launch (8 bytes a symbol + words)
NUM_WARPS = 4


@triton.jit
def _floor_log2(f):
    """floor(log2(f)) for 1 <= f <= 65536, in integers."""
    n = f * 0
    for b in tl.static_range(1, 17):
        n += (f >= (1 << b)).to(tl.int32)
    return n


@triton.jit
def _model_pass(res_ptr, kinds, ta, tb, ha, hb, sa, sb, ua, ub, fa, fb, la, lb, ring, bin_a_ptr, bin_b_ptr,
                weight_ptr, start_ptr, freq_ptr, raw_ptr, n_weight, update_steps, n_planes, height, width, y0, rows,
                ring_rows, NC_A: tl.constexpr, NC_B: tl.constexpr, N_TOKENS: tl.constexpr, Q_ADAPT: tl.constexpr,
                ACT_MAX: tl.constexpr, NB_B: tl.constexpr, MIX_BITS: tl.constexpr, RING: tl.constexpr,
                BLOCK_K: tl.constexpr, BLOCK_U: tl.constexpr):
    """Forward over the strip: (start, freq) of every symbol, raw bits -> (raw bits, estimated bits)."""
    kk = tl.arange(0, BLOCK_K)
    n_steps = (width - 1) + 2 * (rows - 1) + 2 * (n_planes - 1) + 1
    sym = 0
    rbit = (y0 * 0).to(tl.int64)   # int64: a huge strip has more than 2**31 bits
    est = (y0 * 0).to(tl.int64)
    list_n = 0
    for t in range(0, n_steps):
        lo0, lo1, lo2, lo3, o1, o2, o3, n_sym = _step_spans(t, n_planes, rows, width)
        for c0 in range(0, n_sym, BLOCK_K):
            j = c0 + kk
            act = j < n_sym
            p, yy, d, xx = _coords(j, t, lo0, lo1, lo2, lo3, o1, o2, o3)
            kind = tl.load(kinds + p, mask=act, other=0)
            ca, cb = _contexts(ring, bin_a_ptr, bin_b_ptr, p, kind, d, yy, width, ring_rows, act,
                               RING, ACT_MAX, NB_B)
            r = tl.load(res_ptr + (p * height + y0 + yy) * width + xx, mask=act, other=128).to(tl.int32) - 128
            tok, n_extra, extra = _token(tl.where(r >= 0, 2 * r, -2 * r - 1))
            row_a = ta + (kind * NC_A + ca) * (N_TOKENS + 1)
            row_b = tb + (kind * NC_B + cb) * (N_TOKENS + 1)
            c_lo = _mixed(row_a, row_b, tok, act)
            freq = _mixed(row_a, row_b, tok + 1, act) - c_lo
            tl.store(start_ptr + sym + j, c_lo, mask=act)
            tl.store(freq_ptr + sym + j, freq, mask=act)
            n_extra = tl.where(act, n_extra, 0)
            est += tl.sum(tl.where(act, 16 - _floor_log2(freq) + n_extra, 0), axis=0).to(tl.int64)
            bit = rbit + tl.cumsum(n_extra, axis=0) - n_extra
            sh = bit & 15
            has = n_extra > 0
            # symbols' bit ranges never overlap: OR-ing them in is order-free
            tl.atomic_or(raw_ptr + (bit >> 4), (extra << sh) & 0xFFFF, mask=has)
            tl.atomic_or(raw_ptr + (bit >> 4) + 1, extra >> (16 - sh), mask=has & (sh + n_extra > 16))
            rbit += tl.sum(n_extra, axis=0)
            tl.store(ring + (p * RING + (d & (RING - 1))) * ring_rows + yy, r, mask=act)
            _count(ta, tb, ha, hb, sa, sb, la, lb, list_n + j, kind, ca, cb, tok, act, act, NC_A, NC_B, N_TOKENS)
        sym += n_sym
        list_n += n_sym
        if ((t + 1) % update_steps == 0) | (t == n_steps - 1):
            _end_of_step(ta, tb, ha, hb, sa, sb, ua, ub, fa, fb, la, lb, list_n, weight_ptr, n_weight,
                         N_TOKENS, Q_ADAPT, MIX_BITS, BLOCK_U)
            list_n = 0
        else:
            tl.debug_barrier()   # this step's ring stores are read by the next step's other lanes
    return rbit, est


@triton.jit
def _states(n_sym, est, force_log2k, MAX_STATES: tl.constexpr, SYMBOLS_PER_STATE: tl.constexpr,
            STATE_BUDGET: tl.constexpr):
    """``wavefront_ref._choose_states`` (force_log2k < 0) or the forced count capped by ``max_states``
    -> log2 of the strip's rANS states."""
    log2k = n_sym * 0
    cap = n_sym * 0
    for _ in tl.static_range(7):
        grow = ((1 << log2k) < MAX_STATES) & ((2 << log2k) * SYMBOLS_PER_STATE <= n_sym)
        log2k = tl.where(grow, log2k + 1, log2k)
        cap = tl.where(((1 << cap) < MAX_STATES) & ((2 << cap) <= n_sym), cap + 1, cap)
    for _ in tl.static_range(7):
        log2k = tl.where((log2k > 0) & ((4 << log2k) * STATE_BUDGET * 8 > est), log2k - 1, log2k)
    return tl.where(force_log2k < 0, log2k, tl.minimum(force_log2k, cap))


@triton.jit
def _wavefront_encode_kernel(
    # pointers
    desc_ptr, res_flat_ptr, kind_ptr, ta_ptr, tb_ptr, ha_ptr, hb_ptr, sa_ptr, sb_ptr, ua_ptr, ub_ptr, fa_ptr, fb_ptr,
    la_ptr, lb_ptr, ring_ptr, bin_a_ptr, bin_b_ptr, weight_ptr, start_ptr, freq_ptr, raw_ptr, scratch_ptr,
    count_ptr,
    # sizes
    n_weight, update_steps, list_cap, ring_rows, strip_symbols, stride_raw, stride_words, force_log2k, first_strip,
    # meta-parameters
    NC_A: tl.constexpr, NC_B: tl.constexpr, N_KINDS: tl.constexpr, N_TOKENS: tl.constexpr,
    Q_ADAPT: tl.constexpr, ACT_MAX: tl.constexpr, NB_B: tl.constexpr, RANS_L: tl.constexpr,
    MIX_BITS: tl.constexpr, RING: tl.constexpr, MAX_STATES: tl.constexpr, SYMBOLS_PER_STATE: tl.constexpr,
    STATE_BUDGET: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_U: tl.constexpr,
):
    slot = tl.program_id(0).to(tl.int64)
    strip = slot + first_strip
    res_base, kinds_base, n_planes, height, width, y0, y1, _o, _n1, _n2, _k = _strip_desc(desc_ptr, strip)
    ta, tb, ha, hb, sa, sb, ua, ub, fa, fb, la, lb, ring = _strip_state(
        ta_ptr, tb_ptr, ha_ptr, hb_ptr, sa_ptr, sb_ptr, ua_ptr, ub_ptr, fa_ptr, fb_ptr, la_ptr, lb_ptr, ring_ptr,
        slot, list_cap, ring_rows, NC_A, NC_B, N_KINDS, N_TOKENS, RING)
    rows = y1 - y0
    start = start_ptr + slot * strip_symbols
    freq_p = freq_ptr + slot * strip_symbols
    rbit, est = _model_pass(res_flat_ptr + res_base, kind_ptr + kinds_base, ta, tb, ha, hb, sa, sb, ua, ub, fa, fb,
                            la, lb, ring, bin_a_ptr, bin_b_ptr, weight_ptr, start, freq_p, raw_ptr + slot * stride_raw,
                            n_weight, update_steps, n_planes, height, width, y0, rows, ring_rows, NC_A, NC_B,
                            N_TOKENS, Q_ADAPT, ACT_MAX, NB_B, MIX_BITS, RING, BLOCK_K, BLOCK_U)
    _emit_strip(start, freq_p, scratch_ptr, count_ptr, slot, strip, rows, n_planes, width, rbit, est, force_log2k,
                stride_words, RANS_L, MAX_STATES, SYMBOLS_PER_STATE, STATE_BUDGET, BLOCK_K)


@triton.jit
def _emit_strip(start, freq_p, scratch_ptr, count_ptr, slot, strip, rows, n_planes, width, rbit, est, force_log2k,
                stride_words, RANS_L: tl.constexpr, MAX_STATES: tl.constexpr, SYMBOLS_PER_STATE: tl.constexpr,
                STATE_BUDGET: tl.constexpr, BLOCK_K: tl.constexpr):
    """The strip's rANS pass (states, then LIFO over its steps and rounds) and its counts, from the
    (start, freq) of every symbol that the model pass stored."""
    n_total = rows * n_planes * width
    log2k = _states(n_total, est, force_log2k, MAX_STATES, SYMBOLS_PER_STATE, STATE_BUDGET)
    k_states = 1 << log2k
    tl.debug_barrier()   # start/freq were stored by other lanes
    kk = tl.arange(0, BLOCK_K)
    live_k = kk < k_states
    x = (kk * 0).to(tl.int64) + RANS_L
    top = scratch_ptr + slot * stride_words + stride_words - 1
    m = slot * 0
    end = n_total
    n_steps = (width - 1) + 2 * (rows - 1) + 2 * (n_planes - 1) + 1
    for tt in range(0, n_steps):
        t = n_steps - 1 - tt
        n_sym = _step_spans(t, n_planes, rows, width)[7]
        first = end - n_sym
        n_rounds = (n_sym + k_states - 1) // k_states
        for rr in range(0, n_rounds):
            r = n_rounds - 1 - rr
            j = r * k_states + kk
            act = live_k & (j < n_sym)
            f = tl.load(freq_p + first + j, mask=act, other=1).to(tl.int64)
            s = tl.load(start + first + j, mask=act, other=0).to(tl.int64)
            emit = (act & (x >= (f << 16))).to(tl.int32)
            n_emit = tl.sum(emit, axis=0)
            after = n_emit - tl.cumsum(emit, axis=0)      # emitters above this lane in the round
            tl.store(top - m - after, (x & 0xFFFF).to(tl.int32), mask=emit > 0)
            m += n_emit
            x = tl.where(emit > 0, x >> 16, x)
            x = tl.where(act, ((x // f) << 16) + (x % f) + s, x)
        end = first
    # final states, state 0 first in decode order: [x_0 >> 16, x_0 & 0xFFFF, x_1 >> 16, ...]
    at = top - m - 2 * (k_states - 1 - kk)
    tl.store(at, (x & 0xFFFF).to(tl.int32), mask=live_k)
    tl.store(at - 1, (x >> 16).to(tl.int32), mask=live_k)
    m += 2 * k_states
    tl.store(count_ptr + 3 * strip, m)
    tl.store(count_ptr + 3 * strip + 1, ((rbit + 15) >> 4).to(tl.int64))
    tl.store(count_ptr + 3 * strip + 2, log2k.to(tl.int64))


def encode_wavefront_lanes_batch(residuals_list, kinds_list, init_a, init_b, bin_a, bin_b, weight_lut,
                                 update_steps, lane_rows_list, states: int = 0) -> list:
    """Encode several images' strips in the same launches.

    Args:
        residuals_list: per image uint8 (P, H, W) on one device; kinds_list: per image int32 (P,).
        init_a, init_b, bin_a, bin_b, weight_lut, update_steps: the model's (as in the twin).
        lane_rows_list: per image rows per strip.
        states: as the twin's (0: the encoder chooses).

    Returns:
        per image (counts int64 (n_strips, 3), words int32 (W,)) on the residuals' device: the twin's.
    """
    n = len(residuals_list)
    if n == 0 or not len(kinds_list) == len(lane_rows_list) == n:
        raise ValueError("one residual array, kinds and lane_rows per image")
    residuals_list = [need_tensor("residuals", r, 3) for r in residuals_list]
    if any(r.dtype != torch.uint8 or r.numel() == 0 for r in residuals_list):
        raise ValueError("residuals must be non-empty uint8 (P, H, W)")
    dev = residuals_list[0].device
    shapes = [tuple(int(v) for v in r.shape) for r in residuals_list]
    if any(lr < 1 for lr in lane_rows_list) or any(p * h * w >= 1 << 31 for p, h, w in shapes):
        raise ValueError("lane_rows must be >= 1 and images at most 2**31 - 1 residuals")
    kinds_list, (init_a, init_b, bin_a, bin_b, weight_lut), update_steps = check_model(
        kinds_list, shapes, init_a, init_b, bin_a, bin_b, weight_lut, update_steps, dev)
    flat = torch.cat([r.contiguous().reshape(-1) for r in residuals_list])
    desc_np, images = strip_descriptors(shapes, lane_rows_list)
    desc = torch.from_numpy(desc_np).to(dev)
    kinds = torch.cat(kinds_list)
    n_strips = desc_np.shape[0]
    strip_symbols = int(((desc_np[:, 6] - desc_np[:, 5]) * desc_np[:, 2] * desc_np[:, 4]).max())
    stride_words = strip_symbols + 2 * MAX_STATES
    stride_raw = (6 * strip_symbols + 15) // 16 + 1
    per_launch = max(1, min(STRIPS_PER_LAUNCH, SYMBOLS_PER_LAUNCH // strip_symbols))
    list_cap, ring_rows = launch_shape(desc_np, update_steps)
    state = StripState(init_a, init_b, min(n_strips, per_launch), list_cap, ring_rows)
    slots = min(n_strips, per_launch)
    start = torch.empty(slots * strip_symbols, dtype=torch.int32, device=dev)
    freq = torch.empty(slots * strip_symbols, dtype=torch.int32, device=dev)
    raw = torch.empty(slots * stride_raw, dtype=torch.int32, device=dev)
    scratch = torch.empty(slots * stride_words, dtype=torch.int32, device=dev)
    counts = torch.empty((n_strips, 3), dtype=torch.int64, device=dev)
    pieces = []
    for first in range(0, n_strips, per_launch):
        g = min(per_launch, n_strips - first)
        raw.zero_()
        _wavefront_encode_kernel[(g,)](
            desc, flat, kinds, *state.reset(), bin_a, bin_b, weight_lut, start, freq, raw, scratch, counts,
            weight_lut.shape[0], update_steps, list_cap, ring_rows, strip_symbols, stride_raw, stride_words,
            _check_states(states).bit_length() - 1, first,
            NC_A=NC_A, NC_B=NC_B, N_KINDS=N_KINDS, N_TOKENS=N_TOKENS, Q_ADAPT=Q_ADAPT, ACT_MAX=ACT_MAX, NB_B=NB_B,
            RANS_L=RANS_L, MIX_BITS=MIX_BITS, RING=RING, MAX_STATES=MAX_STATES,
            SYMBOLS_PER_STATE=SYMBOLS_PER_STATE, STATE_BUDGET=STATE_BUDGET, BLOCK_K=BLOCK_K, BLOCK_U=BLOCK_U,
            num_warps=NUM_WARPS)
        pieces.append(_gather(scratch, raw, counts[first:first + g], stride_words, stride_raw))
    words_all = [w for piece in pieces for w in piece]
    out = []
    for first_strip, n_lanes, _, _ in images:
        c = counts[first_strip:first_strip + n_lanes]
        out.append((c, torch.cat(words_all[first_strip:first_strip + n_lanes])))
    return out


def _gather(scratch, raw, counts, stride_words, stride_raw) -> list:
    """Each strip of a launch -> its words: rANS words (right-aligned in its scratch slot), then raw words.
    (One read-back of the launch's counts sizes them.)"""
    host = counts.cpu().tolist()
    out = []
    for g, (m, n_raw, _) in enumerate(host):
        end = (g + 1) * stride_words
        out.append(torch.cat([scratch[end - m:end], raw[g * stride_raw:g * stride_raw + n_raw]]))
    return out


def encode_wavefront_lanes(residuals: torch.Tensor, kinds: torch.Tensor, init_a: torch.Tensor, init_b: torch.Tensor,
                           bin_a: torch.Tensor, bin_b: torch.Tensor, weight_lut: torch.Tensor, update_steps: int,
                           lane_rows: int, states: int = 0):
    """Encode residual planes with the wavefront model: the kernels' twin of
    :func:`tricodec.wavefront_ref.encode_wavefront_lanes`.

    Args:
        residuals: uint8 (P, H, W) on any device (the interpreter's CPU or a GPU).
        kinds: int32 (P,); init_a / init_b: int32 (3, NC_A, 25) / (3, NC_B, 25); bin_a, bin_b: int32
            (4096,); weight_lut: int32 (L,); all on the residuals' device.
        update_steps, lane_rows, states: as the twin's.

    Returns:
        (counts int64 (n_strips, 3), words int32 (W,)), the twin's values, on the residuals' device.
    """
    return encode_wavefront_lanes_batch([residuals], [kinds], init_a, init_b, bin_a, bin_b, weight_lut,
                                        update_steps, [lane_rows], states)[0]


__all__ = ["encode_wavefront_lanes", "encode_wavefront_lanes_batch", "max_lane_words"]
