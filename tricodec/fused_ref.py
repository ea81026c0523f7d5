"""The fused wavefront model (``tric-wf3``): the self-correcting predictor inside the wavefront coder's
steps, and a third context table that reads the predictor's state.  This module is its CPU twin and
specification; there are no Triton kernels for it yet (the model codes on the host: ``fused_model.py``).

What differs from ``tric-wf2`` (``wavefront_ref`` coding ``blend_ref``'s residuals):

Strips predict alone.  Each strip (``lane_rows`` rows, as ``wavefront_ref``) is predicted as an image of
its own by ``blend_ref``'s predictor at depth 8 (its rows ``y0 .. y1`` are the whole image to it: the
neighbours above its first row are missing, ``pv`` at its first pixel is 128 or 0), so a decoder rebuilds
a strip's pixels while it decodes the strip, strips in parallel.  The schedule is ``wavefront_ref``'s:
plane p's pixel (y, x) is coded at step ``x + 2y + 2p``, when every pixel its prediction reads (W, N, NW,
NE, NNE, WW, NN of its plane; (y, x) of earlier planes) has been decoded.

Table C.  Besides tables A and B (``wavefront_ref``'s contexts of the residuals), each symbol reads table C
(``NC_C = 4000`` contexts per plane kind) by where its neighbours lie against the unrounded prediction
``pv4`` (in quarter units, blend_ref's), how large the predictor expects its error to be, and the
prediction's rounding::

    rel5(d) = 2 + sign(d) * ((d != 0) + (|d| > 4))                   # 0..4
    e = bin_s[min(min_i S_i, len(bin_s) - 1)]       if the plane's mode is the blend   # 0..7
        bin_g[min(|W - NW| + |N - NW| + |NE - N|, len(bin_g) - 1)]   if it is MED (pv4 = 4 med)
    c = (((rel5(4 W - pv4) * 5 + rel5(4 N - pv4)) * 5 + rel5(4 NE - pv4)) * 8 + e) * 4 + (pv4 & 3)

(W, N, NE: the plane's values ``v`` with blend_ref's edge fallbacks; ``S_i``: the blend's error sums.)
Table C adapts as A and B do (``wavefront_ref``: same counts, same update, same weight schedule).

Bias cancellation.  On a blend plane the prediction is corrected by a per-image bias before it is
rounded or read by table C's context: with ``pv4`` the blend's output,

    b = ((4 W > pv4) + 2 (4 N > pv4) + 4 (4 NW > pv4) + 8 (4 NE > pv4)) * 4
        + (min_i S_i > 40) + (min_i S_i > 120) + (min_i S_i > 320)          # 64 contexts
    pv4 = pv4 + bias[plane, b]                                               # int8, recorded in SIDE

(the encoder's choice: the median of ``4 v - pv4`` in each context over the image, CALIC-style, on
planes of 2^16 pixels or more; MED planes have none).

Static mix.  A token's cumulative is a mix of the three tables with weights the encoder chooses per image
and plane kind (``mix[kind] = (wa, wb, wc)``, each 0..16, summing to 16, recorded in SIDE)::

    C(i) = ((wa * A[ca, i] + wb * B[cb, i] + wc * C[c, i]) >> 4) + i      # C(0) = 0, C(24) = 2^16

(``(8, 8, 0)`` is tric-wf2's ``(A + B + 2i) >> 1``.)  Every table runs from 0 to Q_ADAPT without
decreasing, so every token has frequency >= 1.  The encoder picks, per plane kind, the candidate mix with
the smallest code length (float estimates on every ``COST_EVERY``-th of the first half of each strip's
steps: a choice it records, never recomputed by a decoder).

Interleaved rANS, raw extra bits and the strip layout are ``wavefront_ref``'s.  Everything a decoder
computes is integer arithmetic (the blend's one division is blend_ref's exact float64 form).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .blend_ref import E_MAX, WEIGHT_LUT, _med, _upper_error_sums, check_params
from .context_ref import (ACT_MAX, NB_B, _sgn, N_KINDS, N_TOKENS, Q_ADAPT, _extra_bits, _pop, _token, _untoken,
                          check_kinds)
from .errors import DecodeError
from .rans_ref import RANS_L
from .wavefront_ref import (RING, STRIPS_PER_BATCH, _append, _arrays, _check_states, _check_update_steps,
                            _clear_slot, _ctx_ring, _emit_words, _fresh, _row_range, _update,
                            check_wavefront_lanes, lane_geometry, max_lane_words, n_steps)

NC_C = 4000                 # table C's contexts per plane kind: 5 x 5 x 5 x 8 x 4
N_BIAS = 64                 # bias contexts of a blend plane: 16 orders of W, N, NW, NE x 4 error buckets
N_ERR_BINS = 8
MIX_SHIFT = 4
MIX_TOTAL = 1 << MIX_SHIFT  # a plane kind's three weights sum to this
OFF = 4096                  # blend_ref's offset at depth 8 (keeps the division's operands positive)
COST_EVERY = 16             # the encoder's mix estimate prices every this many steps ...
COST_SHARE = 8              # ... of the first COST_SHARE / 16 of each strip's steps
# The mixes the encoder tries per plane kind (any mix summing to 16 decodes): tric-wf2's, A and B with a
# growing share of C, C alone, and C with one of A, B.
CANDIDATE_MIXES = np.array([(8, 8, 0), (7, 7, 2), (6, 6, 4), (6, 5, 5), (5, 5, 6), (4, 4, 8), (3, 3, 10),
                            (2, 2, 12), (1, 1, 14), (0, 0, 16), (8, 0, 8), (0, 8, 8), (4, 0, 12), (0, 4, 12),
                            (10, 0, 6), (0, 10, 6)], np.int64)
# 16 - log2(f): a symbol's code length in bits at frequency f of 2^16 (the encoder's estimate only)
_COST_BITS = np.concatenate([[64.0], 16.0 - np.log2(np.arange(1, (1 << 16) + 1, dtype=np.float64))])


def err_bins(edges) -> np.ndarray:
    """int32 look-up table of ``N_ERR_BINS`` bins of an error estimate up to ``edges[-1]``: bin
    ``min(searchsorted(edges, s, 'right') // 2, 7)`` (16 edges' worth of levels folded two by two)."""
    edges = np.asarray(edges, np.int64)
    act = np.arange(int(edges[-1]) + 1)
    return np.minimum(np.searchsorted(edges, act, side="right") * N_ERR_BINS // 16, N_ERR_BINS - 1).astype(np.int32)


# ---- per-pixel helpers (the encoder's; the decoder writes its loop out, see its note on _pop) ----

@njit(cache=True, nogil=True, inline="always")
def _rel5(d):
    a = abs(d)
    m = (1 if a > 0 else 0) + (1 if a > 4 else 0)
    return 2 - m if d < 0 else 2 + m


@njit(cache=True, nogil=True, inline="always")
def _prediction(pv4, yy, xx, ref, no_refs):
    """The rounded, clamped prediction of the sample (blend_ref's ``pred``)."""
    pv = ((pv4 + 2 + OFF) >> 2) - (OFF >> 2)
    if yy == 0 and xx == 0:
        pv = 128 if no_refs else 0
    return min(max(pv + ref, 0), 255)


@njit(cache=True, nogil=True, inline="always")
def _ref(planes, q1, c1, q2, c2, y, xx):
    """The colour reference of the sample (blend_ref's ``ref``).  Straight-line code (flags, not branches):
    one basic block, so numba's reference-count pruning drops the array's incref/decref in any caller."""
    r1 = np.int32(q1 >= 0) * c1 * np.int32(planes[max(q1, 0), y, xx])
    r2 = np.int32(q2 >= 0) * c2 * np.int32(planes[max(q2, 0), y, xx])
    return (r1 + r2) >> 2


# ---- the encoder ----

@njit(cache=True, nogil=True)
def _strip_symbols(planes, params, bias, bin_s, bin_g, y0, y1, res, ctxc, bctx, e4):
    """The strip's residual symbols and table-C contexts, each pixel's bias context (-1 on MED planes) and
    error ``4 v - pv4``.  Raster order, every pixel known: row by row as blend_ref's encoder (the errors'
    upper-row part of S summed once a row, the same row's errors at x-1, x-2 carried in registers)."""
    n_planes, _, w = planes.shape
    for p in range(n_planes):
        mode, q1, c1, q2, c2 = params[p, 0], params[p, 1], params[p, 2], params[p, 3], params[p, 4]
        no_refs = q1 < 0 and q2 < 0
        vr = np.zeros((4, w), np.int32)
        err = np.zeros((6, 4, w), np.int16)
        up = np.zeros((6, w), np.int32)
        bp = bias[p]
        for yy in range(y1 - y0):
            y = y0 + yy
            r0 = yy & 3
            r1 = (yy - 1) & 3
            r2 = (yy - 2) & 3
            if mode != 0:
                _upper_error_sums(err, r1, r2, yy, up)
            a0 = a1 = a2 = a3 = a4 = a5 = np.int32(0)       # errors at x-1
            b0 = b1 = b2 = b3 = b4 = b5 = np.int32(0)       # errors at x-2
            s0 = s1 = s2 = s3 = s4 = s5 = np.int32(0)
            for x in range(w):
                ref = _ref(planes, q1, c1, q2, c2, y, x)
                vw = vr[r0, x - 1] if x > 0 else (vr[r1, x] if yy > 0 else np.int32(0))
                vn = vr[r1, x] if yy > 0 else vw
                vnw = vr[r1, x - 1] if (yy > 0 and x > 0) else vn
                vne = vr[r1, x + 1] if (yy > 0 and x < w - 1) else vn
                b = -1
                if mode == 0:
                    pv4 = 4 * _med(vw, vn, vnw)
                    e = bin_g[min(abs(vw - vnw) + abs(vn - vnw) + abs(vne - vn), bin_g.shape[0] - 1)]
                else:
                    vnne = vr[r2, x + 1] if (yy > 1 and x < w - 1) else vne
                    s0 = 4 * _med(vw, vn, vnw)
                    s1 = 4 * vw
                    s2 = 4 * vn
                    s3 = 4 * (vw + vne - vn)
                    s4 = 4 * (vn + vne - vnne)
                    s5 = 2 * (vw + vn) + vne - vnw
                    e0 = up[0, x] + 2 * a0 + b0
                    e1 = up[1, x] + 2 * a1 + b1
                    e2 = up[2, x] + 2 * a2 + b2
                    e3 = up[3, x] + 2 * a3 + b3
                    e4s = up[4, x] + 2 * a4 + b4
                    e5 = up[5, x] + 2 * a5 + b5
                    w0 = np.int64(WEIGHT_LUT[e0])
                    w1 = np.int64(WEIGHT_LUT[e1])
                    w2 = np.int64(WEIGHT_LUT[e2])
                    w3 = np.int64(WEIGHT_LUT[e3])
                    w4 = np.int64(WEIGHT_LUT[e4s])
                    w5 = np.int64(WEIGHT_LUT[e5])
                    tw = w0 + w1 + w2 + w3 + w4 + w5
                    ts = (w0 * (s0 + OFF) + w1 * (s1 + OFF) + w2 * (s2 + OFF) + w3 * (s3 + OFF) + w4 * (s4 + OFF)
                          + w5 * (s5 + OFF))
                    # blend_ref's exact float64 form of (ts + tw // 2) // tw (its module proves it)
                    pv4 = s0 if tw == 0 else np.int32(np.float64(ts + (tw >> 1)) / np.float64(tw)) - OFF
                    smin = min(min(min(e0, e1), min(e2, e3)), min(e4s, e5))
                    b = (((4 * vw > pv4) + 2 * (4 * vn > pv4) + 4 * (4 * vnw > pv4) + 8 * (4 * vne > pv4)) * 4
                         + (smin > 40) + (smin > 120) + (smin > 320))
                    pv4 += bp[b]
                    e = bin_s[min(smin, bin_s.shape[0] - 1)]
                c = (((_rel5(4 * vw - pv4) * 5 + _rel5(4 * vn - pv4)) * 5 + _rel5(4 * vne - pv4)) * N_ERR_BINS
                     + e) * 4 + (pv4 & 3)
                pred = _prediction(pv4, yy, x, ref, no_refs)
                xv = np.int32(planes[p, y, x])
                v = xv - ref
                res[p, y, x] = np.uint8((xv - pred + 128) & 255)
                ctxc[p, y, x] = c
                bctx[p, y, x] = b
                e4[p, y, x] = 4 * v - pv4
                vr[r0, x] = v
                if mode != 0:
                    v4 = 4 * v
                    b0, b1, b2, b3, b4, b5 = a0, a1, a2, a3, a4, a5
                    a0 = min(abs(v4 - s0), E_MAX)
                    a1 = min(abs(v4 - s1), E_MAX)
                    a2 = min(abs(v4 - s2), E_MAX)
                    a3 = min(abs(v4 - s3), E_MAX)
                    a4 = min(abs(v4 - s4), E_MAX)
                    a5 = min(abs(v4 - s5), E_MAX)
                    err[0, r0, x] = a0
                    err[1, r0, x] = a1
                    err[2, r0, x] = a2
                    err[3, r0, x] = a3
                    err[4, r0, x] = a4
                    err[5, r0, x] = a5


@njit(cache=True, nogil=True, inline="always")
def _mixed(wa, wb, wc, a, b, c, tok):
    return ((wa * np.int64(a) + wb * np.int64(b) + wc * np.int64(c)) >> MIX_SHIFT) + tok


@njit(cache=True, nogil=True)
def _model_pass(res, ctxc, kinds, init_a, init_b, init_c, bin_a, bin_b, weight_lut, update_steps, y0, y1, mix,
                cands, cost_bits, cost, start, freq, nx, raw, counts):
    """Forward over one strip in schedule order, the tables adapting as a decoder's will.  With ``mix``
    (3, 3): each symbol's (start, freq), each step's symbol count, the extra bits in ``raw`` -> raw words.
    Without (``mix.shape[0] == 0``): adds each candidate mix's code length per plane kind to ``cost``
    (kinds, candidates), on every COST_EVERY-th step of the first COST_SHARE / 16 of the strip's -> 0."""
    n_planes, _, w = res.shape
    rows = y1 - y0
    emit = mix.shape[0] > 0
    ta, tb, ha, hb, sa, sb, ua, ub, lista, listb = _fresh(init_a, init_b)
    tc, _, hc, _, sc, _, uc, _, listc, _ = _fresh(init_c, init_c[:, :1])
    ring = np.zeros((n_planes, RING, rows + 2), np.int16)
    j = 0
    acc = np.uint64(0)
    n_acc = 0
    n_raw = 0
    na = nb = nc = 0
    steps = n_steps(n_planes, rows, w)
    last = steps if emit else max(1, (steps * COST_SHARE) >> 4)
    for t in range(last):
        j0 = j
        priced = (not emit) and t % COST_EVERY == 0
        for p in range(n_planes):
            d = t - 2 * p
            kind = kinds[p]
            lo_y, hi_y = _row_range(d, rows, w)
            _clear_slot(ring, p, d)
            for yy in range(lo_y, hi_y):
                a, b = _ctx_ring(ring, p, kind, d, yy + 2, bin_a, bin_b)
                c = ctxc[p, y0 + yy, d - 2 * yy]
                r = np.int32(res[p, y0 + yy, d - 2 * yy]) - 128
                ring[p, d & (RING - 1), yy + 2] = r
                tok, n_extra, extra = _token(2 * r if r >= 0 else -2 * r - 1)
                if emit:
                    wa, wb, wc = mix[kind, 0], mix[kind, 1], mix[kind, 2]
                    lo = _mixed(wa, wb, wc, ta[kind, a, tok], tb[kind, b, tok], tc[kind, c, tok], tok)
                    start[j] = lo
                    freq[j] = _mixed(wa, wb, wc, ta[kind, a, tok + 1], tb[kind, b, tok + 1], tc[kind, c, tok + 1],
                                     tok + 1) - lo
                    nx[j] = n_extra
                    if n_extra > 0:
                        acc |= np.uint64(extra) << np.uint64(n_acc)
                        n_acc += n_extra
                        if n_acc >= 16:
                            raw[n_raw] = np.uint16(acc & np.uint64(0xFFFF))
                            n_raw += 1
                            acc >>= np.uint64(16)
                            n_acc -= 16
                elif priced:
                    a0, a1 = ta[kind, a, tok], ta[kind, a, tok + 1]
                    b0, b1 = tb[kind, b, tok], tb[kind, b, tok + 1]
                    c0, c1 = tc[kind, c, tok], tc[kind, c, tok + 1]
                    for m in range(cands.shape[0]):
                        wa, wb, wc = cands[m, 0], cands[m, 1], cands[m, 2]
                        f = _mixed(wa, wb, wc, a1, b1, c1, 1) - _mixed(wa, wb, wc, a0, b0, c0, 0)
                        cost[kind, m] += cost_bits[f]
                j += 1
                if sa[kind, a] == 0:
                    lista[na, 0] = kind
                    lista[na, 1] = a
                    na += 1
                sa[kind, a] += 1
                ha[kind, a, tok] += 1
                if sb[kind, b] == 0:
                    listb[nb, 0] = kind
                    listb[nb, 1] = b
                    nb += 1
                sb[kind, b] += 1
                hb[kind, b, tok] += 1
                if sc[kind, c] == 0:
                    listc[nc, 0] = kind
                    listc[nc, 1] = c
                    nc += 1
                sc[kind, c] += 1
                hc[kind, c, tok] += 1
        if emit:
            counts[t] = j - j0
        if (t + 1) % update_steps == 0 or t == steps - 1:
            _update(ta, ha, sa, ua, lista, na, weight_lut)
            _update(tb, hb, sb, ub, listb, nb, weight_lut)
            _update(tc, hc, sc, uc, listc, nc, weight_lut)
            na = nb = nc = 0
    if n_acc > 0:
        raw[n_raw] = np.uint16(acc & np.uint64(0xFFFF))
        n_raw += 1
    return n_raw


@njit(cache=True, parallel=True, nogil=True)
def _strip_errors(planes, params, bias, bin_s, bin_g, lane_rows, res, ctxc, bctx, e4):
    """Every strip's symbols, contexts and errors (the bias's first pass)."""
    h = planes.shape[1]
    for g in prange((h + lane_rows - 1) // lane_rows):
        y0 = g * lane_rows
        _strip_symbols(planes, params, bias, bin_s, bin_g, y0, min(h, y0 + lane_rows), res, ctxc, bctx, e4)


@njit(cache=True, parallel=True, nogil=True)
def _strip_costs(res, ctxc, kinds, init_a, init_b, init_c, bin_a, bin_b, weight_lut, update_steps, lane_rows, cands,
                 cost_bits, cost):
    """Every strip's candidate mixes' code lengths in ``cost[strip]``."""
    h = res.shape[1]
    none = np.zeros((0, 3), np.int64)
    for g in prange(cost.shape[0]):
        y0 = g * lane_rows
        _model_pass(res, ctxc, kinds, init_a, init_b, init_c, bin_a, bin_b, weight_lut, update_steps, y0,
                    min(h, y0 + lane_rows), none, cands, cost_bits, cost[g], np.empty(0, np.uint32),
                    np.empty(0, np.uint32), np.empty(0, np.uint8), np.empty(0, np.uint16), np.empty(0, np.int64))


def strip_symbols(planes: np.ndarray, params: np.ndarray, bin_s, bin_g, lane_rows: int, bias=None) -> tuple:
    """uint8 (P, H, W) planes, checked int32 params -> (bias, residual symbols uint8 (P, H, W), table-C
    contexts int16 (P, H, W)) with ``bias`` as given or, if None, the encoder's (``choose_bias``, from a
    first pass without it)."""
    n_planes, h, w = planes.shape
    res = np.empty_like(planes)
    ctxc = np.empty((n_planes, h, w), np.int16)
    bctx = np.empty((n_planes, h, w), np.int8)
    e4 = np.empty((n_planes, h, w), np.int16)
    zero = np.zeros((n_planes, N_BIAS), np.int32)
    _strip_errors(planes, params, zero, bin_s, bin_g, lane_rows, res, ctxc, bctx, e4)
    bias = choose_bias(bctx, e4, params) if bias is None else check_bias(bias, params)
    if bias.any():
        _apply_bias(planes, params, bias, lane_rows, ctxc, bctx, e4, res)
    return bias, res, ctxc


@njit(cache=True, nogil=True)
def _encode_strip(res, ctxc, kinds, init_a, init_b, init_c, bin_a, bin_b, weight_lut, update_steps, y0, y1, mix,
                  scratch, base, stride, out_counts, states):
    """As ``wavefront_ref._encode_strip``, with the fused model's pass."""
    n_planes, _, w = res.shape
    n_sym = (y1 - y0) * n_planes * w
    steps = n_steps(n_planes, y1 - y0, w)
    start = np.empty(n_sym, np.uint32)
    freq = np.empty(n_sym, np.uint32)
    nx = np.empty(n_sym, np.uint8)
    raw = np.empty(n_sym // 2 + 1, np.uint16)
    counts = np.empty(steps, np.int64)
    n_raw = _model_pass(res, ctxc, kinds, init_a, init_b, init_c, bin_a, bin_b, weight_lut, update_steps, y0, y1,
                        mix, np.zeros((0, 3), np.int64), np.zeros(0), np.zeros((0, 0)), start, freq, nx, raw, counts)
    _emit_words(start, freq, nx, raw, n_raw, counts, n_sym, steps, scratch, base, stride, out_counts, states)


@njit(cache=True, parallel=True, nogil=True)
def _encode_strips_nb(res, ctxc, kinds, init_a, init_b, init_c, bin_a, bin_b, weight_lut, update_steps, lane_rows,
                      mix, first, scratch, stride, counts, states):
    h = res.shape[1]
    for g in prange(counts.shape[0]):
        y0 = (first + g) * lane_rows
        _encode_strip(res, ctxc, kinds, init_a, init_b, init_c, bin_a, bin_b, weight_lut, update_steps, y0,
                      min(h, y0 + lane_rows), mix, scratch, g * stride, stride, counts[g], states)


def choose_mix(cost: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """int64 (3, 3): per plane kind the candidate of the smallest estimated code length (kinds the image
    does not have: tric-wf2's (8, 8, 0))."""
    mix = np.tile(CANDIDATE_MIXES[0], (N_KINDS, 1))
    for kind in set(int(k) for k in kinds):
        mix[kind] = CANDIDATE_MIXES[int(np.argmin(cost[kind]))]
    return mix


BIAS_MIN_PIXELS = 1 << 16  # a plane this small gains less than its table costs (~0.3% of ~3 bits a pixel)


def choose_bias(bctx: np.ndarray, e4: np.ndarray, params: np.ndarray) -> np.ndarray:
    """int32 (P, N_BIAS): per blend plane of at least BIAS_MIN_PIXELS pixels and per bias context the
    median of the errors ``e4`` of its pixels (the lower one; 0 for a context no pixel has), clamped to
    int8; other planes: zeros (no table)."""
    out = np.zeros((params.shape[0], N_BIAS), np.int32)
    if bctx[0].size < BIAS_MIN_PIXELS:
        return out
    for p in np.flatnonzero(params[:, 0] != 0):
        _medians(bctx[p], e4[p], out[p])
    return out


@njit(cache=True, nogil=True)
def _medians(bctx, e4, out):
    """Per context the lower median of e4 clamped to [-128, 127] (= the median of the clamped values:
    clamping is monotone), by counting: one pass, no sort."""
    hist = np.zeros((N_BIAS, 256), np.int64)
    for y in range(bctx.shape[0]):
        for x in range(bctx.shape[1]):
            b = bctx[y, x]
            if b >= 0:
                hist[b, min(max(np.int32(e4[y, x]), -128), 127) + 128] += 1
    for b in range(N_BIAS):
        n = hist[b].sum()
        if n == 0:
            continue
        k = (n - 1) // 2
        acc = 0
        for v in range(256):
            acc += hist[b, v]
            if acc > k:
                out[b] = v - 128
                break


@njit(cache=True, parallel=True, nogil=True)
def _apply_bias(planes, params, bias, lane_rows, ctxc, bctx, e4, res):
    """The second pass, as a map: pass one (zero bias) left each blend pixel's bias context ``bctx``, its
    error ``e4 = 4 v - pv4`` and its table-C context; with the chosen bias, pv4 moves by ``bias[b]`` and
    the pixel's residual, table-C context and error follow (W, N, NE and the error bin do not change)."""
    n_planes, h, w = planes.shape
    for job in prange(n_planes * h):
        p = job // h
        y = job % h
        if params[p, 0] == 0:
            continue
        q1, c1, q2, c2 = params[p, 1], params[p, 2], params[p, 3], params[p, 4]
        yy = y % lane_rows
        for x in range(w):
            b = bctx[p, y, x]
            if b < 0:
                continue
            xv = np.int32(planes[p, y, x])
            ref = _ref(planes, q1, c1, q2, c2, y, x)
            v = xv - ref
            vw = (_v(planes, p, q1, c1, q2, c2, y, x - 1) if x > 0
                  else (_v(planes, p, q1, c1, q2, c2, y - 1, x) if yy > 0 else 0))
            vn = _v(planes, p, q1, c1, q2, c2, y - 1, x) if yy > 0 else vw
            vne = _v(planes, p, q1, c1, q2, c2, y - 1, x + 1) if (yy > 0 and x < w - 1) else vn
            pv4 = 4 * v - np.int32(e4[p, y, x]) + bias[p, b]
            e = (np.int32(ctxc[p, y, x]) >> 2) & (N_ERR_BINS - 1)
            ctxc[p, y, x] = (((_rel5(4 * vw - pv4) * 5 + _rel5(4 * vn - pv4)) * 5 + _rel5(4 * vne - pv4))
                             * N_ERR_BINS + e) * 4 + (pv4 & 3)
            pred = _prediction(pv4, yy, x, ref, q1 < 0 and q2 < 0)
            res[p, y, x] = np.uint8((xv - pred + 128) & 255)
            e4[p, y, x] = 4 * v - pv4


@njit(cache=True, nogil=True, inline="always")
def _v(planes, p, q1, c1, q2, c2, y, x):
    return np.int32(planes[p, y, x]) - _ref(planes, q1, c1, q2, c2, y, x)


# ---- checks ----

def check_bias(bias, params: np.ndarray) -> np.ndarray:
    """``bias`` as int32 (P, N_BIAS), or ValueError unless int8-ranged with zero rows on MED planes."""
    b = np.asarray(bias)
    if b.shape != (params.shape[0], N_BIAS) or b.dtype.kind not in "iu" \
            or (b.size and (int(b.min()) < -128 or int(b.max()) > 127)):
        raise ValueError(f"bias must be (P, {N_BIAS}) int8 values")
    if (b[params[:, 0] == 0] != 0).any():
        raise ValueError("a MED plane has no bias")
    return np.ascontiguousarray(b, dtype=np.int32)


def check_mix(mix) -> np.ndarray:
    """``mix`` as int64 (3, 3), or ValueError unless every weight is in 0..16 and each kind's sum is 16."""
    m = np.asarray(mix)
    if m.shape != (N_KINDS, 3) or m.dtype.kind not in "iu" or int(m.min()) < 0 \
            or (m.sum(axis=1) != MIX_TOTAL).any():
        raise ValueError(f"mix must be (3, 3) weights in 0..{MIX_TOTAL}, each row summing to {MIX_TOTAL}")
    return np.ascontiguousarray(m, dtype=np.int64)


def check_table_c(init_c, bin_s, bin_g) -> tuple:
    """Table C's starting cumulatives and error bins as the twin needs them, or ValueError."""
    init_c = np.ascontiguousarray(init_c, dtype=np.int32)
    if init_c.shape != (N_KINDS, NC_C, N_TOKENS + 1) or (init_c[..., 0] != 0).any() \
            or (init_c[..., -1] != Q_ADAPT).any() or (np.diff(init_c, axis=-1) < 0).any():
        raise ValueError(f"init_c must be (3, {NC_C}, 25) cumulatives from 0 to {Q_ADAPT}")
    out = [init_c]
    for name, t in (("bin_s", bin_s), ("bin_g", bin_g)):
        t = np.ascontiguousarray(t, dtype=np.int32)
        if t.ndim != 1 or not 1 <= t.shape[0] <= 1 << 16 or int(t.min()) < 0 or int(t.max()) >= N_ERR_BINS:
            raise ValueError(f"{name} must hold 1 to 2**16 bins in 0..{N_ERR_BINS - 1}")
        out.append(t)
    return tuple(out)


# A model's tables are its constants (its identity is their content, hashed when it is loaded): each set
# of table arrays is checked and converted once, not for every image (0.45 ms of a 0.25 MP grey photo's
# ~10 ms decode).
_CHECKED: dict = {}   # ids of the 8 table arrays -> (those arrays, their checked forms)


def _model(kinds, init_a, init_b, init_c, bin_a, bin_b, bin_s, bin_g, weight_lut, n_planes):
    """The model's arrays checked, as the twin's loops take them (the tables as uint16)."""
    tables = (init_a, init_b, init_c, bin_a, bin_b, bin_s, bin_g, weight_lut)
    key = tuple(map(id, tables))
    hit = _CHECKED.get(key)
    if hit is None or any(a is not b for a, b in zip(hit[0], tables)):
        hit = (tables, _checked_tables(*tables))
        if len(_CHECKED) >= 8:
            _CHECKED.clear()
        _CHECKED[key] = hit
    return (check_kinds(np.ascontiguousarray(kinds, dtype=np.int32), n_planes),) + hit[1]


def _checked_tables(init_a, init_b, init_c, bin_a, bin_b, bin_s, bin_g, weight_lut) -> tuple:
    # (one plane's kinds stand in: _model checks the real ones on every call)
    _, init_a, init_b, bin_a, bin_b, weight_lut = _arrays(np.zeros(1, np.int32), init_a, init_b, bin_a, bin_b,
                                                          weight_lut, 1)
    init_c, bin_s, bin_g = check_table_c(init_c, bin_s, bin_g)
    # the working tables as uint16 (every entry <= Q_ADAPT < 2^16): half the cache of int32, same values
    init_a, init_b, init_c = (t.astype(np.uint16) for t in (init_a, init_b, init_c))
    return init_a, init_b, init_c, bin_a, bin_b, bin_s, bin_g, weight_lut


def encode_fused(planes: np.ndarray, params, kinds, init_a, init_b, init_c, bin_a, bin_b, bin_s, bin_g, weight_lut,
                 update_steps: int, lane_rows: int, mix=None, bias=None, states: int = 0):
    """Encode planes with the fused model.

    Args:
        planes: uint8 (P, H, W), planes in coding order.
        params: int (P, 5): blend_ref's (mode, q1, c1, q2, c2) per plane.
        kinds, init_a, init_b, bin_a, bin_b, weight_lut, update_steps, lane_rows, states: as
            ``wavefront_ref.encode_wavefront_lanes``.
        init_c: int32 (3, NC_C, 25): table C's starting cumulatives; bin_s, bin_g: int32 error bins (module
            docstring).
        mix: None (the encoder chooses) or int (3, 3): the weights of tables A, B, C per plane kind.
        bias: None (the encoder chooses) or int (P, N_BIAS): each blend plane's bias table (MED planes: 0).

    Returns:
        (mix, bias, counts, words): int64 (3, 3) and int32 (P, N_BIAS) as used; the strip table and words
        of ``wavefront_ref.encode_wavefront_lanes``' layout.
    """
    planes = np.ascontiguousarray(planes, dtype=np.uint8)
    n_planes, h, w = planes.shape
    if planes.size == 0 or lane_rows < 1:
        raise ValueError("need a non-empty (P, H, W) array and lane_rows >= 1")
    params = check_params(params, n_planes)
    arrays = _model(kinds, init_a, init_b, init_c, bin_a, bin_b, bin_s, bin_g, weight_lut, n_planes)
    kinds, init_a, init_b, init_c, bin_a, bin_b, bin_s, bin_g, weight_lut = arrays
    update_steps = _check_update_steps(update_steps)
    states = _check_states(states)
    n_lanes = lane_geometry(h, lane_rows)
    bias, res, ctxc = strip_symbols(planes, params, bin_s, bin_g, lane_rows, bias)
    cost = np.zeros((n_lanes, N_KINDS, CANDIDATE_MIXES.shape[0]))
    if mix is None:
        _strip_costs(res, ctxc, kinds, init_a, init_b, init_c, bin_a, bin_b, weight_lut, update_steps, lane_rows,
                     CANDIDATE_MIXES, _COST_BITS, cost)
    mix = choose_mix(cost.sum(axis=0), kinds) if mix is None else check_mix(mix)
    stride = sum(max_lane_words(planes.shape, lane_rows))
    counts = np.empty((n_lanes, 3), dtype=np.uint32)
    words = np.empty(n_lanes * stride, dtype=np.uint16)
    pos = 0
    for first in range(0, n_lanes, STRIPS_PER_BATCH):
        g = min(STRIPS_PER_BATCH, n_lanes - first)
        scratch = np.empty(g * stride, dtype=np.uint16)
        _encode_strips_nb(res, ctxc, kinds, init_a, init_b, init_c, bin_a, bin_b, weight_lut, update_steps,
                          lane_rows, mix, first, scratch, stride, counts[first:first + g], states)
        pos = _append(scratch, stride, counts[first:first + g], words, pos)
    return mix, bias, counts, words[:pos].copy()


# ---- the decoder: one fused loop per strip ----

@njit(cache=True, nogil=True)
def _decode_strip(words, pos, end, raw_end, k_states, params, bias, kinds, init_a, init_b, init_c, bin_a, bin_b,
                  bin_s, bin_g, weight_lut, update_steps, y0, y1, mix, lut, out):
    """One strip's words -> its pixels in ``out`` (P, H, W) -> 0, or 1 if its words are corrupted."""
    n_planes, _, w = out.shape
    rows = y1 - y0
    if end - pos < 2 * k_states:
        return 1
    x = np.empty(k_states, np.uint64)
    for k in range(k_states):
        x[k] = (np.uint64(words[pos]) << np.uint64(16)) | np.uint64(words[pos + 1])
        pos += 2
    ta, tb, ha, hb, sa, sb, ua, ub, lista, listb = _fresh(init_a, init_b)
    tc, _, hc, _, sc, _, uc, _, listc, _ = _fresh(init_c, init_c[:, :1])
    ring = np.zeros((n_planes, RING, rows + 2), np.int16)
    v = np.zeros((n_planes, 4, w), np.int32)
    err = np.zeros((n_planes, 2, 4, w + 4), np.uint64)
    sp = np.zeros(6, np.int32)
    rpos = end
    acc = np.uint64(0)
    n_acc = 0
    na = nb = nc = 0
    steps = n_steps(n_planes, rows, w)
    for t in range(steps):
        k = 0
        for p in range(n_planes):
            d = t - 2 * p
            kind = kinds[p]
            wa, wb, wc = mix[kind, 0], mix[kind, 1], mix[kind, 2]
            mode, q1, c1, q2, c2 = params[p, 0], params[p, 1], params[p, 2], params[p, 3], params[p, 4]
            vp = v[p]
            ep = err[p]
            bp = bias[p]
            lo_y, hi_y = _row_range(d, rows, w)
            _clear_slot(ring, p, d)
            for yy in range(lo_y, hi_y):
                xx = d - 2 * yy
                y = y0 + yy
                ref = np.int32(0)
                if q1 >= 0:
                    ref += c1 * np.int32(out[q1, y, xx])
                if q2 >= 0:
                    ref += c2 * np.int32(out[q2, y, xx])
                ref >>= 2
                # the prediction (as the encoder's _strip_symbols, written out for the reason _pop's note gives)
                r0 = yy & 3
                r1 = (yy - 1) & 3
                r2 = (yy - 2) & 3
                vw = vp[r0, xx - 1] if xx > 0 else (vp[r1, xx] if yy > 0 else 0)
                vn = vp[r1, xx] if yy > 0 else vw
                vnw = vp[r1, xx - 1] if (yy > 0 and xx > 0) else vn
                vne = vp[r1, xx + 1] if (yy > 0 and xx < w - 1) else vn
                if mode == 0:
                    pv4 = 4 * _med(vw, vn, vnw)
                    e = bin_g[min(abs(vw - vnw) + abs(vn - vnw) + abs(vne - vn), bin_g.shape[0] - 1)]
                else:
                    vnne = vp[r2, xx + 1] if (yy > 1 and xx < w - 1) else vne
                    sp[0] = 4 * _med(vw, vn, vnw)
                    sp[1] = 4 * vw
                    sp[2] = 4 * vn
                    sp[3] = 4 * (vw + vne - vn)
                    sp[4] = 4 * (vn + vne - vnne)
                    sp[5] = 2 * (vw + vn) + vne - vnw
                    tw = np.int64(0)
                    ts = np.int64(0)
                    smin = np.int32(1 << 30)
                    e2 = xx + 2
                    # six error sums at once: 16-bit lanes of two words (each sum <= 10 E_MAX < 2^16)
                    s_lo = (np.uint64(2) * (ep[0, r0, e2 - 1] + ep[0, r1, e2] + ep[0, r1, e2 - 1] + ep[0, r1, e2 + 1])
                            + ep[0, r0, e2 - 2] + ep[0, r2, e2])
                    s_hi = (np.uint64(2) * (ep[1, r0, e2 - 1] + ep[1, r1, e2] + ep[1, r1, e2 - 1] + ep[1, r1, e2 + 1])
                            + ep[1, r0, e2 - 2] + ep[1, r2, e2])
                    for i in range(6):
                        sv = np.int32(((s_lo if i < 4 else s_hi) >> np.uint64(16 * (i & 3))) & np.uint64(0xFFFF))
                        smin = min(smin, sv)
                        wi = np.int64(lut[sv])
                        tw += wi
                        ts += wi * np.int64(sp[i] + OFF)
                    pv4 = sp[0] if tw == 0 else np.int32(np.float64(ts + (tw >> 1)) / np.float64(tw)) - OFF
                    pv4 += bp[((4 * vw > pv4) + 2 * (4 * vn > pv4) + 4 * (4 * vnw > pv4) + 8 * (4 * vne > pv4)) * 4
                              + (smin > 40) + (smin > 120) + (smin > 320)]
                    e = bin_s[min(smin, bin_s.shape[0] - 1)]
                c = (((_rel5(4 * vw - pv4) * 5 + _rel5(4 * vn - pv4)) * 5 + _rel5(4 * vne - pv4)) * N_ERR_BINS + e) \
                    * 4 + (pv4 & 3)
                pv = ((pv4 + 2 + OFF) >> 2) - (OFF >> 2)
                if yy == 0 and xx == 0:
                    pv = 128 if (q1 < 0 and q2 < 0) else 0
                pred = min(max(pv + ref, 0), 255)
                # _ctx_ring written out (see _pop's note below)
                yi = yy + 2
                s1 = (d - 1) & (RING - 1)
                s2 = (d - 2) & (RING - 1)
                rw = np.int32(ring[p, s1, yi])
                rn = np.int32(ring[p, s2, yi - 1])
                rnw = np.int32(ring[p, (d - 3) & (RING - 1), yi - 1])
                rne = np.int32(ring[p, s1, yi - 1])
                rww = np.int32(ring[p, s2, yi])
                rnn = np.int32(ring[p, (d - 4) & (RING - 1), yi - 2])
                near = abs(rw) + abs(rn) + abs(rnw) + abs(rne)
                act = near + abs(rw) + abs(rn) + abs(rww) + abs(rnn)
                co = np.int32(0)
                ccc = np.int32(0)
                if kind > 0:
                    q = p - kind
                    co = np.int32(ring[q, d & (RING - 1), yi])
                    act += 2 * abs(co) + abs(np.int32(ring[q, (d + 1) & (RING - 1), yi]))
                    ccc = co
                    if kind == 2:
                        cq = np.int32(ring[p - 1, d & (RING - 1), yi])
                        act += abs(cq)
                        ccc += cq
                a = (np.int32(bin_a[min(act, ACT_MAX)]) * 3 + _sgn(rw)) * 3 + _sgn(rn)
                a2 = np.int32(0)
                if kind > 0:
                    a = a * 3 + _sgn(co)
                    a2 = np.int32(bin_b[min(2 * abs(ccc), ACT_MAX)])
                b = ((np.int32(bin_b[min(near, ACT_MAX)]) * NB_B + a2) * 3 + _sgn(ccc)) * 3 + _sgn(rw + rn)
                slot = np.int64(x[k] & np.uint64(0xFFFF))
                tok = 0
                lo = np.int64(0)
                hi = _mixed(wa, wb, wc, ta[kind, a, 1], tb[kind, b, 1], tc[kind, c, 1], 1)
                while tok < N_TOKENS - 1 and hi <= slot:
                    tok += 1
                    lo = hi
                    hi = _mixed(wa, wb, wc, ta[kind, a, tok + 1], tb[kind, b, tok + 1], tc[kind, c, tok + 1], tok + 1)
                # _pop written out: in a function this large numba's reference-count pruning gives up,
                # and each array passed to an inlined helper costs an atomic incref and decref a symbol
                xk = np.uint64(hi - lo) * (x[k] >> np.uint64(16)) + np.uint64(slot - lo)
                if xk < np.uint64(RANS_L):
                    if pos >= end:
                        return 1
                    xk = (xk << np.uint64(16)) | np.uint64(words[pos])
                    pos += 1
                x[k] = xk
                k += 1
                if k == k_states:
                    k = 0
                n_extra = _extra_bits(tok)
                extra = 0
                if n_extra > 0:
                    if n_acc < n_extra:
                        if rpos >= raw_end:
                            return 1
                        acc |= np.uint64(words[rpos]) << np.uint64(n_acc)
                        rpos += 1
                        n_acc += 16
                    extra = np.int64(acc & np.uint64((1 << n_extra) - 1))
                    acc >>= np.uint64(n_extra)
                    n_acc -= n_extra
                u = _untoken(tok, extra)
                rr = (u >> 1) if (u & 1) == 0 else -((u + 1) >> 1)
                ring[p, d & (RING - 1), yy + 2] = rr
                xv = (rr + pred) & 255
                out[p, y, xx] = np.uint8(xv)
                vv = xv - ref
                vp[r0, xx] = vv
                if mode != 0:
                    v4 = 4 * vv
                    packed = np.uint64(0)
                    for i in range(4):
                        packed |= np.uint64(min(abs(v4 - sp[i]), E_MAX)) << np.uint64(16 * i)
                    ep[0, r0, xx + 2] = packed
                    ep[1, r0, xx + 2] = (np.uint64(min(abs(v4 - sp[4]), E_MAX))
                                         | (np.uint64(min(abs(v4 - sp[5]), E_MAX)) << np.uint64(16)))
                lista[na, 0] = kind      # kept only on the context's first use: no branch to mispredict
                lista[na, 1] = a
                na += sa[kind, a] == 0
                sa[kind, a] += 1
                ha[kind, a, tok] += 1
                listb[nb, 0] = kind      # kept only on the context's first use: no branch to mispredict
                listb[nb, 1] = b
                nb += sb[kind, b] == 0
                sb[kind, b] += 1
                hb[kind, b, tok] += 1
                listc[nc, 0] = kind      # kept only on the context's first use: no branch to mispredict
                listc[nc, 1] = c
                nc += sc[kind, c] == 0
                sc[kind, c] += 1
                hc[kind, c, tok] += 1
        if (t + 1) % update_steps == 0 or t == steps - 1:
            _update(ta, ha, sa, ua, lista, na, weight_lut)
            _update(tb, hb, sb, ub, listb, nb, weight_lut)
            _update(tc, hc, sc, uc, listc, nc, weight_lut)
            na = nb = nc = 0
    if pos != end or rpos != raw_end or acc != 0:
        return 1
    for k in range(k_states):
        if x[k] != np.uint64(RANS_L):
            return 1
    return 0


@njit(cache=True, parallel=True, nogil=True)
def _decode_strips_nb(counts, offsets, words, params, bias, kinds, init_a, init_b, init_c, bin_a, bin_b, bin_s,
                      bin_g, weight_lut, update_steps, lane_rows, mix, out, status):
    h = out.shape[1]
    for lane in prange(counts.shape[0]):
        y0 = lane * lane_rows
        pos = offsets[lane]
        end = pos + counts[lane, 0]
        status[lane] = _decode_strip(words, pos, end, end + counts[lane, 1], 1 << counts[lane, 2], params, bias, kinds,
                                     init_a, init_b, init_c, bin_a, bin_b, bin_s, bin_g, weight_lut, update_steps,
                                     y0, min(h, y0 + lane_rows), mix, WEIGHT_LUT, out)


def decode_fused(counts: np.ndarray, words: np.ndarray, shape: tuple, params, mix, bias, kinds, init_a, init_b,
                 init_c, bin_a, bin_b, bin_s, bin_g, weight_lut, update_steps: int, lane_rows: int) -> np.ndarray:
    """Decode what :func:`encode_fused` wrote.

    Args:
        counts: uint32 (n_strips, 3), words: uint16 (W,): the strip table and data.
        shape: (P, H, W) of the planes.
        params, mix, bias and the model's arrays, update_steps, lane_rows: as the encoder had them.

    Returns:
        uint8 (P, H, W): the planes, in coding order.

    Raises:
        DecodeError: the strip table does not fit, or a strip ran out of words, left words unread or did not
        end in the initial states.  ValueError: malformed params, mix or model arrays.
    """
    counts = np.ascontiguousarray(counts, dtype=np.uint32)
    words = np.ascontiguousarray(words, dtype=np.uint16)
    n_planes, h, w = (int(v) for v in shape)
    params = check_params(params, n_planes)
    mix = check_mix(mix)
    bias = check_bias(bias, params)
    arrays = _model(kinds, init_a, init_b, init_c, bin_a, bin_b, bin_s, bin_g, weight_lut, n_planes)
    update_steps = _check_update_steps(update_steps)
    check_wavefront_lanes(counts, words.shape[0], (n_planes, h, w), lane_rows)
    totals = counts[:, :2].sum(axis=1, dtype=np.int64)
    offsets = np.zeros(counts.shape[0], dtype=np.int64)
    np.cumsum(totals[:-1], out=offsets[1:])
    out = np.empty((n_planes, h, w), dtype=np.uint8)
    status = np.zeros(counts.shape[0], dtype=np.uint8)
    _decode_strips_nb(counts, offsets, words, params, bias, *arrays, update_steps, lane_rows, mix, out, status)
    if status.any():
        raise DecodeError(f"corrupted entropy-coded data in lane {int(np.argmax(status))}")
    return out
