"""Wavefront-model strip decoder: Triton twin of :func:`tricodec.wavefront_ref.decode_wavefront_lanes`, bit
for bit.

One program per strip; a step's symbols are decoded ``K`` at a time (one per rANS state, K <= BLOCK_K),
the rest of the program's work is vectors over them.  Pseudo-Python::

    for strip in range(n_strips):                                # program axis 0, in bounded launches
        x[k] = words[2k] << 16 | words[2k + 1] for k < K;  pos = 2K;  rbit = 0
        for t in range(n_steps):                                 # dependent steps: O(W + rows)
            for r in range(ceil(N_t / K)):                       # rounds: K symbols at once
                j = r * K + arange(K);  (p, y, d, x) = coords(t, j)
                ca, cb = contexts(ring, p, kinds[p], d, y)       # earlier diagonals only
                tok = search(C, x & 0xFFFF), C = (A[ca] + B[cb] + 2i) >> 1   (binary search)
                x = freq * (x >> 16) + slot - start;  need = x < 2^16
                x = x << 16 | words[pos + exclusive_cumsum(need)] where need;  pos += sum(need)
                extra = raw bits at rbit + exclusive_cumsum(n_extra);  rbit += sum(n_extra)
                out, ring = residual(tok, extra);  count tok in (ca), (cb)
            barrier; update the step's contexts once each; barrier; clear counts; barrier
        status[strip] = ran out of words / words left / padding bits / states != 2^16

Triton has no ``break``: after an error a strip keeps looping with its state frozen and reports the
error in ``status``; the wrapper raises :class:`tricodec.errors.DecodeError`.
"""
from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from tricodec.context_ref import ACT_MAX, N_KINDS, N_TOKENS, NB_B, NC_A, NC_B, Q_ADAPT
from tricodec.errors import DecodeError
from tricodec.wavefront_ref import MAX_STATES, MIX_BITS, RING, check_wavefront_lanes

from ._host import RANS_L, as_int, need_tensor
from ._wavefront_jit import (_contexts, _coords, _count, _end_of_step, _mixed, _step_spans, _strip_desc,
                             _strip_state, _untoken)

BLOCK_K = MAX_STATES   # lanes of a round (pinned)
BLOCK_U = 128          # contexts per chunk of the table update (pinned)
NUM_WARPS = 4


@triton.jit
def _wavefront_decode_kernel(
    # pointers
    desc_ptr, word_ptr, kind_ptr, ta_ptr, tb_ptr, ha_ptr, hb_ptr, sa_ptr, sb_ptr, ua_ptr, ub_ptr, fa_ptr, fb_ptr,
    la_ptr, lb_ptr, ring_ptr, bin_a_ptr, bin_b_ptr, weight_ptr, out_ptr, status_ptr, stats_ptr,
    # sizes
    n_weight, update_steps, list_cap, ring_rows, first_strip,
    # meta-parameters
    NC_A: tl.constexpr, NC_B: tl.constexpr, N_KINDS: tl.constexpr, N_TOKENS: tl.constexpr,
    Q_ADAPT: tl.constexpr, ACT_MAX: tl.constexpr, NB_B: tl.constexpr, RANS_L: tl.constexpr,
    MIX_BITS: tl.constexpr, RING: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_U: tl.constexpr,
):
    slot = tl.program_id(0).to(tl.int64)
    strip = slot + first_strip
    res_base, kinds_base, n_planes, height, width, y0, y1, pos, n_rans, n_raw, log2k = _strip_desc(desc_ptr, strip)
    res_ptr = out_ptr + res_base
    kinds = kind_ptr + kinds_base
    ta, tb, ha, hb, sa, sb, ua, ub, fa, fb, la, lb, ring = _strip_state(
        ta_ptr, tb_ptr, ha_ptr, hb_ptr, sa_ptr, sb_ptr, ua_ptr, ub_ptr, fa_ptr, fb_ptr, la_ptr, lb_ptr, ring_ptr,
        slot, list_cap, ring_rows, NC_A, NC_B, N_KINDS, N_TOKENS, RING)
    rows = y1 - y0
    k_states = 1 << log2k
    end = pos + n_rans
    raw = word_ptr + end
    kk = tl.arange(0, BLOCK_K)
    live_k = kk < k_states
    hi_w = tl.load(word_ptr + pos + 2 * kk, mask=live_k, other=0).to(tl.int64) & 0xFFFF
    lo_w = tl.load(word_ptr + pos + 2 * kk + 1, mask=live_k, other=0).to(tl.int64) & 0xFFFF
    x = tl.where(live_k, (hi_w << 16) | lo_w, RANS_L)
    pos = pos + 2 * k_states
    bad = tl.where(n_rans < 2 * k_states, 1, 0)
    rbit = pos * 0
    rounds = pos * 0
    list_n = 0
    n_steps = (width - 1) + 2 * (rows - 1) + 2 * (n_planes - 1) + 1
    for t in range(0, n_steps):
        lo0, lo1, lo2, lo3, o1, o2, o3, n_sym = _step_spans(t, n_planes, rows, width)
        for r in range(0, (n_sym + k_states - 1) // k_states):
            j = r * k_states + kk
            act = live_k & (j < n_sym)
            live = act & ((j * 0 + bad) == 0)
            p, yy, d, xx = _coords(j, t, lo0, lo1, lo2, lo3, o1, o2, o3)
            kind = tl.load(kinds + p, mask=act, other=0)
            ca, cb = _contexts(ring, bin_a_ptr, bin_b_ptr, p, kind, d, yy, width, ring_rows, act,
                               RING, ACT_MAX, NB_B)
            row_a = ta + (kind * NC_A + ca) * (N_TOKENS + 1)
            row_b = tb + (kind * NC_B + cb) * (N_TOKENS + 1)
            # the token: C(lo) <= slot < C(hi) holds from (0, 24) on, C strictly increases
            slot_v = x & 0xFFFF
            t_lo = kk * 0
            t_hi = t_lo + N_TOKENS
            for _ in tl.static_range(5):
                mid = (t_lo + t_hi) >> 1
                le = _mixed(row_a, row_b, mid, act).to(tl.int64) <= slot_v
                t_lo = tl.where(le, mid, t_lo)
                t_hi = tl.where(le, t_hi, mid)
            tok = t_lo
            c_lo = _mixed(row_a, row_b, tok, act).to(tl.int64)
            c_hi = _mixed(row_a, row_b, tok + 1, act).to(tl.int64)
            x = tl.where(live, (c_hi - c_lo) * (x >> 16) + slot_v - c_lo, x)
            need = (live & (x < RANS_L)).to(tl.int32)
            before = tl.cumsum(need, axis=0) - need
            take = (need > 0) & (pos + before < end)
            w = tl.load(word_ptr + pos + before, mask=take, other=0).to(tl.int64) & 0xFFFF
            x = tl.where(take, (x << 16) | w, x)
            n_need = tl.sum(need, axis=0)
            bad = tl.where(pos + n_need > end, 1, bad)
            pos = pos + n_need
            # raw extra bits, in coding order: bit offsets are a prefix sum
            n_extra = tl.where(live & (tok >= 16), 3 + ((tok - 16) >> 1), 0)
            bit = rbit + tl.cumsum(n_extra, axis=0) - n_extra
            wi = bit >> 4
            has = n_extra > 0
            w0 = tl.load(raw + wi, mask=has & (wi < n_raw), other=0).to(tl.int64) & 0xFFFF
            w1 = tl.load(raw + wi + 1, mask=has & (wi + 1 < n_raw), other=0).to(tl.int64) & 0xFFFF
            extra = (((w0 | (w1 << 16)) >> (bit & 15)) & ((1 << n_extra) - 1)).to(tl.int32)
            rbit = rbit + tl.sum(n_extra, axis=0)
            bad = tl.where(rbit > 16 * n_raw, 1, bad)
            res = _untoken(tok, extra)
            tl.store(res_ptr + (p * height + y0 + yy) * width + xx, (res + 128).to(tl.uint8), mask=live)
            tl.store(ring + (p * RING + (d & (RING - 1))) * ring_rows + yy, res, mask=live)
            _count(ta, tb, ha, hb, sa, sb, la, lb, list_n + j, kind, ca, cb, tok, live, act, NC_A, NC_B, N_TOKENS)
            rounds += 1
        list_n += n_sym
        if ((t + 1) % update_steps == 0) | (t == n_steps - 1):
            _end_of_step(ta, tb, ha, hb, sa, sb, ua, ub, fa, fb, la, lb, list_n, weight_ptr, n_weight,
                         N_TOKENS, Q_ADAPT, MIX_BITS, BLOCK_U)
            list_n = 0
        else:
            tl.debug_barrier()   # this step's ring stores are read by the next step's other lanes
    last = tl.load(raw + (rbit >> 4), mask=(rbit & 15) != 0, other=0).to(tl.int64) & 0xFFFF
    bad = tl.where((pos != end) | (((rbit + 15) >> 4) != n_raw) | ((last >> (rbit & 15)) != 0), 1, bad)
    bad = tl.where(tl.sum((live_k & (x != RANS_L)).to(tl.int32), axis=0) > 0, 1, bad)
    tl.store(status_ptr + strip, bad)
    tl.store(stats_ptr + 2 * strip, n_steps.to(tl.int64))
    tl.store(stats_ptr + 2 * strip + 1, rounds)


STRIPS_PER_LAUNCH = 256   # strips in flight per launch: bounds the working state (~1.5 MB a strip)


class StripState:
    """Working tables, counts, flags, context lists and rings for ``slots`` strips at a time, reset before
    every launch (a hostile file with countless strips costs launches, not memory)."""

    def __init__(self, init_a: torch.Tensor, init_b: torch.Tensor, slots: int, list_cap: int, ring_rows: int):
        self.init_a, self.init_b = init_a, init_b
        dev = init_a.device
        na, nb = N_KINDS * NC_A, N_KINDS * NC_B

        def z(*shape):
            return torch.zeros(shape, dtype=torch.int32, device=dev)

        self.ta, self.tb = z(slots, na * (N_TOKENS + 1)), z(slots, nb * (N_TOKENS + 1))
        self.ha, self.hb = z(slots, na * N_TOKENS), z(slots, nb * N_TOKENS)
        self.sa, self.sb, self.ua, self.ub = z(slots, na), z(slots, nb), z(slots, na), z(slots, nb)
        self.fa, self.fb = z(slots, na), z(slots, nb)
        self.la, self.lb = z(slots, list_cap), z(slots, list_cap)
        self.ring = z(slots, 4 * RING * ring_rows)
        self.list_cap, self.ring_rows = list_cap, ring_rows

    def reset(self) -> tuple:
        self.ta.copy_(self.init_a.reshape(1, -1).expand_as(self.ta))
        self.tb.copy_(self.init_b.reshape(1, -1).expand_as(self.tb))
        for t in (self.ha, self.hb, self.sa, self.sb, self.ua, self.ub, self.fa, self.fb, self.ring):
            t.zero_()
        return (self.ta, self.tb, self.ha, self.hb, self.sa, self.sb, self.ua, self.ub, self.fa, self.fb, self.la,
                self.lb, self.ring)


def check_model(kinds_list, shapes, init_a, init_b, bin_a, bin_b, weight_lut, update_steps, device):
    """The twin's checks for every image -> (int32 kinds per image, [init_a, init_b, bin_a, bin_b,
    weight_lut] as int32 contiguous tensors on ``device``, update_steps)."""
    from tricodec.wavefront_ref import _check_update_steps, check_model_arrays_wf

    names = ("init_a", "init_b", "bin_a", "bin_b", "weight_lut")
    arrays = [need_tensor(n, t) for n, t in zip(names, (init_a, init_b, bin_a, bin_b, weight_lut))]
    kinds_list = [need_tensor("kinds", k) for k in kinds_list]
    if any(t.device != device for t in arrays + kinds_list):
        raise ValueError("every tensor must be on one device")
    arrays = [as_int(n, t, torch.int32) for n, t in zip(names, arrays)]
    kinds_list = [as_int("kinds", k, torch.int32) for k in kinds_list]
    host = [t.cpu().numpy() for t in arrays]
    for k, shape in zip(kinds_list, shapes):
        check_model_arrays_wf(k.cpu().numpy(), *host, int(shape[0]))
    return kinds_list, arrays, _check_update_steps(update_steps)


def strip_descriptors(shapes, lane_rows_list, counts_list=None, word_bases=None) -> tuple:
    """int64 (n_strips, 12) descriptors of every strip of every image (residual base, kinds base, P, H, W,
    first row, end row, word offset, rANS words, raw words, log2 K, 0), and each image's (first strip,
    strip count, residual base, size)."""
    rows, images = [], []
    res_base = kinds_base = 0
    for i, ((n_planes, h, w), lane_rows) in enumerate(zip(shapes, lane_rows_list)):
        n_lanes = -(-h // lane_rows)
        images.append((len(rows), n_lanes, res_base, n_planes * h * w))
        off = 0 if word_bases is None else word_bases[i]
        for lane in range(n_lanes):
            y0 = lane * lane_rows
            c = (0, 0, 0) if counts_list is None else tuple(int(v) for v in counts_list[i][lane])
            rows.append((res_base, kinds_base, n_planes, h, w, y0, min(h, y0 + lane_rows), off) + c + (0,))
            off += c[0] + c[1]
        res_base += n_planes * h * w
        kinds_base += n_planes
    return np.array(rows, dtype=np.int64).reshape(-1, 12), images


def launch_shape(desc: np.ndarray, update_steps: int) -> tuple[int, int]:
    """(context-list capacity, ring rows) that every strip of ``desc`` fits."""
    max_rows = int((desc[:, 6] - desc[:, 5]).max())
    max_planes = int(desc[:, 2].max())
    return update_steps * max_planes * max_rows, max_rows


def decode_wavefront_lanes_batch(counts_list, words_list, shapes, kinds_list, init_a, init_b, bin_a, bin_b,
                                 weight_lut, update_steps, lane_rows_list) -> list[torch.Tensor]:
    """Decode several images' strips in the same launches.

    Args:
        counts_list, words_list: per image, integer (n_strips, 3) and uint16 or int32 (W,).
        shapes: per image (P, H, W); kinds_list: per image int32 (P,); lane_rows_list: per image rows per strip.
        init_a, init_b, bin_a, bin_b, weight_lut, update_steps: the model's (as in the twin).

    Returns:
        per image, uint8 (P, H, W) on the inputs' device.

    Raises:
        DecodeError: as the twin, for the first bad image (prefixed "image i: " when there are several).
    """
    return _decode(counts_list, words_list, shapes, kinds_list, init_a, init_b, bin_a, bin_b, weight_lut,
                   update_steps, lane_rows_list, None)


def _decode(counts_list, words_list, shapes, kinds_list, init_a, init_b, bin_a, bin_b, weight_lut, update_steps,
            lane_rows_list, stats_out) -> list[torch.Tensor]:
    n = len(shapes)
    if n == 0 or not len(counts_list) == len(words_list) == len(kinds_list) == len(lane_rows_list) == n:
        raise ValueError("one counts, words, shape, kinds and lane_rows per image")
    counts_list = [as_int("counts", need_tensor("counts", c, 2), torch.int64) for c in counts_list]
    dev = counts_list[0].device
    shapes = [tuple(int(v) for v in sh) for sh in shapes]
    kinds_list, (init_a, init_b, bin_a, bin_b, weight_lut), update_steps = check_model(
        kinds_list, shapes, init_a, init_b, bin_a, bin_b, weight_lut, update_steps, dev)
    words_list = [need_tensor("words", w, 1) for w in words_list]
    if any(c.device != dev or w.device != dev for c, w in zip(counts_list, words_list)):
        raise ValueError("every tensor must be on one device")
    host_counts = [c.cpu().numpy() for c in counts_list]   # a few words per strip: checked on the host
    for i, (shape, c, w, lane_rows) in enumerate(zip(shapes, host_counts, words_list, lane_rows_list)):
        if shape[0] * shape[1] * shape[2] >= 1 << 31:
            raise ValueError("at most 2**31 - 1 residuals (the kernel indexes them with int32)")
        try:
            check_wavefront_lanes(c, w.shape[0], shape, lane_rows)
        except DecodeError as e:
            raise DecodeError((f"image {i}: " if n > 1 else "") + str(e)) from None
    words = torch.cat([as_int("words", w, torch.int32) for w in words_list]) if n > 1 or \
        words_list[0].dtype not in (torch.uint16, torch.int32) else words_list[0].contiguous()
    word_bases = np.cumsum([0] + [w.shape[0] for w in words_list[:-1]])
    desc_np, images = strip_descriptors(shapes, lane_rows_list, host_counts, word_bases)
    desc = torch.from_numpy(desc_np).to(dev)
    kinds = torch.cat(kinds_list)
    n_strips = desc_np.shape[0]
    list_cap, ring_rows = launch_shape(desc_np, update_steps)
    out = torch.empty(sum(p * h * w for p, h, w in shapes), dtype=torch.uint8, device=dev)
    status = torch.zeros(n_strips, dtype=torch.int32, device=dev)
    stats = torch.zeros((n_strips, 2), dtype=torch.int64, device=dev)
    state = StripState(init_a, init_b, min(n_strips, STRIPS_PER_LAUNCH), list_cap, ring_rows)
    for first in range(0, n_strips, STRIPS_PER_LAUNCH):
        _wavefront_decode_kernel[(min(STRIPS_PER_LAUNCH, n_strips - first),)](
            desc, words, kinds, *state.reset(), bin_a, bin_b, weight_lut, out, status, stats,
            weight_lut.shape[0], update_steps, list_cap, ring_rows, first,
            NC_A=NC_A, NC_B=NC_B, N_KINDS=N_KINDS, N_TOKENS=N_TOKENS, Q_ADAPT=Q_ADAPT, ACT_MAX=ACT_MAX, NB_B=NB_B,
            RANS_L=RANS_L, MIX_BITS=MIX_BITS, RING=RING, BLOCK_K=BLOCK_K, BLOCK_U=BLOCK_U, num_warps=NUM_WARPS)
    first_bad, n_bad = torch.stack([status.to(torch.int64).argmax(), status.sum(dtype=torch.int64)]).tolist()
    if n_bad:
        i = max(k for k, img in enumerate(images) if img[0] <= first_bad)
        raise DecodeError((f"image {i}: " if n > 1 else "") +
                          f"corrupted entropy-coded data in lane {first_bad - images[i][0]}")
    if stats_out is not None:
        stats_out.append(stats)
    return [out[base:base + size].view(shape) for (_, _, base, size), shape in zip(images, shapes)]


def decode_wavefront_lanes(counts: torch.Tensor, words: torch.Tensor, shape: tuple, kinds: torch.Tensor,
                           init_a: torch.Tensor, init_b: torch.Tensor, bin_a: torch.Tensor, bin_b: torch.Tensor,
                           weight_lut: torch.Tensor, update_steps: int, lane_rows: int,
                           stats: torch.Tensor | None = None) -> torch.Tensor:
    """Decode what :func:`tricodec.kernels.wavefront_encode.encode_wavefront_lanes` (or its twin) wrote.

    Args:
        counts: integer (n_strips, 3), words: uint16 or int32 (W,): the strip table and data.
        shape: (P, H, W) of the residual planes.
        kinds: int32 (P,); init_a / init_b: int32 (3, NC_A, 25) / (3, NC_B, 25); bin_a, bin_b: int32
            (4096,); weight_lut: int32 (L,); all on counts' device, as the encoder had them.
        update_steps, lane_rows: as the encoder had them.
        stats: optional int64 (n_strips, 2): receives each strip's (steps, rANS rounds) as run.

    Returns:
        uint8 (P, H, W) on counts' device: the residual symbols.

    Raises:
        DecodeError: the strip table does not fit, or a strip is corrupted. ValueError: malformed model arrays.
    """
    got = []
    out = _decode([counts], [words], [shape], [kinds], init_a, init_b, bin_a, bin_b, weight_lut, update_steps,
                  [lane_rows], got)[0]
    if stats is not None:
        stats.copy_(got[0].to(stats.device))
    return out
