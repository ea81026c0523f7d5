"""Fused-model encoder: Triton twin of :func:`tricodec.fused_ref.encode_fused`, bit for bit.

At encode time every pixel is known, so the predictor is two tiled maps (as ``blend_residual``'s, each
strip predicted as an image of its own); the coder is ``wavefront_encode``'s program with table C and the
static mix.  The encoder's choices (the blend's params, the bias medians, the mix) are made on the host,
as the twin makes them, from what the maps computed.  Pseudo-Python::

    for k, strip tile in planes x tiles:                         # kernel 1 (blend planes), vectorised
        err[k, i, y, x] = min(|4 v - s_i|, 4080)                 # neighbours inside the pixel's strip
    for k, strip tile in planes x tiles:                         # kernel 2, vectorised
        pv4, b = blend(s, errors of the strip's neighbours) or 4 MED;  pv4 += bias[k, b] (blend planes)
        res, ctx_c, bctx, e4 = (x - pred + 128) & 255, table C's context, b, 4 v - pv4
    bias = choose_bias(bctx, e4) on the host, kernel 2 again     # (when the caller gives none)
    mix = choose_mix(code lengths of fused_ref._strip_costs) on the host   # (when the caller gives none)
    for strip in range(n_strips):                                # kernel 3: wavefront_encode's, 3 tables
        forward: (start, freq) of C(i) = ((wa A[ca,i] + wb B[cb,i] + wc C[c,i]) >> 4) + i, raw bits,
                 counts in A, B, C, end-of-step updates;  then the rANS pass (LIFO)
"""
from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from tricodec import fused_ref as fr
from tricodec.blend_ref import check_params
from tricodec.context_ref import ACT_MAX, N_KINDS, N_TOKENS, NB_B, NC_A, NC_B, Q_ADAPT
from tricodec.wavefront_ref import MAX_STATES, MIX_BITS, RING, STATE_BUDGET, SYMBOLS_PER_STATE, _check_states

from ._blend_jit import _blend_err, _subpredictions
from ._host import RANS_L, need_tensor
from ._wavefront_jit import _contexts, _coords, _step_spans, _strip_desc, _strip_state, _token
from .blend_residual import _err_sum, _neighbours_below, _plane_setup, _v_at, weight_lut
from .fused_decode import TableC, _blend_pv4, _count3, _end_of_step3, _mix3, _table_c
from .wavefront_decode import STRIPS_PER_LAUNCH, StripState, check_model, launch_shape, strip_descriptors
from .wavefront_encode import SYMBOLS_PER_LAUNCH, _emit_strip, _floor_log2, _gather

BLOCK_H = 16        # pinned tile of the maps: 16 x 64 pixels per program
BLOCK_W = 64
BLOCK_K = MAX_STATES
BLOCK_U = 128
NUM_WARPS = 4
N_SUB = 6


@triton.jit
def _fused_errors_kernel(
    # pointers
    x_ptr, prm_ptr, err_ptr,
    # sizes
    H, W, lane_rows, stride_xp, stride_xh, stride_xw,
    # meta-parameters
    BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):
    pid_w = tl.program_id(0)
    pid_h = tl.program_id(1)
    k = tl.program_id(2)
    mode, q1, c1, q2, c2, plane, ref1, ref2 = _plane_setup(x_ptr, prm_ptr, k, stride_xp)
    if mode != 0:
        ys = (pid_h * BLOCK_H + tl.arange(0, BLOCK_H))[:, None]
        xs = (pid_w * BLOCK_W + tl.arange(0, BLOCK_W))[None, :]
        yl = ys % lane_rows
        inside = (ys < H) & (xs < W)
        vw, vn, vnw, vne, vnne = _neighbours_below(plane, ref1, ref2, c1, c2, ys, yl, xs, inside, W, stride_xh,
                                                   stride_xw)
        v4 = 4 * _v_at(plane, ref1, ref2, c1, c2, ys * stride_xh + xs * stride_xw, inside)
        s0, s1, s2, s3, s4, s5 = _subpredictions(vw, vn, vnw, vne, vnne)
        plane_size = H * W
        e = err_ptr + k.to(tl.int64) * 6 * plane_size + ys * W + xs
        tl.store(e, _blend_err(v4, s0, 0).to(tl.int16), mask=inside)
        tl.store(e + plane_size, _blend_err(v4, s1, 0).to(tl.int16), mask=inside)
        tl.store(e + 2 * plane_size, _blend_err(v4, s2, 0).to(tl.int16), mask=inside)
        tl.store(e + 3 * plane_size, _blend_err(v4, s3, 0).to(tl.int16), mask=inside)
        tl.store(e + 4 * plane_size, _blend_err(v4, s4, 0).to(tl.int16), mask=inside)
        tl.store(e + 5 * plane_size, _blend_err(v4, s5, 0).to(tl.int16), mask=inside)


@triton.jit
def _fused_symbols_kernel(
    # pointers
    x_ptr, prm_ptr, err_ptr, lut_ptr, bias_ptr, bin_s_ptr, bin_g_ptr, res_ptr, ctx_ptr, bctx_ptr, e4_ptr,
    # sizes
    H, W, lane_rows, n_bin_s, n_bin_g, stride_xp, stride_xh, stride_xw,
    # meta-parameters
    N_BIAS: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):
    pid_w = tl.program_id(0)
    pid_h = tl.program_id(1)
    k = tl.program_id(2)
    mode, q1, c1, q2, c2, plane, ref1, ref2 = _plane_setup(x_ptr, prm_ptr, k, stride_xp)
    ys = (pid_h * BLOCK_H + tl.arange(0, BLOCK_H))[:, None]
    xs = (pid_w * BLOCK_W + tl.arange(0, BLOCK_W))[None, :]
    yl = ys % lane_rows
    inside = (ys < H) & (xs < W)
    o = ys * stride_xh + xs * stride_xw
    xv = tl.load(plane + o, mask=inside, other=0).to(tl.int32)
    ref = (c1 * tl.load(ref1 + o, mask=inside, other=0).to(tl.int32)
           + c2 * tl.load(ref2 + o, mask=inside, other=0).to(tl.int32)) >> 2
    vw, vn, vnw, vne, vnne = _neighbours_below(plane, ref1, ref2, c1, c2, ys, yl, xs, inside, W, stride_xh,
                                               stride_xw)
    s0, s1, s2, s3, s4, s5 = _subpredictions(vw, vn, vnw, vne, vnne)
    plane_size = H * W
    pv4 = s0
    e = tl.load(bin_g_ptr + tl.minimum(tl.abs(vw - vnw) + tl.abs(vn - vnw) + tl.abs(vne - vn), n_bin_g - 1),
                mask=inside, other=0)
    b = tl.full([BLOCK_H, BLOCK_W], -1, tl.int32)
    if mode != 0:
        er = err_ptr + k.to(tl.int64) * 6 * plane_size + ys * W + xs
        e0 = _err_sum(er, yl, xs, inside, W)
        e1 = _err_sum(er + plane_size, yl, xs, inside, W)
        e2 = _err_sum(er + 2 * plane_size, yl, xs, inside, W)
        e3 = _err_sum(er + 3 * plane_size, yl, xs, inside, W)
        e4s = _err_sum(er + 4 * plane_size, yl, xs, inside, W)
        e5 = _err_sum(er + 5 * plane_size, yl, xs, inside, W)
        pv4, smin, b = _blend_pv4(e0, e1, e2, e3, e4s, e5, s0, s1, s2, s3, s4, s5, vw, vn, vnw, vne, lut_ptr, inside)
        pv4 += tl.load(bias_ptr + k * N_BIAS + b, mask=inside, other=0)
        e = tl.load(bin_s_ptr + tl.minimum(smin, n_bin_s - 1), mask=inside, other=0)
    c = _table_c(vw, vn, vne, pv4, e)
    pv = ((pv4 + 2 + 4096) >> 2) - 1024
    pv = tl.where((yl == 0) & (xs == 0), tl.where((q1 < 0) & (q2 < 0), 128, 0), pv)
    pred = tl.minimum(tl.maximum(pv + ref, 0), 255)
    at = k.to(tl.int64) * plane_size + ys * W + xs
    tl.store(res_ptr + at, ((xv - pred + 128) & 255).to(tl.uint8), mask=inside)
    tl.store(ctx_ptr + at, c.to(tl.int16), mask=inside)
    tl.store(bctx_ptr + at, b.to(tl.int8), mask=inside)
    tl.store(e4_ptr + at, (4 * (xv - ref) - pv4).to(tl.int16), mask=inside)


@triton.jit
def _fused_encode_kernel(
    # pointers
    desc_ptr, res_flat_ptr, ctx_flat_ptr, kind_ptr, mix_ptr, ta_ptr, tb_ptr, tc_ptr, ha_ptr, hb_ptr, hc_ptr,
    sa_ptr, sb_ptr, sc_ptr, ua_ptr, ub_ptr, uc_ptr, fa_ptr, fb_ptr, fc_ptr, la_ptr, lb_ptr, lc_ptr, ring_ptr,
    bin_a_ptr, bin_b_ptr, weight_ptr, start_ptr, freq_ptr, raw_ptr, scratch_ptr, count_ptr,
    # sizes
    n_weight, update_steps, list_cap, ring_rows, strip_symbols, stride_raw, stride_words, force_log2k, first_strip,
    # meta-parameters
    NC_A: tl.constexpr, NC_B: tl.constexpr, NC_C: tl.constexpr, N_KINDS: tl.constexpr, N_TOKENS: tl.constexpr,
    Q_ADAPT: tl.constexpr, ACT_MAX: tl.constexpr, NB_B: tl.constexpr, RANS_L: tl.constexpr,
    MIX_BITS: tl.constexpr, RING: tl.constexpr, MAX_STATES: tl.constexpr, SYMBOLS_PER_STATE: tl.constexpr,
    STATE_BUDGET: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_U: tl.constexpr,
):
    slot = tl.program_id(0).to(tl.int64)
    strip = slot + first_strip
    res_base, kinds_base, n_planes, height, width, y0, y1, _o, _n1, _n2, _k = _strip_desc(desc_ptr, strip)
    image = tl.load(desc_ptr + strip * 12 + 11)
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
    res_p = res_flat_ptr + res_base
    ctx_p = ctx_flat_ptr + res_base
    kinds = kind_ptr + kinds_base
    mixes = mix_ptr + image * 9
    rows = y1 - y0
    start = start_ptr + slot * strip_symbols
    freq_p = freq_ptr + slot * strip_symbols
    raw_p = raw_ptr + slot * stride_raw
    kk = tl.arange(0, BLOCK_K)
    n_steps = (width - 1) + 2 * (rows - 1) + 2 * (n_planes - 1) + 1
    sym = 0
    rbit = (y0 * 0).to(tl.int64)
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
            at = (p * height + y0 + yy) * width + xx
            r = tl.load(res_p + at, mask=act, other=128).to(tl.int32) - 128
            cc = tl.load(ctx_p + at, mask=act, other=0).to(tl.int32)
            tok, n_extra, extra = _token(tl.where(r >= 0, 2 * r, -2 * r - 1))
            wa = tl.load(mixes + kind * 3, mask=act, other=0)
            wb = tl.load(mixes + kind * 3 + 1, mask=act, other=0)
            wc = tl.load(mixes + kind * 3 + 2, mask=act, other=0)
            row_a = ta + (kind * NC_A + ca) * (N_TOKENS + 1)
            row_b = tb + (kind * NC_B + cb) * (N_TOKENS + 1)
            row_c = tc + (kind * NC_C + cc) * (N_TOKENS + 1)
            c_lo = _mix3(row_a, row_b, row_c, tok, wa, wb, wc, act)
            freq = _mix3(row_a, row_b, row_c, tok + 1, wa, wb, wc, act) - c_lo
            tl.store(start + sym + j, c_lo, mask=act)
            tl.store(freq_p + sym + j, freq, mask=act)
            n_extra = tl.where(act, n_extra, 0)
            est += tl.sum(tl.where(act, 16 - _floor_log2(freq) + n_extra, 0), axis=0).to(tl.int64)
            bit = rbit + tl.cumsum(n_extra, axis=0) - n_extra
            sh = bit & 15
            has = n_extra > 0
            tl.atomic_or(raw_p + (bit >> 4), (extra << sh) & 0xFFFF, mask=has)
            tl.atomic_or(raw_p + (bit >> 4) + 1, extra >> (16 - sh), mask=has & (sh + n_extra > 16))
            rbit += tl.sum(n_extra, axis=0)
            tl.store(ring + (p * RING + (d & (RING - 1))) * ring_rows + yy, r, mask=act)
            _count3(ha, hb, hc, sa, sb, sc, la, lb, lc, list_n + j, kind, ca, cb, cc, tok, act, act, NC_A, NC_B,
                    NC_C, N_TOKENS)
        sym += n_sym
        list_n += n_sym
        if ((t + 1) % update_steps == 0) | (t == n_steps - 1):
            _end_of_step3(ta, tb, tc, ha, hb, hc, sa, sb, sc, ua, ub, uc, fa, fb, fc, la, lb, lc, list_n, weight_ptr,
                          n_weight, N_TOKENS, Q_ADAPT, MIX_BITS, BLOCK_U)
            list_n = 0
        else:
            tl.debug_barrier()   # this step's ring stores are read by the next step's other lanes
    _emit_strip(start, freq_p, scratch_ptr, count_ptr, slot, strip, rows, n_planes, width, rbit, est, force_log2k,
                stride_words, RANS_L, MAX_STATES, SYMBOLS_PER_STATE, STATE_BUDGET, BLOCK_K)


def strip_symbols(planes: torch.Tensor, params: np.ndarray, bias: np.ndarray, bin_s: torch.Tensor,
                  bin_g: torch.Tensor, lane_rows: int) -> tuple:
    """The twin's ``_strip_symbols`` of every strip -> (res uint8, ctx int16, bctx int8, e4 int16), (P, H, W)
    tensors on planes' device."""
    p, h, w = planes.shape
    dev = planes.device
    prm = torch.from_numpy(np.ascontiguousarray(params, np.int32)).to(dev)
    bias_t = torch.from_numpy(np.ascontiguousarray(bias, np.int32)).to(dev)
    err = torch.zeros((p, N_SUB, h, w), dtype=torch.int16, device=dev)
    res = torch.empty((p, h, w), dtype=torch.uint8, device=dev)
    ctx = torch.empty((p, h, w), dtype=torch.int16, device=dev)
    bctx = torch.empty((p, h, w), dtype=torch.int8, device=dev)
    e4 = torch.empty((p, h, w), dtype=torch.int16, device=dev)
    grid = (triton.cdiv(w, BLOCK_W), triton.cdiv(h, BLOCK_H), p)
    _fused_errors_kernel[grid](planes, prm, err, h, w, lane_rows, *planes.stride(), BLOCK_H=BLOCK_H, BLOCK_W=BLOCK_W,
                               num_warps=NUM_WARPS)
    _fused_symbols_kernel[grid](planes, prm, err, weight_lut(dev), bias_t, bin_s, bin_g, res, ctx, bctx, e4, h, w,
                                lane_rows, bin_s.shape[0], bin_g.shape[0], *planes.stride(), N_BIAS=fr.N_BIAS,
                                BLOCK_H=BLOCK_H, BLOCK_W=BLOCK_W, num_warps=NUM_WARPS)
    return res, ctx, bctx, e4


def encode_fused(planes: torch.Tensor, params, kinds, init_a, init_b, init_c, bin_a, bin_b, bin_s, bin_g, weight_lut_,
                 update_steps: int, lane_rows: int, mix=None, bias=None, states: int = 0):
    """The kernels' twin of :func:`tricodec.fused_ref.encode_fused`.

    Args:
        planes: uint8 (P, H, W) on any device (the interpreter's CPU or a GPU), coding order.
        params, mix, bias: host arrays, as the twin's (None: the encoder chooses, on the host).
        kinds, init_a, init_b, init_c, bin_a, bin_b, bin_s, bin_g, weight_lut_: int tensors on planes' device.
        update_steps, lane_rows, states: as the twin's.

    Returns:
        (mix int64 (3, 3), bias int32 (P, N_BIAS) host arrays; counts int64 (n_strips, 3), words int32 (W,)
        on planes' device): the twin's values.
    """
    planes = need_tensor("planes", planes, 3)
    if planes.dtype != torch.uint8 or planes.numel() == 0 or lane_rows < 1:
        raise ValueError("need a non-empty uint8 (P, H, W) tensor and lane_rows >= 1")
    n_planes, h, w = (int(v) for v in planes.shape)
    if n_planes * h * w * 2 * N_SUB >= 1 << 31:
        raise ValueError("image too large for int32 offsets")
    dev = planes.device
    params = check_params(np.asarray(params), n_planes)
    (kinds_t,), (init_a, init_b, bin_a, bin_b, weight_lut_), update_steps = check_model(
        [kinds], [(n_planes, h, w)], init_a, init_b, bin_a, bin_b, weight_lut_, update_steps, dev)
    init_c, bin_s, bin_g = (torch.from_numpy(a).to(dev) for a in fr.check_table_c(
        need_tensor("init_c", init_c).cpu().numpy(), need_tensor("bin_s", bin_s).cpu().numpy(),
        need_tensor("bin_g", bin_g).cpu().numpy()))
    planes = planes.contiguous()
    if bias is None:
        bias = np.zeros((n_planes, fr.N_BIAS), np.int32)
        if (params[:, 0] != 0).any():
            _, _, bctx, e4 = strip_symbols(planes, params, bias, bin_s, bin_g, lane_rows)
            bias = fr.choose_bias(bctx.cpu().numpy(), e4.cpu().numpy(), params)
    bias = fr.check_bias(bias, params)
    res, ctx, _, _ = strip_symbols(planes, params, bias, bin_s, bin_g, lane_rows)
    kinds_np = kinds_t.cpu().numpy()
    if mix is None:
        cost = np.zeros((-(-h // lane_rows), N_KINDS, fr.CANDIDATE_MIXES.shape[0]))
        fr._strip_costs(res.cpu().numpy(), ctx.cpu().numpy(), kinds_np,
                        *(t.cpu().numpy().astype(np.uint16) for t in (init_a, init_b, init_c)),
                        bin_a.cpu().numpy(), bin_b.cpu().numpy(), weight_lut_.cpu().numpy(), update_steps, lane_rows,
                        fr.CANDIDATE_MIXES, fr._COST_BITS, cost)
        mix = fr.choose_mix(cost.sum(axis=0), kinds_np)
    mix = fr.check_mix(mix)
    counts, words = _code(res, ctx, kinds_t, mix, init_a, init_b, init_c, bin_a, bin_b, weight_lut_, update_steps,
                          lane_rows, states)
    return mix, bias, counts, words


def _code(res, ctx, kinds, mix, init_a, init_b, init_c, bin_a, bin_b, weight_lut_, update_steps, lane_rows, states):
    """Kernel 3 over the image's strips -> (counts, words) on res' device."""
    dev = res.device
    shape = tuple(int(v) for v in res.shape)
    desc_np, _ = strip_descriptors([shape], [lane_rows])
    desc = torch.from_numpy(desc_np).to(dev)
    mix_t = torch.from_numpy(mix.astype(np.int32).reshape(1, 9)).to(dev)
    n_strips = desc_np.shape[0]
    strip_symbols_ = int(((desc_np[:, 6] - desc_np[:, 5]) * desc_np[:, 2] * desc_np[:, 4]).max())
    stride_words = strip_symbols_ + 2 * MAX_STATES
    stride_raw = (6 * strip_symbols_ + 15) // 16 + 1
    per_launch = max(1, min(STRIPS_PER_LAUNCH, 64, SYMBOLS_PER_LAUNCH // strip_symbols_))
    list_cap, ring_rows = launch_shape(desc_np, update_steps)
    slots = min(n_strips, per_launch)
    state = StripState(init_a, init_b, slots, list_cap, ring_rows)
    table_c = TableC(init_c, slots, list_cap)
    start = torch.empty(slots * strip_symbols_, dtype=torch.int32, device=dev)
    freq = torch.empty(slots * strip_symbols_, dtype=torch.int32, device=dev)
    raw = torch.empty(slots * stride_raw, dtype=torch.int32, device=dev)
    scratch = torch.empty(slots * stride_words, dtype=torch.int32, device=dev)
    counts = torch.empty((n_strips, 3), dtype=torch.int64, device=dev)
    pieces = []
    for first in range(0, n_strips, per_launch):
        g = min(per_launch, n_strips - first)
        raw.zero_()
        ta, tb, ha, hb, sa, sb, ua, ub, fa, fb, la, lb, ring = state.reset()
        tc, hc, sc, uc, fc, lc = table_c.reset()
        _fused_encode_kernel[(g,)](
            desc, res.reshape(-1), ctx.reshape(-1), kinds, mix_t, ta, tb, tc, ha, hb, hc, sa, sb, sc, ua, ub, uc,
            fa, fb, fc, la, lb, lc, ring, bin_a, bin_b, weight_lut_, start, freq, raw, scratch, counts,
            weight_lut_.shape[0], update_steps, list_cap, ring_rows, strip_symbols_, stride_raw, stride_words,
            _check_states(states).bit_length() - 1, first,
            NC_A=NC_A, NC_B=NC_B, NC_C=fr.NC_C, N_KINDS=N_KINDS, N_TOKENS=N_TOKENS, Q_ADAPT=Q_ADAPT, ACT_MAX=ACT_MAX,
            NB_B=NB_B, RANS_L=RANS_L, MIX_BITS=MIX_BITS, RING=RING, MAX_STATES=MAX_STATES,
            SYMBOLS_PER_STATE=SYMBOLS_PER_STATE, STATE_BUDGET=STATE_BUDGET, BLOCK_K=BLOCK_K, BLOCK_U=BLOCK_U,
            num_warps=NUM_WARPS)
        pieces.append(_gather(scratch, raw, counts[first:first + g], stride_words, stride_raw))
    return counts, torch.cat([w for piece in pieces for w in piece])
