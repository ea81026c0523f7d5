"""Context-model lane encoder: Triton twin of :func:`tricodec.context_ref.encode_context_lanes`, bit for bit.

One program per lane (a strip of ``lane_rows`` rows), in two passes over its symbols.  Pseudo-Python::

    for lane in range(n_lanes):                                  # program axis 0, in bounded launches
        for j, (y, p, xx) in enumerate(lane's symbols):          # forward: the model adapts
            ca, cb = contexts(residuals, p, kinds[p], y, xx)
            t, n_extra, extra = token(zigzag(residuals[p, y, xx] - 128))
            C = (A[kinds[p], ca] + B[kinds[p], cb] + 2 * arange(25)) >> 1
            start[j], freq[j] = C[t], C[t + 1] - C[t];  bits[j] = (n_extra, extra)
            adapt(A[kinds[p], ca], t); adapt(B[kinds[p], cb], t)
        x, m = RANS_L, 0
        for j in reversed(range(n)):                             # backward: rANS is LIFO
            if n_extra[j]: push(extra[j] << (16 - n_extra[j]), 1 << (16 - n_extra[j]))
            push(start[j], freq[j])                              # push = renormalise, then x = C(x)
        scratch[lane's slot, right-aligned] = [x >> 16, x & 0xFFFF, w_m, ..., w_1]

then ``lane_compact.py`` gathers the lanes' words into one stream (offsets by ``torch.cumsum``).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from tricodec.context_ref import ACT_MAX, MAX_WORDS_PER_SYMBOL, N_KINDS, N_TOKENS, NB_B, NC_A, NC_B, Q_ADAPT

from ._context_jit import _adapt_both, _contexts, _lane_desc, _lane_state, _mixed, _pick, _rows, _token
from ._host import RANS_L, need_tensor
from .context_decode import LANES_PER_LAUNCH, LaneState, check_model, lane_descriptors
from .lane_compact import compact_lanes

TOK = 32            # table row width in the kernel (25 real entries; pinned)
SYMBOLS_PER_LAUNCH = 1 << 24   # bounds the per-symbol scratch of one launch (12 bytes a symbol)
NUM_WARPS = 1


@triton.jit
def _context_encode_kernel(
    # pointers
    desc_ptr, flat_ptr, kind_ptr, ta_ptr, tb_ptr, na_ptr, nb_ptr, bin_a_ptr, bin_b_ptr, rate_ptr,
    start_ptr, freq_ptr, extra_ptr, scratch_ptr, count_ptr,
    # sizes
    n_rate, lane_symbols, stride_lane, first_lane,
    # meta-parameters
    NC_A: tl.constexpr, NC_B: tl.constexpr, N_KINDS: tl.constexpr, N_TOKENS: tl.constexpr,
    Q_ADAPT: tl.constexpr, ACT_MAX: tl.constexpr, NB_B: tl.constexpr, RANS_L: tl.constexpr, TOK: tl.constexpr,
):
    slot = tl.program_id(0).to(tl.int64)          # this launch's working-state and scratch slot
    lane = slot + first_lane
    res_ptr, kinds, n_planes, height, width, y0, y1 = _lane_desc(desc_ptr, lane, flat_ptr, kind_ptr)
    ta, tb, na, nb = _lane_state(ta_ptr, tb_ptr, na_ptr, nb_ptr, slot, NC_A, NC_B, N_KINDS, N_TOKENS)
    sym0 = slot * lane_symbols
    j = sym0
    for y in range(y0, y1):
        for p in range(n_planes):
            kind = tl.load(kinds + p)
            for xx in range(width):
                ca, cb = _contexts(res_ptr, bin_a_ptr, bin_b_ptr, p, kind, y, xx, y0, height, width, ACT_MAX, NB_B)
                row_a, row_b, used_a, used_b = _rows(ta, tb, na, nb, kind, ca, cb, NC_A, NC_B, N_TOKENS)
                c = _mixed(row_a, row_b, Q_ADAPT, N_TOKENS, TOK)
                r = tl.load(res_ptr + (p * height + y) * width + xx).to(tl.int32) - 128
                u = tl.where(r >= 0, 2 * r, -2 * r - 1)
                t, n_extra, extra = _token(u)
                lo = _pick(c, t, TOK)
                tl.store(start_ptr + j, lo)
                tl.store(freq_ptr + j, _pick(c, t + 1, TOK) - lo)
                tl.store(extra_ptr + j, (n_extra << 8) | extra)
                j = j + 1
                _adapt_both(row_a, row_b, used_a, used_b, rate_ptr, n_rate, t, Q_ADAPT, N_TOKENS, TOK)
                # the rows, use counters (and residual) just stored are read by every thread next symbol
                tl.debug_barrier()
    tl.debug_barrier()   # start/freq/extra were stored by other threads
    top = slot * stride_lane + stride_lane - 1
    x = (lane * 0 + RANS_L).to(tl.int64)
    m = lane * 0
    n = j - sym0
    for i in range(n):
        k = j - 1 - i
        e = tl.load(extra_ptr + k)
        n_extra = e >> 8
        shift = 16 - n_extra
        fe = ((x * 0 + 1) << shift)
        has = n_extra > 0
        emit = has & (x >= (fe << 16))
        tl.store(scratch_ptr + top - m, (x & 0xFFFF).to(tl.uint16), mask=emit)
        m = m + emit.to(tl.int64)
        x = tl.where(emit, x >> 16, x)
        x = tl.where(has, ((x // fe) << 16) + x % fe + ((e & 0xFF).to(tl.int64) << shift), x)
        f = tl.load(freq_ptr + k).to(tl.int64)
        emit = x >= (f << 16)
        tl.store(scratch_ptr + top - m, (x & 0xFFFF).to(tl.uint16), mask=emit)
        m = m + emit.to(tl.int64)
        x = tl.where(emit, x >> 16, x)
        x = ((x // f) << 16) + x % f + tl.load(start_ptr + k).to(tl.int64)
    tl.store(scratch_ptr + top - m, (x & 0xFFFF).to(tl.uint16))
    tl.store(scratch_ptr + top - m - 1, (x >> 16).to(tl.uint16))
    tl.store(count_ptr + slot, (m + 2).to(tl.int32))


def encode_context_lanes_batch(residuals_list, kinds_list, init_a, init_b, bin_a, bin_b, rate_lut,
                               lane_rows_list) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Encode several images' residual planes in the same launches (all their lanes side by side).

    Args:
        residuals_list: per image, uint8 (P, H, W) on the device; kinds_list: per image int32 (P,);
            lane_rows_list: per image rows per lane (>= 1).
        init_a, init_b, bin_a, bin_b, rate_lut: the model's arrays (as in :func:`encode_context_lanes`).

    Returns:
        per image, (counts int32 (n_lanes,), words uint16 (sum(counts),)) on the device.
    """
    n = len(residuals_list)
    if n == 0 or not len(kinds_list) == len(lane_rows_list) == n:
        raise ValueError("one residual tensor, kinds and lane_rows per image")
    residuals_list = [need_tensor("residuals", r, 3) for r in residuals_list]
    for r, lane_rows in zip(residuals_list, lane_rows_list):
        if r.dtype != torch.uint8 or r.numel() == 0 or lane_rows < 1:
            raise ValueError("need non-empty uint8 (P, H, W) residual tensors and lane_rows >= 1")
        if r.numel() >= 1 << 31:
            raise ValueError("at most 2**31 - 1 residuals (the kernel indexes them with int32)")
    dev = residuals_list[0].device
    shapes = [tuple(r.shape) for r in residuals_list]
    kinds_list, (init_a, init_b, bin_a, bin_b, rate_lut) = check_model(kinds_list, shapes, init_a, init_b, bin_a,
                                                                       bin_b, rate_lut, dev)
    if any(r.device != dev for r in residuals_list):
        raise ValueError("every tensor must be on one device")
    flat = residuals_list[0].reshape(-1).contiguous() if n == 1 else \
        torch.cat([r.reshape(-1) for r in residuals_list])
    desc_np, images = lane_descriptors(shapes, lane_rows_list)
    desc = torch.from_numpy(desc_np).to(dev)
    kinds = torch.cat(kinds_list)
    n_lanes = desc_np.shape[0]
    lane_symbols = max(min(lr, h) * p * w for (p, h, w), lr in zip(shapes, lane_rows_list))
    stride = MAX_WORDS_PER_SYMBOL * lane_symbols + 2
    # Lanes go in launches of at most `per` lanes, so the per-symbol scratch stays bounded.
    per = max(1, min(LANES_PER_LAUNCH, SYMBOLS_PER_LAUNCH // lane_symbols, n_lanes))
    start = torch.empty(per * lane_symbols, dtype=torch.int32, device=dev)
    freq = torch.empty_like(start)
    extra = torch.empty_like(start)
    scratch = torch.empty(per * stride, dtype=torch.uint16, device=dev)
    counts = torch.empty(n_lanes, dtype=torch.int32, device=dev)
    state = LaneState(init_a, init_b, per)
    pieces = []
    for first in range(0, n_lanes, per):
        g = min(per, n_lanes - first)
        ta, tb, na, nb = state.reset()
        _context_encode_kernel[(g,)](desc, flat, kinds, ta, tb, na, nb, bin_a, bin_b, rate_lut,
                                     start, freq, extra, scratch, counts[first:],
                                     rate_lut.shape[0], lane_symbols, stride, first,
                                     NC_A=NC_A, NC_B=NC_B, N_KINDS=N_KINDS, N_TOKENS=N_TOKENS, Q_ADAPT=Q_ADAPT,
                                     ACT_MAX=ACT_MAX, NB_B=NB_B, RANS_L=RANS_L, TOK=TOK, num_warps=NUM_WARPS)
        c = counts[first:first + g]
        ends = torch.cumsum(c, 0, dtype=torch.int64)
        pieces.append(compact_lanes(scratch[:g * stride], c, ends - c, int(ends[-1].item()), stride))
    words = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
    lane_words = counts.to(torch.int64).cpu().tolist()
    out, w0 = [], 0
    for first_lane, k, _, _ in images:
        w1 = w0 + sum(lane_words[first_lane:first_lane + k])
        out.append((counts[first_lane:first_lane + k], words[w0:w1]))
        w0 = w1
    return out


def encode_context_lanes(residuals: torch.Tensor, kinds: torch.Tensor, init_a: torch.Tensor, init_b: torch.Tensor,
                         bin_a: torch.Tensor, bin_b: torch.Tensor, rate_lut: torch.Tensor, lane_rows: int):
    """Encode residual planes with the adaptive context model; same contract and values as the twin.

    Args:
        residuals: uint8 (P, H, W) on the device, planes in coding order.
        kinds: int32 (P,); init_a / init_b: int32 (3, NC_A, 25) / (3, NC_B, 25); bin_a, bin_b: int32
            (4096,); rate_lut: int32 (L,); all on residuals' device.
        lane_rows: image rows per lane (>= 1).

    Returns:
        (counts, words) on the device: counts int32 (n_lanes,), words uint16 (sum(counts),).
    """
    return encode_context_lanes_batch([residuals], [kinds], init_a, init_b, bin_a, bin_b, rate_lut, [lane_rows])[0]
