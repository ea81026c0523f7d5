"""Triton device functions shared by ``wavefront_encode.py`` and ``wavefront_decode.py``: the schedule of a
step, the context of a vector of symbols read from the strip's ring of recent diagonals, the token and
its inverse, and the end-of-step table update, each exactly as ``tricodec/wavefront_ref.py`` states them.
No kernel here.

One program codes one strip; vectors run across the symbols of a step (``BLOCK_K`` lanes).
"""
from __future__ import annotations

import triton
import triton.language as tl

from ._context_jit import _sgn, _token  # noqa: F401  (the same sign and token as the context model's)

DESC_COLS = 12  # strip descriptor: res_base, kinds_base, P, H, W, y0, y1, word_offset, n_rans, n_raw, log2 K, 0


@triton.jit
def _span(t, p, n_planes, rows, width):
    """Strip rows [lo, lo + n) of plane p's diagonal d = t - 2p (n = 0 when p >= n_planes)."""
    d = t - 2 * p
    lo = tl.maximum(d - width + 2, 0) // 2          # operands kept >= 0: no negative division
    hi = tl.where(d >= 0, tl.minimum(rows, tl.maximum(d, 0) // 2 + 1), 0)
    n = tl.where(p < n_planes, tl.maximum(hi - lo, 0), 0)
    return lo, n


@triton.jit
def _step_spans(t, n_planes, rows, width):
    """Every plane's span at step t -> (lo0..lo3, o1..o3 = symbols before planes 1..3, N = the step's
    symbols): symbols go plane by plane, rows ascending."""
    lo0, n0 = _span(t, 0, n_planes, rows, width)
    lo1, n1 = _span(t, 1, n_planes, rows, width)
    lo2, n2 = _span(t, 2, n_planes, rows, width)
    lo3, n3 = _span(t, 3, n_planes, rows, width)
    o1 = n0
    o2 = o1 + n1
    o3 = o2 + n2
    return lo0, lo1, lo2, lo3, o1, o2, o3, o3 + n3


@triton.jit
def _coords(j, t, lo0, lo1, lo2, lo3, o1, o2, o3):
    """Symbol j of step t -> (plane, strip row, diagonal, column)."""
    p = (j >= o1).to(tl.int32) + (j >= o2).to(tl.int32) + (j >= o3).to(tl.int32)
    lo = tl.where(p == 0, lo0, tl.where(p == 1, lo1, tl.where(p == 2, lo2, lo3)))
    off = tl.where(p == 0, 0, tl.where(p == 1, o1, tl.where(p == 2, o2, o3)))
    yy = lo + j - off
    d = t - 2 * p
    return p, yy, d, d - 2 * yy


@triton.jit
def _ring_at(ring, q, e, yy, width, ring_rows, live, RING: tl.constexpr):
    """Signed residual of plane q, diagonal e, strip row yy: 0 outside the image or above the strip."""
    x = e - 2 * yy
    ok = live & (yy >= 0) & (x >= 0) & (x < width)
    return tl.load(ring + (q * RING + (e & (RING - 1))) * ring_rows + yy, mask=ok, other=0)


@triton.jit
def _contexts(ring, bin_a_ptr, bin_b_ptr, p, kind, d, yy, width, ring_rows, live,
              RING: tl.constexpr, ACT_MAX: tl.constexpr, NB_B: tl.constexpr):
    """``wavefront_ref._ctx_ring`` for a vector of symbols -> (ctx of table A, ctx of table B)."""
    rw = _ring_at(ring, p, d - 1, yy, width, ring_rows, live, RING)
    rn = _ring_at(ring, p, d - 2, yy - 1, width, ring_rows, live, RING)
    rnw = _ring_at(ring, p, d - 3, yy - 1, width, ring_rows, live, RING)
    rne = _ring_at(ring, p, d - 1, yy - 1, width, ring_rows, live, RING)
    rww = _ring_at(ring, p, d - 2, yy, width, ring_rows, live, RING)
    rnn = _ring_at(ring, p, d - 4, yy - 2, width, ring_rows, live, RING)
    near = tl.abs(rw) + tl.abs(rn) + tl.abs(rnw) + tl.abs(rne)
    act = near + tl.abs(rw) + tl.abs(rn) + tl.abs(rww) + tl.abs(rnn)
    has_co = kind > 0
    q = tl.maximum(p - kind, 0)
    co = _ring_at(ring, q, d, yy, width, ring_rows, live & has_co, RING)
    coe = _ring_at(ring, q, d + 1, yy, width, ring_rows, live & has_co, RING)
    c1 = _ring_at(ring, tl.maximum(p - 1, 0), d, yy, width, ring_rows, live & (kind == 2), RING)
    act = act + 2 * tl.abs(co) + tl.abs(coe) + tl.abs(c1)
    cc = co + c1
    ba = tl.load(bin_a_ptr + tl.minimum(act, ACT_MAX), mask=live, other=0)
    ca = (ba * 3 + _sgn(rw)) * 3 + _sgn(rn)
    ca = tl.where(has_co, ca * 3 + _sgn(co), ca)
    a2 = tl.load(bin_b_ptr + tl.minimum(2 * tl.abs(cc), ACT_MAX), mask=live & has_co, other=0)
    b1 = tl.load(bin_b_ptr + tl.minimum(near, ACT_MAX), mask=live, other=0)
    cb = ((b1 * NB_B + a2) * 3 + _sgn(cc)) * 3 + _sgn(rw + rn)
    return ca, cb


@triton.jit
def _mixed(row_a, row_b, i, live):
    """C[i] = (a[i] + b[i] + 2 i) >> 1 of each symbol's two table rows."""
    return (tl.load(row_a + i, mask=live, other=0) + tl.load(row_b + i, mask=live, other=0) + 2 * i) >> 1


@triton.jit
def _untoken(t, extra):
    """(token, extra bits) -> signed residual."""
    n = 4 + ((t - 16) >> 1)
    big = t >= 16
    nn = tl.where(big, n, 4)
    u = tl.where(big, (1 << nn) | (((t - 16) & 1) << (nn - 1)) | extra, t)
    return tl.where((u & 1) == 0, u >> 1, -((u + 1) >> 1))


@triton.jit
def _count(ta, tb, ha, hb, sa, sb, la, lb, list_at, kind, ca, cb, tok, live, act,
           NC_A: tl.constexpr, NC_B: tl.constexpr, N_TOKENS: tl.constexpr):
    """Count each symbol's token in its two contexts (integer atomics: order-free) and list the contexts
    for the end-of-step update."""
    ka = kind * NC_A + ca
    kb = kind * NC_B + cb
    tl.atomic_add(ha + ka * N_TOKENS + tok, 1, mask=live)
    tl.atomic_add(hb + kb * N_TOKENS + tok, 1, mask=live)
    tl.atomic_add(sa + ka, 1, mask=live)
    tl.atomic_add(sb + kb, 1, mask=live)
    tl.store(la + list_at, ka, mask=act)
    tl.store(lb + list_at, kb, mask=act)


@triton.jit
def _update_one(tab, hist, tot, used, flag, lst, n_list, weight_ptr, n_weight,
                N_TOKENS: tl.constexpr, Q_ADAPT: tl.constexpr, MIX_BITS: tl.constexpr, BLOCK_U: tl.constexpr):
    """``wavefront_ref._update`` of every context in ``lst``: the first lane to claim a context's flag
    updates its row once (which lane claims it does not matter: the update reads only the step's counts)."""
    e0 = tl.arange(0, BLOCK_U)
    for c0 in range(0, n_list, BLOCK_U):
        m = (c0 + e0) < n_list
        ctx = tl.load(lst + c0 + e0, mask=m, other=0)
        old = tl.atomic_xchg(flag + ctx, 1, mask=m)
        own = m & (old == 0)
        n = tl.load(tot + ctx, mask=own, other=0)
        u = tl.load(used + ctx, mask=own, other=0)
        w = tl.load(weight_ptr + tl.minimum(u, n_weight - 1), mask=own, other=1)
        s = (1 << MIX_BITS) // (w + n)
        keep = (1 << MIX_BITS) - n * s
        qs = Q_ADAPT * s
        acc = n * 0
        for i in tl.static_range(1, N_TOKENS):
            acc += tl.load(hist + ctx * N_TOKENS + (i - 1), mask=own, other=0)
            c = tl.load(tab + ctx * (N_TOKENS + 1) + i, mask=own, other=0)
            tl.store(tab + ctx * (N_TOKENS + 1) + i, (keep * c + qs * acc) >> MIX_BITS, mask=own)
        tl.store(used + ctx, tl.minimum(u + n, n_weight - 1), mask=own)


@triton.jit
def _reset_one(hist, tot, flag, lst, n_list, N_TOKENS: tl.constexpr, BLOCK_U: tl.constexpr):
    """Clear the counts and flags of every context in ``lst`` (all lanes of a context store the same 0)."""
    e0 = tl.arange(0, BLOCK_U)
    for c0 in range(0, n_list, BLOCK_U):
        m = (c0 + e0) < n_list
        ctx = tl.load(lst + c0 + e0, mask=m, other=0)
        for i in tl.static_range(0, N_TOKENS):
            tl.store(hist + ctx * N_TOKENS + i, 0, mask=m)
        tl.store(tot + ctx, 0, mask=m)
        tl.store(flag + ctx, 0, mask=m)


@triton.jit
def _end_of_step(ta, tb, ha, hb, sa, sb, ua, ub, fa, fb, la, lb, n_list, weight_ptr, n_weight,
                 N_TOKENS: tl.constexpr, Q_ADAPT: tl.constexpr, MIX_BITS: tl.constexpr, BLOCK_U: tl.constexpr):
    """The table update between steps; barriers order the step's counts, the updates and the resets."""
    tl.debug_barrier()
    _update_one(ta, ha, sa, ua, fa, la, n_list, weight_ptr, n_weight, N_TOKENS, Q_ADAPT, MIX_BITS, BLOCK_U)
    _update_one(tb, hb, sb, ub, fb, lb, n_list, weight_ptr, n_weight, N_TOKENS, Q_ADAPT, MIX_BITS, BLOCK_U)
    tl.debug_barrier()
    _reset_one(ha, sa, fa, la, n_list, N_TOKENS, BLOCK_U)
    _reset_one(hb, sb, fb, lb, n_list, N_TOKENS, BLOCK_U)
    tl.debug_barrier()


@triton.jit
def _strip_state(ta_ptr, tb_ptr, ha_ptr, hb_ptr, sa_ptr, sb_ptr, ua_ptr, ub_ptr, fa_ptr, fb_ptr, la_ptr, lb_ptr,
                 ring_ptr, slot, list_cap, ring_rows,
                 NC_A: tl.constexpr, NC_B: tl.constexpr, N_KINDS: tl.constexpr, N_TOKENS: tl.constexpr,
                 RING: tl.constexpr):
    """Pointers to working-state slot ``slot``: tables, counts, use counters, flags, context lists, ring."""
    na = N_KINDS * NC_A
    nb = N_KINDS * NC_B
    return (ta_ptr + slot * na * (N_TOKENS + 1), tb_ptr + slot * nb * (N_TOKENS + 1),
            ha_ptr + slot * na * N_TOKENS, hb_ptr + slot * nb * N_TOKENS, sa_ptr + slot * na, sb_ptr + slot * nb,
            ua_ptr + slot * na, ub_ptr + slot * nb, fa_ptr + slot * na, fb_ptr + slot * nb,
            la_ptr + slot * list_cap, lb_ptr + slot * list_cap, ring_ptr + slot * 4 * RING * ring_rows)


@triton.jit
def _strip_desc(desc_ptr, strip):
    d = desc_ptr + strip * 12
    return (tl.load(d), tl.load(d + 1), tl.load(d + 2).to(tl.int32), tl.load(d + 3).to(tl.int32),
            tl.load(d + 4).to(tl.int32), tl.load(d + 5).to(tl.int32), tl.load(d + 6).to(tl.int32), tl.load(d + 7),
            tl.load(d + 8), tl.load(d + 9), tl.load(d + 10).to(tl.int32))
