"""Research: the fused model end to end, with real bytes and a real decoder (issue 13).

    python tools/research_fused_codec.py ../shared/data [--sets kodak dev dev_gray] [--limit N] [--repeat R]

What tools/research_pixel_contexts.py estimates, made real (with the decoder it needs): per
image, the blend predictor restarting at each coder strip, tric-wf2's tables A and B plus a third table C
on the predictor's state (``research_pixel_contexts``' ``rel3+frac8``: where W, N, NE lie against the
unrounded prediction x 8 bins of its error estimate x its rounding; starting tables counted on
``DATA/train``), mixed per plane kind by static weights ``(wA, wB, wC)``, sixteenths, which the encoder
picks per image (by ideal code length: research_coder_mixing's pass) and would record in 9 bytes
(``--two-tables``: at most two weights non-zero, so that a decoder need read only two tables a symbol,
as today; this decoder still reads all three: the option measures bytes, not time); ``--no-table-c``:
tables A and B only, tric-wf2's coder in the fused decoder (what fusing alone costs); ``--no-table-b``:
tables A and C only, mixed per image and plane kind, the decoder reading two tables a symbol.  The
encoder writes tric-wf2's strip layout (K interleaved rANS states, raw bits apart); the decoder is one
fused loop per strip (strips in parallel): each symbol's contexts, its rANS pop against the mixed
tables, the pixel rebuilt by the blend, its errors kept in four-row rings.  Printed per set: bytes
(LANES + 9 bytes of weights) against tric-wf2's LANES, and model decode time against tric-wf2's (its
coder, then its blend scan), best of R; every decode is checked to rebuild the image.

Research only: no file format, nothing here is a codec path.  It is the CPU twin a fused model kind
would start from.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from numba import njit, prange

import research_coder_mixing as rcm
import research_pixel_contexts as rpc
from tricodec import blend_ref as br
from tricodec import wavefront_ref as wr
from tricodec.blend_ref import _med
from tricodec.context_model import plane_kinds
from tricodec.context_ref import N_TOKENS, _extra_bits, _pop, _push, _token, _untoken
from tricodec.rans_ref import RANS_L
from tricodec.wavefront_ref import RING, _clear_slot, _ctx_ring, _fresh, _log2, _row_range, _update, n_steps

MODEL = rpc.MODEL
KIND = "rel3+frac8"


# ---- the mix of three tables ----

@njit(cache=True, nogil=True, inline="always")
def _cum(ta, tb, tc, kind, a, b, c, tok, wa, wb, wc):
    """Cumulative frequency below token ``tok`` of the static mix: every token keeps frequency >= 1 and
    the total is 2^16 (the tables run from 0 to Q_ADAPT = 2^16 - 24, the weights sum to 16).  (Every
    table is read even at weight 0: skipping one by a branch here made the loop 3-4x slower in numba.)"""
    return ((wa * np.int64(ta[kind, a, tok]) + wb * np.int64(tb[kind, b, tok]) + wc * np.int64(tc[kind, c, tok]))
            >> 4) + tok


# ---- the encoder: residuals and contexts known, one model pass, then rANS as tric-wf2 ----

@njit(cache=True, nogil=True)
def _model_pass3(res, ctxc, kinds, init_a, init_b, init_c, bin_a, bin_b, wlut, update_steps, y0, y1, mixw, start,
                 freq, nx, raw, counts):
    n_planes, _, w = res.shape
    rows = y1 - y0
    ta, tb, ha, hb, sa, sb, ua, ub, lista, listb = _fresh(init_a, init_b)
    tc = init_c.copy()
    hc = np.zeros((init_c.shape[0], init_c.shape[1], N_TOKENS), np.int32)
    sc = np.zeros(init_c.shape[:2], np.int32)
    uc = np.zeros(init_c.shape[:2], np.int32)
    listc = np.empty((init_c.shape[0] * init_c.shape[1], 2), np.int32)
    ring = np.zeros((n_planes, RING, rows + 2), np.int16)
    j = 0
    acc = np.uint64(0)
    n_acc = 0
    n_raw = 0
    na = nb = nc = 0
    steps = n_steps(n_planes, rows, w)
    for t in range(steps):
        j0 = j
        for p in range(n_planes):
            d = t - 2 * p
            kind = kinds[p]
            wa, wb, wc = mixw[kind, 0], mixw[kind, 1], mixw[kind, 2]
            lo_y, hi_y = _row_range(d, rows, w)
            _clear_slot(ring, p, d)
            for yy in range(lo_y, hi_y):
                a, b = _ctx_ring(ring, p, kind, d, yy + 2, bin_a, bin_b)
                c = ctxc[p, y0 + yy, d - 2 * yy]
                r = np.int32(res[p, y0 + yy, d - 2 * yy]) - 128
                ring[p, d & (RING - 1), yy + 2] = r
                tok, n_extra, extra = _token(2 * r if r >= 0 else -2 * r - 1)
                lo = _cum(ta, tb, tc, kind, a, b, c, tok, wa, wb, wc)
                start[j] = lo
                freq[j] = _cum(ta, tb, tc, kind, a, b, c, tok + 1, wa, wb, wc) - lo
                nx[j] = n_extra
                j += 1
                if n_extra > 0:
                    acc |= np.uint64(extra) << np.uint64(n_acc)
                    n_acc += n_extra
                    if n_acc >= 16:
                        raw[n_raw] = np.uint16(acc & np.uint64(0xFFFF))
                        n_raw += 1
                        acc >>= np.uint64(16)
                        n_acc -= 16
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
        counts[t] = j - j0
        if (t + 1) % update_steps == 0 or t == steps - 1:
            _update(ta, ha, sa, ua, lista, na, wlut)
            _update(tb, hb, sb, ub, listb, nb, wlut)
            _update(tc, hc, sc, uc, listc, nc, wlut)
            na = nb = nc = 0
    if n_acc > 0:
        raw[n_raw] = np.uint16(acc & np.uint64(0xFFFF))
        n_raw += 1
    return n_raw


@njit(cache=True, nogil=True)
def _encode_strip3(res, ctxc, kinds, init_a, init_b, init_c, bin_a, bin_b, wlut, update_steps, y0, y1, mixw, scratch,
                   base, stride, out_counts):
    n_planes, _, w = res.shape
    n_sym = (y1 - y0) * n_planes * w
    steps = n_steps(n_planes, y1 - y0, w)
    start = np.empty(n_sym, np.uint32)
    freq = np.empty(n_sym, np.uint32)
    nx = np.empty(n_sym, np.uint8)
    raw = np.empty(n_sym // 2 + 1, np.uint16)
    counts = np.empty(steps, np.int64)
    n_raw = _model_pass3(res, ctxc, kinds, init_a, init_b, init_c, bin_a, bin_b, wlut, update_steps, y0, y1, mixw,
                         start, freq, nx, raw, counts)
    k_states = wr._choose_states(n_sym, freq, nx)
    x = np.full(k_states, np.uint64(RANS_L), np.uint64)
    top = base + stride - 1
    m = 0
    end = n_sym
    for t in range(steps - 1, -1, -1):       # as wavefront_ref._encode_strip
        n = counts[t]
        first = end - n
        for jj in range(n - 1, -1, -1):
            k = jj % k_states
            x[k], m = _push(x[k], np.uint64(freq[first + jj]), np.uint64(start[first + jj]), scratch, top, m)
        end = first
    for k in range(k_states - 1, -1, -1):
        scratch[top - m] = np.uint16(x[k] & np.uint64(0xFFFF))
        scratch[top - m - 1] = np.uint16(x[k] >> np.uint64(16))
        m += 2
    scratch[base:base + m] = scratch[top + 1 - m:top + 1].copy()
    scratch[base + m:base + m + n_raw] = raw[:n_raw]
    out_counts[0] = m
    out_counts[1] = n_raw
    out_counts[2] = _log2(k_states)


@njit(cache=True, parallel=True, nogil=True)
def _encode3(res, ctxc, kinds, init_a, init_b, init_c, bin_a, bin_b, wlut, update_steps, lane_rows, mixw, scratch,
             stride, counts):
    h = res.shape[1]
    for g in prange(counts.shape[0]):
        y0 = g * lane_rows
        _encode_strip3(res, ctxc, kinds, init_a, init_b, init_c, bin_a, bin_b, wlut, update_steps, y0,
                       min(h, y0 + lane_rows), mixw, scratch, g * stride, stride, counts[g])


# ---- the fused decoder ----

@njit(cache=True, nogil=True, inline="always")
def _rel5(d):
    a = abs(d)
    m = (1 if a > 0 else 0) + (1 if a > 4 else 0)
    return 2 - m if d < 0 else 2 + m


def bins8(edges: np.ndarray) -> np.ndarray:
    """research_pixel_contexts' 8 bins of every activity up to the last edge, as a look-up table (int32)."""
    act = np.arange(int(edges[-1]) + 1)
    return np.minimum(np.searchsorted(edges, act, side="right") * 8 // 16, 7).astype(np.int32)


@njit(cache=True, nogil=True)
def _decode_strip3(words, pos, end, raw_end, k_states, params, kinds, init_a, init_b, init_c, bin_a, bin_b, lut,
                   wlut, update_steps, y0, y1, mixw, s_bins, g_bins, use_c, use_b, out):
    """One strip's words -> its pixels in ``out`` (P, H, W) uint8 -> 0, or 1 if its words are corrupted
    (``use_c`` false: no table C at all, for files coded with weights (8, 8, 0): tric-wf2's coder, fused;
    ``use_b`` false: no table B, for files coded with weights (wA, 0, wC): two tables a symbol, as today)."""
    n_planes, _, w = out.shape
    rows = y1 - y0
    if end - pos < 2 * k_states:
        return 1
    x = np.empty(k_states, np.uint64)
    for k in range(k_states):
        x[k] = (np.uint64(words[pos]) << np.uint64(16)) | np.uint64(words[pos + 1])
        pos += 2
    ta, tb, ha, hb, sa, sb, ua, ub, lista, listb = _fresh(init_a, init_b)
    tc = init_c.copy()
    hc = np.zeros((init_c.shape[0], init_c.shape[1], N_TOKENS), np.int32)
    sc = np.zeros(init_c.shape[:2], np.int32)
    uc = np.zeros(init_c.shape[:2], np.int32)
    listc = np.empty((init_c.shape[0] * init_c.shape[1], 2), np.int32)
    ring = np.zeros((n_planes, RING, rows + 2), np.int16)
    v = np.zeros((n_planes, 4, w), np.int32)          # four-row rings, as blend_ref's scan keeps
    # the errors' ring has two zero columns each side: a missing neighbour adds 0 to S, as in blend_ref,
    # without a branch (rows above the strip are the ring's initial zeros)
    err = np.zeros((n_planes, 6, 4, w + 4), np.int16)
    s = np.zeros(6, np.int32)
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
            wa, wb, wc = mixw[kind, 0], mixw[kind, 1], mixw[kind, 2]
            mode, q1, c1, q2, c2 = params[p, 0], params[p, 1], params[p, 2], params[p, 3], params[p, 4]
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
                vp = v[p]
                r0 = yy & 3
                r1 = (yy - 1) & 3
                r2 = (yy - 2) & 3
                vw = vp[r0, xx - 1] if xx > 0 else (vp[r1, xx] if yy > 0 else 0)
                vn = vp[r1, xx] if yy > 0 else vw
                vnw = vp[r1, xx - 1] if (yy > 0 and xx > 0) else vn
                vne = vp[r1, xx + 1] if (yy > 0 and xx < w - 1) else vn
                if mode == 0:
                    pv4 = 4 * _med(vw, vn, vnw)
                    bn = g_bins[min(abs(vw - vnw) + abs(vn - vnw) + abs(vne - vn), g_bins.shape[0] - 1)]
                else:
                    vnne = vp[r2, xx + 1] if (yy > 1 and xx < w - 1) else vne
                    s[0] = 4 * _med(vw, vn, vnw)
                    s[1] = 4 * vw
                    s[2] = 4 * vn
                    s[3] = 4 * (vw + vne - vn)
                    s[4] = 4 * (vn + vne - vnne)
                    s[5] = 2 * (vw + vn) + vne - vnw
                    tw = np.int64(0)
                    ts = np.int64(0)
                    smin = np.int32(1 << 30)
                    ep = err[p]
                    e2 = xx + 2
                    for i in range(6):
                        S = (2 * (np.int32(ep[i, r0, e2 - 1]) + np.int32(ep[i, r1, e2]) + np.int32(ep[i, r1, e2 - 1])
                                  + np.int32(ep[i, r1, e2 + 1])) + np.int32(ep[i, r0, e2 - 2]) + np.int32(ep[i, r2, e2]))
                        smin = min(smin, S)
                        wi = np.int64(lut[S])
                        tw += wi
                        ts += wi * np.int64(s[i] + 4096)
                    pv4 = s[0] if tw == 0 else np.int32(np.float64(ts + (tw >> 1)) / np.float64(tw)) - 4096
                    bn = s_bins[min(smin, s_bins.shape[0] - 1)]
                pv = ((pv4 + 2 + 4096) >> 2) - 1024
                if yy == 0 and xx == 0:
                    pv = 128 if (q1 < 0 and q2 < 0) else 0
                pred = min(max(pv + ref, 0), 255)
                c = 0
                if use_c:
                    c = (((_rel5(4 * vw - pv4) * 5 + _rel5(4 * vn - pv4)) * 5 + _rel5(4 * vne - pv4)) * 8 + bn) * 4 \
                        + (pv4 & 3)
                a, b = _ctx_ring(ring, p, kind, d, yy + 2, bin_a, bin_b)
                slot = np.int64(x[k] & np.uint64(0xFFFF))
                tok = 0
                lo = np.int64(0)                     # every table starts at 0
                if use_b:
                    hi = _cum(ta, tb, tc, kind, a, b, c, 1, wa, wb, wc)
                    while tok < N_TOKENS - 1 and hi <= slot:
                        tok += 1
                        lo = hi
                        hi = _cum(ta, tb, tc, kind, a, b, c, tok + 1, wa, wb, wc)
                else:
                    hi = ((wa * np.int64(ta[kind, a, 1]) + wc * np.int64(tc[kind, c, 1])) >> 4) + 1
                    while tok < N_TOKENS - 1 and hi <= slot:
                        tok += 1
                        lo = hi
                        hi = ((wa * np.int64(ta[kind, a, tok + 1]) + wc * np.int64(tc[kind, c, tok + 1])) >> 4) + tok + 1
                x[k], pos, bad = _pop(x[k], hi - lo, slot - lo, words, pos, end)
                if bad:
                    return 1
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
                    for i in range(6):
                        err[p, i, r0, xx + 2] = min(abs(v4 - s[i]), 4080)
                if sa[kind, a] == 0:
                    lista[na, 0] = kind
                    lista[na, 1] = a
                    na += 1
                sa[kind, a] += 1
                ha[kind, a, tok] += 1
                if use_b:
                    if sb[kind, b] == 0:
                        listb[nb, 0] = kind
                        listb[nb, 1] = b
                        nb += 1
                    sb[kind, b] += 1
                    hb[kind, b, tok] += 1
                if use_c:
                    if sc[kind, c] == 0:
                        listc[nc, 0] = kind
                        listc[nc, 1] = c
                        nc += 1
                    sc[kind, c] += 1
                    hc[kind, c, tok] += 1
        if (t + 1) % update_steps == 0 or t == steps - 1:
            _update(ta, ha, sa, ua, lista, na, wlut)
            if use_b:
                _update(tb, hb, sb, ub, listb, nb, wlut)
            if use_c:
                _update(tc, hc, sc, uc, listc, nc, wlut)
            na = nb = nc = 0
    if pos != end or rpos != raw_end or acc != 0:
        return 1
    for k in range(k_states):
        if x[k] != np.uint64(RANS_L):
            return 1
    return 0


@njit(cache=True, parallel=True, nogil=True)
def _decode3(counts, offsets, words, params, kinds, init_a, init_b, init_c, bin_a, bin_b, lut, wlut, update_steps,
             lane_rows, mixw, s_bins, g_bins, use_c, use_b, out, status):
    h = out.shape[1]
    for lane in prange(counts.shape[0]):
        y0 = lane * lane_rows
        pos = offsets[lane]
        end = pos + counts[lane, 0]
        status[lane] = _decode_strip3(words, pos, end, end + counts[lane, 1], 1 << counts[lane, 2], params, kinds,
                                      init_a, init_b, init_c, bin_a, bin_b, lut, wlut, update_steps, y0,
                                      min(h, y0 + lane_rows), mixw, s_bins, g_bins, use_c, use_b, out)


# ---- per image ----

S_BINS, G_BINS = bins8(rpc.S_EDGES), bins8(rpc.G_EDGES)

STATIC = [(r[0], r[2]) for r in rpc.RULES if r[1] == rcm.STATIC]


TWO_TABLES = [(f"{wa}:{wb}:{wc}", rcm.STATIC, [wa, wb, wc], (0, 0)) for wa, wb, wc in
              ((8, 8, 0), (16, 0, 0), (8, 0, 8), (6, 0, 10), (4, 0, 12), (2, 0, 14), (0, 0, 16), (10, 0, 6),
               (0, 8, 8), (0, 6, 10), (0, 4, 12), (0, 2, 14), (0, 10, 6))]


def choose_mix(res, ctxc, kinds, rows, table_c, two_tables: bool = False, use_b: bool = True) -> np.ndarray:
    """(3 plane kinds, 3) weights in sixteenths: per kind the static mix of the smallest ideal code length
    (``two_tables``: among mixes of at most two tables)."""
    n, h, w = res.shape
    a, b = rpc._pad(MODEL.init_a), rpc._pad(MODEL.init_b)
    lut = MODEL.weight_lut.astype(np.int32)
    rules = TWO_TABLES if two_tables else [r for r in rpc.RULES if r[1] == rcm.STATIC]
    if not use_b:
        rules = [r for r in TWO_TABLES if r[2][1] == 0]
    cost = np.zeros((len(rules), 3))
    for y0 in range(0, h, rows):
        rcm._strip_cost(res, kinds, y0, min(h, y0 + rows), np.stack([a, b, rpc._pad(table_c)]), MODEL.bin_a,
                        MODEL.bin_b, np.array([rcm.PIXEL]), np.stack([lut, lut, lut]), MODEL.update_steps,
                        *rcm.rule_arrays(rules), cost, ctxc)
    out = np.zeros((3, 3), np.int64)
    for kind in range(3):
        wts = np.array(rules[int(np.argmin(cost[:, kind]))][2], np.int64)
        out[kind] = wts * 16 // wts.sum()
        out[kind, 0] += 16 - out[kind].sum()
    return out


def run_image(arr: np.ndarray, table_c: np.ndarray, repeat: int, two_tables: bool = False, use_c: bool = True,
              use_b: bool = True) -> dict:
    res, ctx = rpc.image_state(arr, restart=True)
    ctxc = ctx[KIND]
    order, _ = MODEL.plane_layout(arr.shape[2])
    planes = np.ascontiguousarray(arr.transpose(2, 0, 1)[list(order)])
    params = rpc.bs.choose_params(planes)
    n, h, w = res.shape
    kinds = plane_kinds(n)
    rows = MODEL.lane_rows(w, h)
    mixw = choose_mix(res, ctxc, kinds, rows, table_c, two_tables, use_b) if use_c else np.array([[8, 8, 0]] * 3, np.int64)
    init_c = rpc._pad(table_c)
    # the decoder's tables as uint16 (every entry <= Q_ADAPT < 2^16): half the cache, -5% decode time
    dec_tables = [t.astype(np.uint16) for t in (MODEL.init_a, MODEL.init_b, init_c)]
    n_lanes = -(-h // rows)
    stride = sum(wr.max_lane_words(res.shape, rows))
    scratch = np.empty(n_lanes * stride, np.uint16)
    counts = np.empty((n_lanes, 3), np.uint32)
    _encode3(res, ctxc, kinds, MODEL.init_a, MODEL.init_b, init_c, MODEL.bin_a, MODEL.bin_b, MODEL.weight_lut,
             MODEL.update_steps, rows, mixw, scratch, stride, counts)
    words = np.concatenate([scratch[g * stride:g * stride + int(counts[g, 0] + counts[g, 1])] for g in range(n_lanes)])
    offsets = np.concatenate([[0], np.cumsum(counts[:, 0].astype(np.int64) + counts[:, 1])[:-1]])
    fused_bytes = 12 * n_lanes + 2 * words.size + 9
    out = np.zeros_like(planes)
    status = np.zeros(n_lanes, np.int64)

    def fused():
        _decode3(counts, offsets, words, params, kinds, *dec_tables, MODEL.bin_a, MODEL.bin_b,
                 br.WEIGHT_LUT, MODEL.weight_lut, MODEL.update_steps, rows, mixw, S_BINS, G_BINS, use_c, use_b, out, status)
    fused()
    assert not status.any() and np.array_equal(out, planes), "the fused decoder must rebuild the image"
    # tric-wf2 as shipped: its residuals (no restart), its coder, then its blend scan
    res2 = br.compute_blend_residuals(planes, params)
    c2, w2 = wr.encode_wavefront_lanes(res2, kinds, *MODEL.arrays, MODEL.update_steps, rows)

    def today():
        r = wr.decode_wavefront_lanes(c2, w2, res2.shape, kinds, *MODEL.arrays, MODEL.update_steps, rows)
        return br.reconstruct_blend(r, params)
    return {"bytes": fused_bytes, "bytes_wf2": 12 * c2.shape[0] + 2 * w2.size,
            "t": rpc_best(fused, repeat), "t_wf2": rpc_best(today, repeat)}


def rpc_best(fn, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="folder holding the sets and train/ (e.g. ../shared/data)")
    ap.add_argument("--sets", nargs="+", default=["kodak", "dev", "dev_gray"])
    ap.add_argument("--limit", type=int, default=None, help="first N images of each set")
    ap.add_argument("--repeat", type=int, default=3, help="timed decodes per image (best is kept)")
    ap.add_argument("--two-tables", action="store_true",
                    help="mix at most two of the three tables per plane kind (bytes only: see above)")
    ap.add_argument("--no-table-b", action="store_true",
                    help="tables A and C only, mixed per image and plane kind (the decoder reads two a symbol)")
    ap.add_argument("--no-table-c", action="store_true",
                    help="tables A and B only (tric-wf2's coder in the fused decoder: what fusing alone costs)")
    a = ap.parse_args()
    rpc.KINDS = (KIND,)
    table_c = rpc.train_tables(a.data / "train")[KIND]
    for name in a.sets:
        ims = rcm.load(a.data / name, a.limit)
        per = [run_image(arr, table_c, a.repeat, a.two_tables, not a.no_table_c, not a.no_table_b) for _, arr in ims]
        size = np.array([arr.size for _, arr in ims], np.float64)
        b = np.mean([8 * r["bytes"] / s for r, s in zip(per, size)])
        b2 = np.mean([8 * r["bytes_wf2"] / s for r, s in zip(per, size)])
        t, t2 = sum(r["t"] for r in per), sum(r["t_wf2"] for r in per)
        print(f"{name} ({len(ims)} images): fused model {b:.4f} bpsp (LANES + mix weights), tric-wf2 LANES "
              f"{b2:.4f}: {100 * (b / b2 - 1):+.2f}%; model decode {1e3 * t:.1f} ms against {1e3 * t2:.1f} ms "
              f"({t / t2:.2f}x), {size.sum() / t / 1e6:.1f} MB/s", flush=True)


if __name__ == "__main__":
    main()
