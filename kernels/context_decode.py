"""Context-model lane decoder: Triton twin of :func:`tricodec.context_ref.decode_context_lanes`, bit for bit.

One program per lane (a strip of ``lane_rows`` rows); the lane's two adaptive table sets are its own
copies in global memory, the 25-entry table rows are ``TOK``-wide vectors.  Pseudo-Python::

    for lane in range(n_lanes):                                  # program axis 0, LANES_PER_LAUNCH a launch
        x = words[pos] << 16 | words[pos + 1]; pos += 2
        for y in lane's rows:  for p in planes:  for xx in range(W):
            ca, cb = contexts(out, p, kinds[p], y, xx)           # decoded residuals of this lane only
            C = (A[kinds[p], ca] + B[kinds[p], cb] + 2 * arange(25)) >> 1
            slot = x & 0xFFFF
            t = count(C[1:25] <= slot)                           # C strictly increases, C[24] = 65536
            x = (C[t + 1] - C[t]) * (x >> 16) + slot - C[t];  renormalise (one word at most)
            if t >= 16: extra = (x & 0xFFFF) >> (16 - n_extra(t)); x = ...; renormalise
            out[p, y, xx] = 128 + unzigzag(untoken(t, extra))
            adapt(A[kinds[p], ca], t); adapt(B[kinds[p], cb], t)
        status[lane] = ran out of words, or words left / final state != RANS_L

Triton has no ``break``: after an error a lane keeps looping with every load masked and its state
frozen, and reports the error in ``status``; the wrapper raises :class:`tricodec.errors.DecodeError`.
"""
from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from tricodec.context_ref import ACT_MAX, N_KINDS, N_TOKENS, NB_B, NC_A, NC_B, Q_ADAPT, max_lane_words
from tricodec.rans_ref import check_counts
from tricodec.errors import DecodeError

from ._context_jit import _adapt_both, _contexts, _lane_desc, _lane_state, _mixed, _pick, _pop, _rows
from ._host import RANS_L, as_int, need_tensor

TOK = 32            # table row width in the kernel (25 real entries; pinned)
NUM_WARPS = 1


@triton.jit
def _context_decode_kernel(
    # pointers
    desc_ptr, count_ptr, offset_ptr, word_ptr, kind_ptr, ta_ptr, tb_ptr, na_ptr, nb_ptr, bin_a_ptr, bin_b_ptr,
    rate_ptr, out_ptr, status_ptr,
    # sizes
    n_rate, first_lane,
    # meta-parameters
    NC_A: tl.constexpr, NC_B: tl.constexpr, N_KINDS: tl.constexpr, N_TOKENS: tl.constexpr,
    Q_ADAPT: tl.constexpr, ACT_MAX: tl.constexpr, NB_B: tl.constexpr, RANS_L: tl.constexpr, TOK: tl.constexpr,
):
    state_slot = tl.program_id(0).to(tl.int64)    # this launch's working-state slot
    lane = state_slot + first_lane
    res_ptr, kinds, n_planes, height, width, y0, y1 = _lane_desc(desc_ptr, lane, out_ptr, kind_ptr)
    pos = tl.load(offset_ptr + lane)
    end = pos + tl.load(count_ptr + lane).to(tl.int64)
    x = ((tl.load(word_ptr + pos).to(tl.int64) & 0xFFFF) << 16) | (tl.load(word_ptr + pos + 1).to(tl.int64) & 0xFFFF)
    pos = pos + 2
    ta, tb, na, nb = _lane_state(ta_ptr, tb_ptr, na_ptr, nb_ptr, state_slot, NC_A, NC_B, N_KINDS, N_TOKENS)
    bad = (lane * 0).to(tl.int32)
    for y in range(y0, y1):
        for p in range(n_planes):
            kind = tl.load(kinds + p)
            for xx in range(width):
                ca, cb = _contexts(res_ptr, bin_a_ptr, bin_b_ptr, p, kind, y, xx, y0, height, width, ACT_MAX, NB_B)
                row_a, row_b, used_a, used_b = _rows(ta, tb, na, nb, kind, ca, cb, NC_A, NC_B, N_TOKENS)
                c = _mixed(row_a, row_b, Q_ADAPT, N_TOKENS, TOK)
                i = tl.arange(0, TOK)
                slot = x & 0xFFFF
                t = tl.sum(((i >= 1) & (c <= slot)).to(tl.int32), axis=0)
                lo = _pick(c, t, TOK).to(tl.int64)
                hi = _pick(c, t + 1, TOK).to(tl.int64)
                x, pos, bad = _pop(x, hi - lo, slot - lo, bad == 0, word_ptr, pos, end, bad, RANS_L)
                n_extra = tl.where(t >= 16, 3 + ((t - 16) >> 1), 0)
                has_extra = (n_extra > 0) & (bad == 0)
                shift = 16 - n_extra
                slot = x & 0xFFFF
                extra = tl.where(has_extra, slot >> shift, 0)
                x, pos, bad = _pop(x, (x * 0 + 1) << shift, slot - (extra << shift), has_extra, word_ptr, pos, end,
                                   bad, RANS_L)
                n = n_extra + 1
                one = t * 0 + 1
                u = tl.where(t < 16, t, (one << n) | (((t - 16) & 1) << (n - 1)) | extra.to(tl.int32))
                r = tl.where((u & 1) == 0, u >> 1, -((u + 1) >> 1))
                tl.store(res_ptr + (p * height + y) * width + xx, (r + 128).to(tl.uint8))
                _adapt_both(row_a, row_b, used_a, used_b, rate_ptr, n_rate, t, Q_ADAPT, N_TOKENS, TOK)
                # the rows, use counters (and residual) just stored are read by every thread next symbol
                tl.debug_barrier()
    bad = tl.where((bad == 0) & ((pos != end) | (x != RANS_L)), 1, bad)
    tl.store(status_ptr + lane, bad)


LANES_PER_LAUNCH = 256   # lanes in flight per launch: bounds the working state (~0.55 MB a lane)


class LaneState:
    """Working tables and use counters for ``slots`` lanes at a time, reset before every launch (a hostile
    file with thousands of one-row lanes then costs launches, not memory)."""

    def __init__(self, init_a: torch.Tensor, init_b: torch.Tensor, slots: int):
        self.init_a, self.init_b = init_a, init_b
        dev = init_a.device
        self.ta = torch.empty((slots,) + tuple(init_a.shape), dtype=torch.int32, device=dev)
        self.tb = torch.empty((slots,) + tuple(init_b.shape), dtype=torch.int32, device=dev)
        self.na = torch.empty((slots, N_KINDS, NC_A), dtype=torch.int32, device=dev)
        self.nb = torch.empty((slots, N_KINDS, NC_B), dtype=torch.int32, device=dev)

    def reset(self) -> tuple:
        self.ta.copy_(self.init_a.unsqueeze(0).expand_as(self.ta))
        self.tb.copy_(self.init_b.unsqueeze(0).expand_as(self.tb))
        self.na.zero_()
        self.nb.zero_()
        return self.ta, self.tb, self.na, self.nb


def check_model(kinds_list, shapes, init_a, init_b, bin_a, bin_b, rate_lut, device) -> tuple[list, list]:
    """The twin's ``check_model_arrays`` for every image -> (int32 kinds per image, [init_a, init_b, bin_a,
    bin_b, rate_lut] as int32 contiguous tensors), all on ``device``."""
    from tricodec.context_ref import check_model_arrays

    names = ("init_a", "init_b", "bin_a", "bin_b", "rate_lut")
    arrays = [need_tensor(n, t) for n, t in zip(names, (init_a, init_b, bin_a, bin_b, rate_lut))]
    kinds_list = [need_tensor("kinds", k) for k in kinds_list]
    if any(t.device != device for t in arrays + kinds_list):
        raise ValueError("every tensor must be on one device")
    arrays = [as_int(n, t, torch.int32) for n, t in zip(names, arrays)]
    kinds_list = [as_int("kinds", k, torch.int32) for k in kinds_list]
    host = [t.cpu().numpy() for t in arrays]
    for k, shape in zip(kinds_list, shapes):
        check_model_arrays(k.cpu().numpy(), *host, int(shape[0]))
    return kinds_list, arrays


def lane_descriptors(shapes, lane_rows_list) -> tuple:
    """int64 (n_lanes, 8) descriptors of every lane of every image (residual base, kinds base, P, H, W,
    first row, end row, 0), and each image's (first lane, lane count, residual base, size)."""
    rows, images = [], []
    res_base = kinds_base = 0
    for (n_planes, h, w), lane_rows in zip(shapes, lane_rows_list):
        n_lanes = -(-h // lane_rows)
        images.append((len(rows), n_lanes, res_base, n_planes * h * w))
        for lane in range(n_lanes):
            y0 = lane * lane_rows
            rows.append((res_base, kinds_base, n_planes, h, w, y0, min(h, y0 + lane_rows), 0))
        res_base += n_planes * h * w
        kinds_base += n_planes
    return np.array(rows, dtype=np.int64).reshape(-1, 8), images


def decode_context_lanes_batch(counts_list, words_list, shapes, kinds_list, init_a, init_b, bin_a, bin_b,
                               rate_lut, lane_rows_list) -> list[torch.Tensor]:
    """Decode several images' lanes in the same launches (all their lanes side by side).

    Args:
        counts_list, words_list: per image, integer (n_lanes,) and uint16 or int32 (W,).
        shapes: per image (P, H, W); kinds_list: per image int32 (P,); lane_rows_list: per image rows per lane.
        init_a, init_b, bin_a, bin_b, rate_lut: the model's arrays (as in :func:`decode_context_lanes`).

    Returns:
        per image, uint8 (P, H, W) on the inputs' device.

    Raises:
        DecodeError: as the twin, for the first bad image (prefixed "image i: " when there are several).
    """
    n = len(shapes)
    if n == 0 or not len(counts_list) == len(words_list) == len(kinds_list) == len(lane_rows_list) == n:
        raise ValueError("one counts, words, shape, kinds and lane_rows per image")
    counts_list = [as_int("counts", need_tensor("counts", c, 1), torch.int64) for c in counts_list]
    dev = counts_list[0].device
    shapes = [tuple(int(v) for v in sh) for sh in shapes]
    kinds_list, (init_a, init_b, bin_a, bin_b, rate_lut) = check_model(kinds_list, shapes, init_a, init_b, bin_a,
                                                                       bin_b, rate_lut, dev)
    words_list = [need_tensor("words", w, 1) for w in words_list]
    if any(c.device != dev or w.device != dev for c, w in zip(counts_list, words_list)):
        raise ValueError("every tensor must be on one device")

    def where(i: int) -> str:
        return f"image {i}: " if n > 1 else ""

    for i, ((n_planes, h, w), c, lane_rows) in enumerate(zip(shapes, counts_list, lane_rows_list)):
        if n_planes * h * w >= 1 << 31:
            raise ValueError("at most 2**31 - 1 residuals (the kernel indexes them with int32)")
        if lane_rows < 1 or c.shape[0] != -(-h // lane_rows):
            raise DecodeError(where(i) + "lane table does not match the image size")
    stats = torch.stack([torch.stack([c.min(), c.max(), c.sum()]) for c in counts_list]).tolist()
    for i, ((c_min, c_max, c_sum), words, shape, lane_rows) in enumerate(zip(stats, words_list, shapes, lane_rows_list)):
        try:
            check_counts(c_min, c_max, c_sum, words.shape[0], max_lane_words(shape, lane_rows))
        except DecodeError as e:
            raise DecodeError(where(i) + str(e)) from None
    if n == 1 and words_list[0].dtype in (torch.uint16, torch.int32):
        words = words_list[0].contiguous()
    else:
        words = torch.cat([as_int("words", w, torch.int32) for w in words_list])
    word_base = torch.tensor([0] + [w.shape[0] for w in words_list[:-1]], dtype=torch.int64, device=dev).cumsum(0)
    counts = torch.cat(counts_list)
    offsets = torch.cat([torch.cumsum(c, 0) - c + b for c, b in zip(counts_list, word_base)])
    desc_np, images = lane_descriptors(shapes, lane_rows_list)
    desc = torch.from_numpy(desc_np).to(dev)
    kinds = torch.cat(kinds_list)
    n_lanes = desc_np.shape[0]
    out = torch.empty(sum(p * h * w for p, h, w in shapes), dtype=torch.uint8, device=dev)
    status = torch.empty(n_lanes, dtype=torch.int32, device=dev)
    state = LaneState(init_a, init_b, min(n_lanes, LANES_PER_LAUNCH))
    for first in range(0, n_lanes, LANES_PER_LAUNCH):
        ta, tb, na, nb = state.reset()
        _context_decode_kernel[(min(LANES_PER_LAUNCH, n_lanes - first),)](
            desc, counts, offsets, words, kinds, ta, tb, na, nb, bin_a, bin_b, rate_lut, out, status,
            rate_lut.shape[0], first,
            NC_A=NC_A, NC_B=NC_B, N_KINDS=N_KINDS, N_TOKENS=N_TOKENS, Q_ADAPT=Q_ADAPT,
            ACT_MAX=ACT_MAX, NB_B=NB_B, RANS_L=RANS_L, TOK=TOK, num_warps=NUM_WARPS)
    first_bad, n_bad = torch.stack([status.to(torch.int64).argmax(), status.sum(dtype=torch.int64)]).tolist()
    if n_bad:
        i = max(k for k, img in enumerate(images) if img[0] <= first_bad)
        raise DecodeError(where(i) + f"corrupted entropy-coded data in lane {first_bad - images[i][0]}")
    return [out[base:base + size].view(shape) for (_, _, base, size), shape in zip(images, shapes)]


def decode_context_lanes(counts: torch.Tensor, words: torch.Tensor, shape: tuple, kinds: torch.Tensor,
                         init_a: torch.Tensor, init_b: torch.Tensor, bin_a: torch.Tensor, bin_b: torch.Tensor,
                         rate_lut: torch.Tensor, lane_rows: int) -> torch.Tensor:
    """Decode what :func:`tricodec.kernels.context_encode.encode_context_lanes` (or its twin) wrote.

    Args:
        counts: integer (n_lanes,), words: uint16 or int32 (W,): the lane table and data.
        shape: (P, H, W) of the residual planes.
        kinds: int32 (P,); init_a / init_b: int32 (3, NC_A, 25) / (3, NC_B, 25); bin_a, bin_b: int32
            (4096,); rate_lut: int32 (L,); all on counts' device, as the encoder had them.
        lane_rows: rows per lane.

    Returns:
        uint8 (P, H, W) on counts' device: the residual symbols.

    Raises:
        DecodeError: the lane table does not fit, or a lane is corrupted. ValueError: malformed model arrays.
    """
    return decode_context_lanes_batch([counts], [words], [shape], [kinds], init_a, init_b, bin_a, bin_b, rate_lut,
                                      [lane_rows])[0]
