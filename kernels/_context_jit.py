"""Triton device functions shared by ``context_encode.py`` and ``context_decode.py``: the context of a
symbol, the mixed cumulative of its two tables, and the adaptation step, each exactly as
``tricodec/context_ref.py`` states them (see its docstring for the model).  No kernel here.

All scalars are one lane's (one program per lane); table rows are vectors of ``TOK`` (32) entries of
which the first ``N_TOKENS + 1`` (25) are real.
"""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _resid(res_ptr, p, y, x, y0, height, width):
    """Signed residual at (p, y, x); 0 above the lane (y < y0) or outside the row."""
    ok = (y >= y0) & (x >= 0) & (x < width)
    off = (p * height + y) * width + x   # < 2**31: images are at most 2**27 pixels of 4 planes
    v = tl.load(res_ptr + off, mask=ok, other=128).to(tl.int32)
    return v - 128


@triton.jit
def _sgn(v):
    return (v > 0).to(tl.int32) - (v < 0).to(tl.int32) + 1


@triton.jit
def _contexts(res_ptr, bin_a_ptr, bin_b_ptr, p, kind, y, x, y0, height, width,
              ACT_MAX: tl.constexpr, NB_B: tl.constexpr):
    rw = _resid(res_ptr, p, y, x - 1, y0, height, width)
    rn = _resid(res_ptr, p, y - 1, x, y0, height, width)
    rnw = _resid(res_ptr, p, y - 1, x - 1, y0, height, width)
    rne = _resid(res_ptr, p, y - 1, x + 1, y0, height, width)
    rww = _resid(res_ptr, p, y, x - 2, y0, height, width)
    rnn = _resid(res_ptr, p, y - 2, x, y0, height, width)
    near = tl.abs(rw) + tl.abs(rn) + tl.abs(rnw) + tl.abs(rne)
    act = near + tl.abs(rw) + tl.abs(rn) + tl.abs(rww) + tl.abs(rnn)
    has_co = kind > 0
    pc = tl.maximum(p - kind, 0)
    co = tl.where(has_co, _resid(res_ptr, pc, y, x, y0, height, width), 0)
    coe = tl.where(has_co, _resid(res_ptr, pc, y, x + 1, y0, height, width), 0)
    c1 = tl.where(kind == 2, _resid(res_ptr, tl.maximum(p - 1, 0), y, x, y0, height, width), 0)
    act = act + 2 * tl.abs(co) + tl.abs(coe) + tl.abs(c1)
    cc = co + c1
    ba = tl.load(bin_a_ptr + tl.minimum(act, ACT_MAX))
    ca = (ba * 3 + _sgn(rw)) * 3 + _sgn(rn)
    ca = tl.where(has_co, ca * 3 + _sgn(co), ca)
    a2 = tl.where(has_co, tl.load(bin_b_ptr + tl.minimum(2 * tl.abs(cc), ACT_MAX)), 0)
    b1 = tl.load(bin_b_ptr + tl.minimum(near, ACT_MAX))
    cb = ((b1 * NB_B + a2) * 3 + _sgn(cc)) * 3 + _sgn(rw + rn)
    return ca, cb


@triton.jit
def _mixed(row_a_ptr, row_b_ptr, Q_ADAPT: tl.constexpr, N_TOKENS: tl.constexpr, TOK: tl.constexpr):
    """C[i] = (a[i] + b[i] + 2 i) >> 1 for i <= N_TOKENS; entries past it end above 65535."""
    i = tl.arange(0, TOK)
    real = i <= N_TOKENS
    a = tl.load(row_a_ptr + i, mask=real, other=Q_ADAPT)
    b = tl.load(row_b_ptr + i, mask=real, other=Q_ADAPT)
    return (a + b + 2 * i) >> 1


@triton.jit
def _pick(c, k, TOK: tl.constexpr):
    """c[k] of a TOK-vector, as a scalar."""
    i = tl.arange(0, TOK)
    return tl.sum(tl.where(i == k, c, 0), axis=0)


@triton.jit
def _next_rate(used_ptr, rate_ptr, n_rate):
    n = tl.load(used_ptr)
    tl.store(used_ptr, tl.minimum(n + 1, n_rate - 1))
    return tl.load(rate_ptr + n)


@triton.jit
def _adapt(row_ptr, t, rate, Q_ADAPT: tl.constexpr, N_TOKENS: tl.constexpr, TOK: tl.constexpr):
    i = tl.arange(0, TOK)
    inner = (i >= 1) & (i < N_TOKENS)
    v = tl.load(row_ptr + i, mask=inner, other=0)
    v = tl.where(i > t, v + ((Q_ADAPT - v) >> rate), v - (v >> rate))
    tl.store(row_ptr + i, v, mask=inner)


@triton.jit
def _token(u):
    """u in 0..255 -> (token, n_extra, extra)."""
    n = 4 + (u >= 32).to(tl.int32) + (u >= 64).to(tl.int32) + (u >= 128).to(tl.int32)
    big = u >= 16
    t = tl.where(big, 16 + 2 * (n - 4) + ((u >> (n - 1)) & 1), u)
    n_extra = tl.where(big, n - 1, 0)
    extra = tl.where(big, u & ((1 << (n - 1)) - 1), 0)
    return t, n_extra, extra


@triton.jit
def _rows(ta, tb, na, nb, kind, ca, cb, NC_A: tl.constexpr, NC_B: tl.constexpr, N_TOKENS: tl.constexpr):
    """Pointers to the lane's table rows and use counters of contexts (kind, ca) and (kind, cb)."""
    ka = kind * NC_A + ca
    kb = kind * NC_B + cb
    return ta + ka * (N_TOKENS + 1), tb + kb * (N_TOKENS + 1), na + ka, nb + kb


@triton.jit
def _adapt_both(row_a, row_b, used_a, used_b, rate_ptr, n_rate, t,
                Q_ADAPT: tl.constexpr, N_TOKENS: tl.constexpr, TOK: tl.constexpr):
    _adapt(row_a, t, _next_rate(used_a, rate_ptr, n_rate), Q_ADAPT, N_TOKENS, TOK)
    _adapt(row_b, t, _next_rate(used_b, rate_ptr, n_rate), Q_ADAPT, N_TOKENS, TOK)


@triton.jit
def _pop(x, f, offset, live, word_ptr, pos, end, bad, RANS_L: tl.constexpr):
    """Where ``live``: one rANS decode step (frequency f, slot ``offset`` above the start) and its
    renormalisation; running out of words sets ``bad``. -> (x, pos, bad)"""
    x = tl.where(live, f * (x >> 16) + offset, x)
    need = live & (x < RANS_L)
    take = need & (pos < end)
    w = tl.load(word_ptr + pos, mask=take, other=0).to(tl.int64) & 0xFFFF
    x = tl.where(take, (x << 16) | w, x)
    return x, pos + take.to(tl.int64), tl.where(need & (take == 0), 1, bad)


@triton.jit
def _lane_state(ta_ptr, tb_ptr, na_ptr, nb_ptr, lane, NC_A: tl.constexpr, NC_B: tl.constexpr,
                N_KINDS: tl.constexpr, N_TOKENS: tl.constexpr):
    """Pointers to lane ``lane``'s own tables and use counters."""
    return (ta_ptr + lane * (N_KINDS * NC_A * (N_TOKENS + 1)), tb_ptr + lane * (N_KINDS * NC_B * (N_TOKENS + 1)),
            na_ptr + lane * (N_KINDS * NC_A), nb_ptr + lane * (N_KINDS * NC_B))


DESC_COLS = 8   # lane descriptor: res_base, kinds_base, n_planes, height, width, y0, y1, unused


@triton.jit
def _lane_desc(desc_ptr, lane, flat_ptr, kind_ptr):
    """Lane ``lane``'s image and rows from its int64 descriptor -> (pointer to the image's (P, H, W)
    residuals, pointer to its plane kinds, P, H, W, first row, end row)."""
    d = desc_ptr + lane * 8
    res_base = tl.load(d)
    kinds_base = tl.load(d + 1)
    return (flat_ptr + res_base, kind_ptr + kinds_base, tl.load(d + 2).to(tl.int32), tl.load(d + 3).to(tl.int32),
            tl.load(d + 4).to(tl.int32), tl.load(d + 5).to(tl.int32), tl.load(d + 6).to(tl.int32))
