"""Fused-model strip decoder: Triton twin of :func:`tricodec.fused_ref.decode_fused`, bit for bit.

``wavefront_decode``'s program, with the blend predictor inside its steps: one program per strip; a
step's symbols are decoded ``K`` at a time (one per rANS state), the rest is vectors over them.
Pseudo-Python (``fused_ref``'s docstring states the predictor, table C, the bias and the mix)::

    for strip in range(n_strips):                                # program axis 0, in bounded launches
        x[k] = words[2k] << 16 | words[2k + 1];  pos = 2K;  rbit = 0
        for t in range(n_steps):                                 # dependent steps: O(W + rows)
            for r in range(ceil(N_t / K)):                       # rounds: K symbols at once
                (p, y, d, x) = coords(t, r * K + arange(K))
                ref = (c1 out[q1, y, x] + c2 out[q2, y, x]) >> 2  # earlier planes: earlier steps
                pv4, c = blend or MED of v's and errors' row rings (strip rows y-2 .. y), + bias
                pred = clamp(round(pv4 / 4) + ref, 0, 255)        # 128 or 0 at the strip's first pixel
                ca, cb = contexts(residual ring)
                tok = search(C, x & 0xFFFF), C(i) = ((wa A[ca,i] + wb B[cb,i] + wc C[c,i]) >> 4) + i
                pop, renormalise, raw extra bits (prefix sums), as wavefront_decode
                out[p, y, x] = (residual + pred) & 255;  rings <- v, the blend's errors, the residual
                count tok in (ca), (cb), (c)
            barrier; update the step's contexts of A, B, C once each; barrier; clear counts; barrier
        status[strip] = ran out of words / words left / padding bits / states != 2^16

The rings are read by other lanes a step or more after they were stored: every step ends with
``tl.debug_barrier()``.  A row ring (four strip rows per plane, as ``fused_ref``'s decoder keeps) works in
the wavefront's order because row y + 4 reaches column c eight steps after row y has last read it.
"""
from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from tricodec.context_ref import ACT_MAX, N_KINDS, N_TOKENS, NB_B, NC_A, NC_B, Q_ADAPT
from tricodec.errors import DecodeError
from tricodec.fused_ref import N_BIAS, NC_C, check_bias, check_mix, check_table_c
from tricodec.blend_ref import check_params
from tricodec.wavefront_ref import MAX_STATES, MIX_BITS, RING, check_wavefront_lanes

from ._blend_jit import _blend_err, _subpredictions
from ._host import RANS_L, as_int, need_tensor
from ._wavefront_jit import (_contexts, _coords, _end_of_step, _reset_one, _step_spans, _strip_desc, _strip_state,
                             _untoken, _update_one)
from .blend_scan import _ring_err_sum
from .blend_residual import N_SUB, weight_lut
from .wavefront_decode import StripState, check_model, launch_shape, strip_descriptors

BLOCK_K = MAX_STATES   # lanes of a round (pinned)
BLOCK_U = 128          # contexts per chunk of the table update (pinned)
NUM_WARPS = 4
ROWS = 4               # strip rows of v and of the errors kept per plane
MAX_PLANES = 4
STRIPS_PER_LAUNCH = 64  # strips in flight per launch: bounds the working state (tables C and the rings)


@triton.jit
def _rel5(dd):
    a = tl.abs(dd)
    m = (a > 0).to(tl.int32) + (a > 4).to(tl.int32)
    return tl.where(dd < 0, 2 - m, 2 + m)


@triton.jit
def _mix3(row_a, row_b, row_c, i, wa, wb, wc, live):
    """C(i) = ((wa A[i] + wb B[i] + wc C[i]) >> 4) + i of each symbol's three table rows."""
    a = tl.load(row_a + i, mask=live, other=0)
    b = tl.load(row_b + i, mask=live, other=0)
    c = tl.load(row_c + i, mask=live, other=0)
    return ((wa * a + wb * b + wc * c) >> 4) + i


@triton.jit
def _count3(ha, hb, hc, sa, sb, sc, la, lb, lc, list_at, kind, ca, cb, cc, tok, live, act,
            NC_A: tl.constexpr, NC_B: tl.constexpr, NC_C: tl.constexpr, N_TOKENS: tl.constexpr):
    """Count each symbol's token in its three contexts (integer atomics: order-free) and list them."""
    ka = kind * NC_A + ca
    kb = kind * NC_B + cb
    kc = kind * NC_C + cc
    tl.atomic_add(ha + ka * N_TOKENS + tok, 1, mask=live)
    tl.atomic_add(hb + kb * N_TOKENS + tok, 1, mask=live)
    tl.atomic_add(hc + kc * N_TOKENS + tok, 1, mask=live)
    tl.atomic_add(sa + ka, 1, mask=live)
    tl.atomic_add(sb + kb, 1, mask=live)
    tl.atomic_add(sc + kc, 1, mask=live)
    tl.store(la + list_at, ka, mask=act)
    tl.store(lb + list_at, kb, mask=act)
    tl.store(lc + list_at, kc, mask=act)


@triton.jit
def _end_of_step3(ta, tb, tc, ha, hb, hc, sa, sb, sc, ua, ub, uc, fa, fb, fc, la, lb, lc, n_list, weight_ptr, n_weight,
                  N_TOKENS: tl.constexpr, Q_ADAPT: tl.constexpr, MIX_BITS: tl.constexpr, BLOCK_U: tl.constexpr):
    """``_end_of_step`` of tables A and B, then table C's update and reset between barriers."""
    _end_of_step(ta, tb, ha, hb, sa, sb, ua, ub, fa, fb, la, lb, n_list, weight_ptr, n_weight,
                 N_TOKENS, Q_ADAPT, MIX_BITS, BLOCK_U)
    _update_one(tc, hc, sc, uc, fc, lc, n_list, weight_ptr, n_weight, N_TOKENS, Q_ADAPT, MIX_BITS, BLOCK_U)
    tl.debug_barrier()
    _reset_one(hc, sc, fc, lc, n_list, N_TOKENS, BLOCK_U)
    tl.debug_barrier()


@triton.jit
def _predict(vr, er, yy, xx, width, mode, lut_ptr, bin_s_ptr, n_bin_s, bin_g_ptr, n_bin_g, bias_row, live,
             N_SUB: tl.constexpr):
    """fused_ref._predict of a vector of pixels -> (pv4, table-C context, sub-predictions s0..s5)."""
    ring = 4 * width                       # one sub-predictor's rows (ROWS of them)
    r0 = (yy % 4) * width
    r1 = ((yy + 3) % 4) * width
    r2 = ((yy + 2) % 4) * width
    up = live & (yy > 0)
    vl = tl.load(vr + r0 + xx - 1, mask=live & (xx > 0), other=0)
    vu = tl.load(vr + r1 + xx, mask=up, other=0)
    vw = tl.where(xx > 0, vl, tl.where(yy > 0, vu, 0))
    vn = tl.where(yy > 0, vu, vw)
    vnw = tl.where((yy > 0) & (xx > 0), tl.load(vr + r1 + xx - 1, mask=up & (xx > 0), other=0), vn)
    vne = tl.where((yy > 0) & (xx < width - 1), tl.load(vr + r1 + xx + 1, mask=up & (xx < width - 1), other=0), vn)
    vnne = tl.where((yy > 1) & (xx < width - 1),
                    tl.load(vr + r2 + xx + 1, mask=live & (yy > 1) & (xx < width - 1), other=0), vne)
    s0, s1, s2, s3, s4, s5 = _subpredictions(vw, vn, vnw, vne, vnne)
    blend = mode != 0
    eb = live & blend
    e0 = _ring_err_sum(er, r0, r1, r2, xx, eb, yy, width)
    e1 = _ring_err_sum(er + ring, r0, r1, r2, xx, eb, yy, width)
    e2 = _ring_err_sum(er + 2 * ring, r0, r1, r2, xx, eb, yy, width)
    e3 = _ring_err_sum(er + 3 * ring, r0, r1, r2, xx, eb, yy, width)
    e4 = _ring_err_sum(er + 4 * ring, r0, r1, r2, xx, eb, yy, width)
    e5 = _ring_err_sum(er + 5 * ring, r0, r1, r2, xx, eb, yy, width)
    pv4_b, smin, b = _blend_pv4(e0, e1, e2, e3, e4, e5, s0, s1, s2, s3, s4, s5, vw, vn, vnw, vne, lut_ptr, eb)
    pv4_b += tl.load(bias_row + b, mask=eb, other=0)
    grad = tl.abs(vw - vnw) + tl.abs(vn - vnw) + tl.abs(vne - vn)
    e_s = tl.load(bin_s_ptr + tl.minimum(smin, n_bin_s - 1), mask=eb, other=0)
    e_g = tl.load(bin_g_ptr + tl.minimum(grad, n_bin_g - 1), mask=live & (mode == 0), other=0)
    pv4 = tl.where(blend, pv4_b, s0)
    c = _table_c(vw, vn, vne, pv4, tl.where(blend, e_s, e_g))
    return pv4, c, s0, s1, s2, s3, s4, s5


@triton.jit
def _blend_pv4(e0, e1, e2, e3, e4, e5, s0, s1, s2, s3, s4, s5, vw, vn, vnw, vne, lut_ptr, m):
    """The blend from its six error sums -> (pv4 before the bias, the smallest sum, the bias context)."""
    w0 = tl.load(lut_ptr + e0, mask=m, other=0).to(tl.int64)
    w1 = tl.load(lut_ptr + e1, mask=m, other=0).to(tl.int64)
    w2 = tl.load(lut_ptr + e2, mask=m, other=0).to(tl.int64)
    w3 = tl.load(lut_ptr + e3, mask=m, other=0).to(tl.int64)
    w4 = tl.load(lut_ptr + e4, mask=m, other=0).to(tl.int64)
    w5 = tl.load(lut_ptr + e5, mask=m, other=0).to(tl.int64)
    tw = w0 + w1 + w2 + w3 + w4 + w5
    ts = (w0 * (s0 + 4096) + w1 * (s1 + 4096) + w2 * (s2 + 4096) + w3 * (s3 + 4096) + w4 * (s4 + 4096)
          + w5 * (s5 + 4096))
    pv4 = tl.where(tw > 0, ((ts + tw // 2) // tl.maximum(tw, 1)).to(tl.int32) - 4096, s0)
    smin = tl.minimum(tl.minimum(tl.minimum(e0, e1), tl.minimum(e2, e3)), tl.minimum(e4, e5))
    b = (((4 * vw > pv4).to(tl.int32) + 2 * (4 * vn > pv4).to(tl.int32) + 4 * (4 * vnw > pv4).to(tl.int32)
          + 8 * (4 * vne > pv4).to(tl.int32)) * 4
         + (smin > 40).to(tl.int32) + (smin > 120).to(tl.int32) + (smin > 320).to(tl.int32))
    return pv4, smin, b


@triton.jit
def _table_c(vw, vn, vne, pv4, e):
    """Table C's context (fused_ref's docstring)."""
    return (((_rel5(4 * vw - pv4) * 5 + _rel5(4 * vn - pv4)) * 5 + _rel5(4 * vne - pv4)) * 8 + e) * 4 + (pv4 & 3)


@triton.jit
def _fused_decode_kernel(
    # pointers
    desc_ptr, word_ptr, kind_ptr, prm_ptr, mix_ptr, bias_ptr, ta_ptr, tb_ptr, tc_ptr, ha_ptr, hb_ptr, hc_ptr,
    sa_ptr, sb_ptr, sc_ptr, ua_ptr, ub_ptr, uc_ptr, fa_ptr, fb_ptr, fc_ptr, la_ptr, lb_ptr, lc_ptr, ring_ptr,
    vring_ptr, ering_ptr, bin_a_ptr, bin_b_ptr, bin_s_ptr, bin_g_ptr, lut_ptr, weight_ptr, out_ptr, status_ptr,
    # sizes
    n_weight, n_bin_s, n_bin_g, update_steps, list_cap, ring_rows, max_width, first_strip,
    # meta-parameters
    NC_A: tl.constexpr, NC_B: tl.constexpr, NC_C: tl.constexpr, N_KINDS: tl.constexpr, N_TOKENS: tl.constexpr,
    Q_ADAPT: tl.constexpr, ACT_MAX: tl.constexpr, NB_B: tl.constexpr, RANS_L: tl.constexpr,
    MIX_BITS: tl.constexpr, RING: tl.constexpr, N_BIAS: tl.constexpr, N_SUB: tl.constexpr,
    MAX_PLANES: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_U: tl.constexpr,
):
    slot = tl.program_id(0).to(tl.int64)
    strip = slot + first_strip
    res_base, kinds_base, n_planes, height, width, y0, y1, pos, n_rans, n_raw, log2k = _strip_desc(desc_ptr, strip)
    image = tl.load(desc_ptr + strip * 12 + 11)
    out = out_ptr + res_base
    kinds = kind_ptr + kinds_base
    prm = prm_ptr + image * (MAX_PLANES * 5)
    mixes = mix_ptr + image * 9
    biases = bias_ptr + image * (MAX_PLANES * N_BIAS)
    ta, tb, ha, hb, sa, sb, ua, ub, fa, fb, la, lb, ring = _strip_state(
        ta_ptr, tb_ptr, ha_ptr, hb_ptr, sa_ptr, sb_ptr, ua_ptr, ub_ptr, fa_ptr, fb_ptr, la_ptr, lb_ptr, ring_ptr,
        slot, list_cap, ring_rows, NC_A, NC_B, N_KINDS, N_TOKENS, RING)
    nc = N_KINDS * NC_C
    tc = tc_ptr + slot * nc * (N_TOKENS + 1)
    hc = hc_ptr + slot * nc * N_TOKENS
    sc = sc_ptr + slot * nc
    uc = uc_ptr + slot * nc
    fc = fc_ptr + slot * nc
    lc = lc_ptr + slot * list_cap
    vring = vring_ptr + slot * (MAX_PLANES * 4 * max_width)           # ROWS = 4 rows a plane
    ering = ering_ptr + slot * (MAX_PLANES * N_SUB * 4 * max_width)
    rows = y1 - y0
    plane_size = height * width
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
    list_n = 0
    n_steps = (width - 1) + 2 * (rows - 1) + 2 * (n_planes - 1) + 1
    for t in range(0, n_steps):
        lo0, lo1, lo2, lo3, o1, o2, o3, n_sym = _step_spans(t, n_planes, rows, width)
        for r in range(0, (n_sym + k_states - 1) // k_states):
            j = r * k_states + kk
            act = live_k & (j < n_sym)
            live = act & ((j * 0 + bad) == 0)
            p, yy, d, xx = _coords(j, t, lo0, lo1, lo2, lo3, o1, o2, o3)
            y = y0 + yy
            kind = tl.load(kinds + p, mask=act, other=0)
            mode = tl.load(prm + p * 5, mask=act, other=0)
            q1 = tl.load(prm + p * 5 + 1, mask=act, other=-1)
            c1 = tl.load(prm + p * 5 + 2, mask=act, other=0)
            q2 = tl.load(prm + p * 5 + 3, mask=act, other=-1)
            c2 = tl.load(prm + p * 5 + 4, mask=act, other=0)
            o = y * width + xx
            ref = (c1 * tl.load(out + tl.maximum(q1, 0) * plane_size + o, mask=act & (q1 >= 0), other=0).to(tl.int32)
                   + c2 * tl.load(out + tl.maximum(q2, 0) * plane_size + o, mask=act & (q2 >= 0),
                                  other=0).to(tl.int32)) >> 2
            blend = mode != 0
            vr = vring + p * (4 * max_width)
            er = ering + p * (N_SUB * 4 * max_width)
            pv4, cc, s0, s1, s2, s3, s4, s5 = _predict(vr, er, yy, xx, width, mode, lut_ptr, bin_s_ptr, n_bin_s,
                                                       bin_g_ptr, n_bin_g, biases + p * N_BIAS, act, N_SUB)
            pv = ((pv4 + 2 + 4096) >> 2) - 1024
            pv = tl.where((yy == 0) & (xx == 0), tl.where((q1 < 0) & (q2 < 0), 128, 0), pv)
            pred = tl.minimum(tl.maximum(pv + ref, 0), 255)
            ca, cb = _contexts(ring, bin_a_ptr, bin_b_ptr, p, kind, d, yy, width, ring_rows, act,
                               RING, ACT_MAX, NB_B)
            wa = tl.load(mixes + kind * 3, mask=act, other=0)
            wb = tl.load(mixes + kind * 3 + 1, mask=act, other=0)
            wc = tl.load(mixes + kind * 3 + 2, mask=act, other=0)
            row_a = ta + (kind * NC_A + ca) * (N_TOKENS + 1)
            row_b = tb + (kind * NC_B + cb) * (N_TOKENS + 1)
            row_c = tc + (kind * NC_C + cc) * (N_TOKENS + 1)
            slot_v = x & 0xFFFF
            t_lo = kk * 0
            t_hi = t_lo + N_TOKENS
            for _ in tl.static_range(5):
                mid = (t_lo + t_hi) >> 1
                le = _mix3(row_a, row_b, row_c, mid, wa, wb, wc, act).to(tl.int64) <= slot_v
                t_lo = tl.where(le, mid, t_lo)
                t_hi = tl.where(le, t_hi, mid)
            tok = t_lo
            c_lo = _mix3(row_a, row_b, row_c, tok, wa, wb, wc, act).to(tl.int64)
            c_hi = _mix3(row_a, row_b, row_c, tok + 1, wa, wb, wc, act).to(tl.int64)
            x = tl.where(live, (c_hi - c_lo) * (x >> 16) + slot_v - c_lo, x)
            need = (live & (x < RANS_L)).to(tl.int32)
            before = tl.cumsum(need, axis=0) - need
            take = (need > 0) & (pos + before < end)
            w = tl.load(word_ptr + pos + before, mask=take, other=0).to(tl.int64) & 0xFFFF
            x = tl.where(take, (x << 16) | w, x)
            n_need = tl.sum(need, axis=0)
            bad = tl.where(pos + n_need > end, 1, bad)
            pos = pos + n_need
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
            xv = (res + pred) & 255
            tl.store(out + p * plane_size + o, xv.to(tl.uint8), mask=live)
            tl.store(ring + (p * RING + (d & (RING - 1))) * ring_rows + yy, res, mask=live)
            r0 = (yy % 4) * width
            tl.store(vr + r0 + xx, xv - ref, mask=live)
            v4 = 4 * (xv - ref)
            eb = live & blend
            ring_e = 4 * width
            tl.store(er + r0 + xx, _blend_err(v4, s0, 0), mask=eb)
            tl.store(er + ring_e + r0 + xx, _blend_err(v4, s1, 0), mask=eb)
            tl.store(er + 2 * ring_e + r0 + xx, _blend_err(v4, s2, 0), mask=eb)
            tl.store(er + 3 * ring_e + r0 + xx, _blend_err(v4, s3, 0), mask=eb)
            tl.store(er + 4 * ring_e + r0 + xx, _blend_err(v4, s4, 0), mask=eb)
            tl.store(er + 5 * ring_e + r0 + xx, _blend_err(v4, s5, 0), mask=eb)
            _count3(ha, hb, hc, sa, sb, sc, la, lb, lc, list_n + j, kind, ca, cb, cc, tok, live, act, NC_A, NC_B,
                    NC_C, N_TOKENS)
        list_n += n_sym
        if ((t + 1) % update_steps == 0) | (t == n_steps - 1):
            _end_of_step3(ta, tb, tc, ha, hb, hc, sa, sb, sc, ua, ub, uc, fa, fb, fc, la, lb, lc, list_n, weight_ptr,
                          n_weight, N_TOKENS, Q_ADAPT, MIX_BITS, BLOCK_U)
            list_n = 0
        else:
            tl.debug_barrier()   # this step's ring and pixel stores are read by the next steps' other lanes
    last = tl.load(raw + (rbit >> 4), mask=(rbit & 15) != 0, other=0).to(tl.int64) & 0xFFFF
    bad = tl.where((pos != end) | (((rbit + 15) >> 4) != n_raw) | ((last >> (rbit & 15)) != 0), 1, bad)
    bad = tl.where(tl.sum((live_k & (x != RANS_L)).to(tl.int32), axis=0) > 0, 1, bad)
    tl.store(status_ptr + strip, bad)


class TableC:
    """Table C's working state for ``slots`` strips at a time, reset before every launch."""

    def __init__(self, init_c: torch.Tensor, slots: int, list_cap: int):
        dev = init_c.device
        n = N_KINDS * NC_C
        self.init_c = init_c

        def z(*shape):
            return torch.zeros(shape, dtype=torch.int32, device=dev)
        self.tc, self.hc = z(slots, n * (N_TOKENS + 1)), z(slots, n * N_TOKENS)
        self.sc, self.uc, self.fc, self.lc = z(slots, n), z(slots, n), z(slots, n), z(slots, list_cap)

    def reset(self) -> tuple:
        self.tc.copy_(self.init_c.reshape(1, -1).expand_as(self.tc))
        for t in (self.hc, self.sc, self.uc, self.fc):
            t.zero_()
        return self.tc, self.hc, self.sc, self.uc, self.fc, self.lc


def _image_arrays(params_list, mix_list, bias_list, dev) -> tuple:
    """Per image, params padded to MAX_PLANES planes, mixes and biases -> int32 tensors."""
    n = len(params_list)
    prm = np.zeros((n, MAX_PLANES, 5), np.int32)
    prm[:, :, 1] = prm[:, :, 3] = -1
    bias = np.zeros((n, MAX_PLANES, N_BIAS), np.int32)
    for i, (pa, bi) in enumerate(zip(params_list, bias_list)):
        prm[i, :pa.shape[0]] = pa
        bias[i, :bi.shape[0]] = bi
    mix = np.stack([m.astype(np.int32) for m in mix_list])
    return tuple(torch.from_numpy(a).to(dev) for a in (prm, mix, bias))


def decode_fused_batch(counts_list, words_list, shapes, params_list, mix_list, bias_list, kinds_list, init_a, init_b,
                       init_c, bin_a, bin_b, bin_s, bin_g, weight_lut_, update_steps, lane_rows_list) -> list:
    """Decode several images' strips in the same launches (:func:`decode_fused` of each).

    Args:
        counts_list, words_list, shapes, kinds_list, lane_rows_list: per image, as
            ``wavefront_decode.decode_wavefront_lanes_batch``.
        params_list, mix_list, bias_list: per image, int (P, 5), (3, 3), (P, N_BIAS) (host arrays).
        init_a, init_b, init_c, bin_a, bin_b, bin_s, bin_g, weight_lut_, update_steps: the model's, int32 tensors
            on the counts' device.

    Returns:
        per image, uint8 (P, H, W) on the inputs' device: the planes in coding order.

    Raises:
        DecodeError: as the twin, for the first bad image (prefixed "image i: " when there are several).
        ValueError: malformed params, mix, bias or model arrays.
    """
    n = len(shapes)
    if n == 0 or not len(counts_list) == len(words_list) == len(kinds_list) == len(lane_rows_list) == \
            len(params_list) == len(mix_list) == len(bias_list) == n:
        raise ValueError("one counts, words, shape, params, mix, bias, kinds and lane_rows per image")
    counts_list = [as_int("counts", need_tensor("counts", c, 2), torch.int64) for c in counts_list]
    dev = counts_list[0].device
    shapes = [tuple(int(v) for v in sh) for sh in shapes]
    if any(sh[0] > MAX_PLANES for sh in shapes):
        raise ValueError(f"at most {MAX_PLANES} planes")
    kinds_list, (init_a, init_b, bin_a, bin_b, weight_lut_), update_steps = check_model(
        kinds_list, shapes, init_a, init_b, bin_a, bin_b, weight_lut_, update_steps, dev)
    init_c, bin_s, bin_g = (torch.from_numpy(a).to(dev) for a in check_table_c(
        need_tensor("init_c", init_c).cpu().numpy(), need_tensor("bin_s", bin_s).cpu().numpy(),
        need_tensor("bin_g", bin_g).cpu().numpy()))
    params_list = [check_params(np.asarray(pa), sh[0]) for pa, sh in zip(params_list, shapes)]
    mix_list = [check_mix(np.asarray(m)) for m in mix_list]
    bias_list = [check_bias(np.asarray(b), pa) for b, pa in zip(bias_list, params_list)]
    words_list = [need_tensor("words", w, 1) for w in words_list]
    host_counts = [c.cpu().numpy() for c in counts_list]
    for i, (shape, c, w, lane_rows) in enumerate(zip(shapes, host_counts, words_list, lane_rows_list)):
        if shape[0] * shape[1] * shape[2] >= 1 << 31:
            raise ValueError("at most 2**31 - 1 samples (the kernel indexes them with int32)")
        try:
            check_wavefront_lanes(c, w.shape[0], shape, lane_rows)
        except DecodeError as e:
            raise DecodeError((f"image {i}: " if n > 1 else "") + str(e)) from None
    words = torch.cat([as_int("words", w, torch.int32) for w in words_list])
    word_bases = np.cumsum([0] + [w.shape[0] for w in words_list[:-1]])
    desc_np, images = strip_descriptors(shapes, lane_rows_list, host_counts, word_bases)
    desc_np[:, 11] = np.repeat(np.arange(n), [img[1] for img in images])
    desc = torch.from_numpy(desc_np).to(dev)
    kinds = torch.cat(kinds_list)
    prm, mix, bias = _image_arrays(params_list, mix_list, bias_list, dev)
    n_strips = desc_np.shape[0]
    list_cap, ring_rows = launch_shape(desc_np, update_steps)
    max_width = int(desc_np[:, 4].max())
    out = torch.zeros(sum(p * h * w for p, h, w in shapes), dtype=torch.uint8, device=dev)
    status = torch.zeros(n_strips, dtype=torch.int32, device=dev)
    slots = min(n_strips, STRIPS_PER_LAUNCH)
    state = StripState(init_a, init_b, slots, list_cap, ring_rows)
    table_c = TableC(init_c, slots, list_cap)
    vring = torch.zeros((slots, MAX_PLANES * ROWS * max_width), dtype=torch.int32, device=dev)
    ering = torch.zeros((slots, MAX_PLANES * N_SUB * ROWS * max_width), dtype=torch.int32, device=dev)
    lut = weight_lut(dev)
    for first in range(0, n_strips, STRIPS_PER_LAUNCH):
        ta, tb, ha, hb, sa, sb, ua, ub, fa, fb, la, lb, ring = state.reset()
        tc, hc, sc, uc, fc, lc = table_c.reset()
        _fused_decode_kernel[(min(STRIPS_PER_LAUNCH, n_strips - first),)](
            desc, words, kinds, prm, mix, bias, ta, tb, tc, ha, hb, hc, sa, sb, sc, ua, ub, uc, fa, fb, fc,
            la, lb, lc, ring, vring, ering, bin_a, bin_b, bin_s, bin_g, lut, weight_lut_, out, status,
            weight_lut_.shape[0], bin_s.shape[0], bin_g.shape[0], update_steps, list_cap, ring_rows, max_width, first,
            NC_A=NC_A, NC_B=NC_B, NC_C=NC_C, N_KINDS=N_KINDS, N_TOKENS=N_TOKENS, Q_ADAPT=Q_ADAPT, ACT_MAX=ACT_MAX,
            NB_B=NB_B, RANS_L=RANS_L, MIX_BITS=MIX_BITS, RING=RING, N_BIAS=N_BIAS, N_SUB=N_SUB,
            MAX_PLANES=MAX_PLANES, BLOCK_K=BLOCK_K, BLOCK_U=BLOCK_U, num_warps=NUM_WARPS)
    first_bad, n_bad = torch.stack([status.to(torch.int64).argmax(), status.sum(dtype=torch.int64)]).tolist()
    if n_bad:
        i = max(k for k, img in enumerate(images) if img[0] <= first_bad)
        raise DecodeError((f"image {i}: " if n > 1 else "") +
                          f"corrupted entropy-coded data in lane {first_bad - images[i][0]}")
    return [out[base:base + size].view(shape) for (_, _, base, size), shape in zip(images, shapes)]


def decode_fused(counts: torch.Tensor, words: torch.Tensor, shape: tuple, params, mix, bias, kinds, init_a, init_b,
                 init_c, bin_a, bin_b, bin_s, bin_g, weight_lut_, update_steps: int, lane_rows: int) -> torch.Tensor:
    """Decode what :func:`tricodec.fused_ref.encode_fused` wrote (the twin's signature; model arrays as
    int tensors on counts' device, params / mix / bias as host arrays) -> uint8 (P, H, W) on counts'
    device."""
    return decode_fused_batch([counts], [words], [shape], [params], [mix], [bias], [kinds], init_a, init_b, init_c,
                              bin_a, bin_b, bin_s, bin_g, weight_lut_, update_steps, [lane_rows])[0]
