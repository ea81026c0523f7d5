"""Research: coder-side changes to tric-wf2 (issue 13), measured as ideal code lengths of its real residuals.

    python tools/research_coder_mixing.py ../shared/data [--sets kodak dev dev_gray] [--limit N]

For each image: tric-wf2's residuals exactly as the codec makes them (``blend_select.choose_params`` then
``blend_ref.compute_blend_residuals``, planes in the model's order), then the wavefront coder's model pass
(``wavefront_ref._model_pass``: same strips, schedule, contexts, semi-dynamic updates every 32 steps,
weight_lut) copied here with up to three tables and several *mixing rules* evaluated side by side.  The
tables' updates do not depend on how they are mixed, so one pass per table set gives every rule's cost.
Cost = ideal code length: sum over symbols of ``16 - log2(freq)`` + extra bits (no rANS framing).  The
baseline rule is the shipped mix and is printed beside the real LANES bytes of ``encode_wavefront_lanes``
(which add final states and strip counts: < 0.3%).

Mixing rules (``C(i) = (wA a[i] + wB b[i] + wC c[i]) // (wA + wB + wC) + i``: every token keeps
frequency >= 1, and with wA = wB = 8, wC = 0 it is the shipped ``(a[i] + b[i] + 2i) >> 1`` exactly):

* ``static wA/16``: fixed weights (per plane kind: the best of {4, 6, 8, 10, 12} per kind, picked on the
  set being reported, so slightly optimistic).
* ``uses cap=U k=K``: confidence by experience: each table's weight ~ ``min(uses, U) + K`` of the context it
  picked (uses = the counter the update already keeps, read at the step's start), quantised to 1/16.
* ``cost beta=B``: confidence by recent accuracy: each context keeps a running mean (window ~64 uses,
  moved at the updates) of how many bits its own table cost more than the shipped mix on its symbols;
  weight ~ ``2^(-B * mean)`` quantised to 1/16 (float here; a codec would need a log/exp2 table).

Third table C (its starting tables counted on ``../shared/data/train`` exactly as ``train_context`` counts A
and B for tric-wf2: blend residuals, the image plus a grain-1.0 copy, seed 0, lanes of 2^18 pixels,
``tables_from_counts``; cached in /tmp), with one of these contexts (residuals of the strip only, from the
same ring of 8 diagonals the coder keeps):

* ``signs``: signs of W, N, NW, NE (81) x 4 bins of |W| + |N| + |NW| + |NE|;
* ``colour``: colour planes: the earlier plane's co-located residual in 17 signed levels (plane p - kind;
  kind 2 also the other earlier plane in 5 levels) x 7 bins of |W| + |N|; first plane: W and N in 9
  signed levels each x 7 bins of |NW| + |NE| + |WW| + |NN|;
* ``values``: W and N in 9 signed levels each (their joint values: A and B see only signs and sums of
  magnitudes) x 6 bins of the wider activity |NW| + |NE| + |WW| + |NN| + |NNE| + |NNW| (x sign of the
  co-located residual for colour planes);
* ``wide``: 8 bins of |W| + |N| + |NW| + |NE| x 8 bins of the outer ring |WW| + |NN| + |NNE| + |NNW| +
  |NWW| + |WWW| + |NNEE| (texture around the pixel beyond the near neighbours) x sign(W + N).

Passes: ``AB`` (the shipped tables, every two-table rule), ``AB+C <context>`` for each context above,
``AB+C <adapt-kind>`` with table C adapting faster (weights min(u + 8, 128)) or slower (min(u + 32, 2048))
than A and B (min(u + 16, 512)), and ``AB+C wide+D values`` (four tables).  Each pass's rules end with
"static per kind", the best static rule of each plane kind (G or grey / R / B) on the set.

Research only: nothing here is a codec path; the printed ns a sample time a pass with all its rules.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from numba import njit
from PIL import Image

import tricodec
from tricodec import blend_ref as br
from tricodec import blend_select as bs
from tricodec import container as fmt
from tricodec import context_model as cm
from tricodec import wavefront_ref as wr
from tricodec.codec import backend_for
from tricodec.context_model import plane_kinds
from tricodec.context_ref import N_TOKENS, Q_ADAPT, _sgn, _token
from tricodec.wavefront_model import weight_schedule
from tricodec.wavefront_ref import MIX_BITS, MIX_ONE, RING, _clear_slot, _ctx_ring, _row_range, n_steps

MODEL = tricodec.load_model("tric-wf2")
C_KINDS = {"signs": 1, "colour": 2, "values": 3, "wide": 4}   # cmode of _ctx_c
PIXEL = 5                                                      # cmode: table C's context given per pixel
NC_C = 1536                                                    # contexts per kind of table C (enough for all)
COST_WINDOW = 64.0                                             # uses in the running mean of the cost rule
CACHE = Path("/tmp/research_coder_mixing_ctables_v1.npz")

# rule types
STATIC, USES, COST = 0, 1, 2


# ---- table C's contexts ----

@njit(cache=True, nogil=True, inline="always")
def _q9(v):
    """Signed 9 levels: 0, +-1, +-2, +-3..5, +-6.. -> 0..8."""
    a = abs(v)
    m = 0 if a == 0 else (1 if a == 1 else (2 if a == 2 else (3 if a <= 5 else 4)))
    return 4 + m if v >= 0 else 4 - m


@njit(cache=True, nogil=True, inline="always")
def _q17(v):
    """Signed 17 levels: 0, +-1, +-2, +-3, +-4..5, +-6..8, +-9..13, +-14..20, +-21.. -> 0..16."""
    a = abs(v)
    if a <= 3:
        m = a
    elif a <= 5:
        m = 4
    elif a <= 8:
        m = 5
    elif a <= 13:
        m = 6
    elif a <= 20:
        m = 7
    else:
        m = 8
    return 8 + m if v >= 0 else 8 - m


@njit(cache=True, nogil=True, inline="always")
def _q5(v):
    a = abs(v)
    m = 0 if a == 0 else (1 if a <= 2 else 2)
    return 2 + m if v >= 0 else 2 - m


@njit(cache=True, nogil=True, inline="always")
def _bin(v, e0, e1, e2, e3, e4, e5, e6):
    """Number of edges <= v (edges ascending; unused ones large)."""
    return (v >= e0) + (v >= e1) + (v >= e2) + (v >= e3) + (v >= e4) + (v >= e5) + (v >= e6)


BIG = 1 << 30


@njit(cache=True, nogil=True, inline="always")
def _ctx_c(ring, p, kind, d, yi, cmode):
    """Table C's context of the pixel on diagonal d, ring row yi (read like ``_ctx_ring``: 0 outside)."""
    M = RING - 1
    rw = np.int32(ring[p, (d - 1) & M, yi])
    rn = np.int32(ring[p, (d - 2) & M, yi - 1])
    rnw = np.int32(ring[p, (d - 3) & M, yi - 1])
    rne = np.int32(ring[p, (d - 1) & M, yi - 1])
    rww = np.int32(ring[p, (d - 2) & M, yi])
    rnn = np.int32(ring[p, (d - 4) & M, yi - 2])
    rnne = np.int32(ring[p, (d - 3) & M, yi - 2])
    rnnw = np.int32(ring[p, (d - 5) & M, yi - 2])
    near = abs(rw) + abs(rn) + abs(rnw) + abs(rne)
    co = np.int32(0)
    c1 = np.int32(0)
    if kind > 0:
        co = np.int32(ring[p - kind, d & M, yi])
        if kind == 2:
            c1 = np.int32(ring[p - 1, d & M, yi])
    if cmode == 1:      # signs x 4 bins of near
        s = ((_sgn(rw) * 3 + _sgn(rn)) * 3 + _sgn(rnw)) * 3 + _sgn(rne)
        return s * 4 + _bin(near, 1, 4, 12, BIG, BIG, BIG, BIG)
    if cmode == 2:      # earlier plane's co-located residual, finely
        b = _bin(abs(rw) + abs(rn), 1, 2, 4, 7, 12, 20, BIG)
        if kind == 0:
            o = abs(rnw) + abs(rne) + abs(rww) + abs(rnn)
            return (_q9(rw) * 9 + _q9(rn)) * 7 + _bin(o, 1, 3, 6, 12, 24, 48, BIG)
        if kind == 1:
            return _q17(co) * 7 + b
        return (_q17(co) * 5 + _q5(c1)) * 7 + b
    if cmode == 3:      # joint values of W and N x wider activity (x sign of co)
        o = abs(rnw) + abs(rne) + abs(rww) + abs(rnn) + abs(rnne) + abs(rnnw)
        c = (_q9(rw) * 9 + _q9(rn)) * 6 + _bin(o, 2, 5, 10, 20, 40, BIG, BIG)
        if kind > 0:
            c = c * 3 + _sgn(co + c1)
        return c
    # cmode 4: near x outer activity x sign(W + N)
    rnww = np.int32(ring[p, (d - 4) & M, yi - 1])
    rwww = np.int32(ring[p, (d - 3) & M, yi])
    rnnee = np.int32(ring[p, (d - 2) & M, yi - 2])
    outer = abs(rww) + abs(rnn) + abs(rnne) + abs(rnnw) + abs(rnww) + abs(rwww) + abs(rnnee)
    a = _bin(near, 1, 3, 6, 10, 16, 26, 42)
    o = _bin(outer, 2, 5, 10, 17, 28, 45, 72)
    return (a * 8 + o) * 3 + _sgn(rw + rn)


@njit(cache=True, nogil=True)
def _count_c(res, kinds, y0, y1, cmode, hist):
    """Token counts of table C's contexts over one strip (the wavefront schedule, so the ring and the
    contexts are those of the coding pass)."""
    n_planes, _, w = res.shape
    rows = y1 - y0
    ring = np.zeros((n_planes, RING, rows + 2), np.int16)
    for t in range(n_steps(n_planes, rows, w)):
        for p in range(n_planes):
            d = t - 2 * p
            lo_y, hi_y = _row_range(d, rows, w)
            _clear_slot(ring, p, d)
            for yy in range(lo_y, hi_y):
                cc = _ctx_c(ring, p, kinds[p], d, yy + 2, cmode)
                r = np.int32(res[p, y0 + yy, d - 2 * yy]) - 128
                ring[p, d & (RING - 1), yy + 2] = r
                tok, _, _ = _token(2 * r if r >= 0 else -2 * r - 1)
                hist[kinds[p], cc, tok] += 1


# ---- the coding pass: tables A, B (and C), every rule's ideal cost ----

@njit(cache=True, nogil=True)
def _update(tb, T, hist, tot, used, touched, n_touched, lut, sc, avg):
    """wavefront_ref._update for table tb of the stacked state (bit-exact), plus the cost rule's running
    means."""
    last = lut.shape[0] - 1
    for e in range(n_touched):
        kind = touched[tb, e, 0]
        ctx = touched[tb, e, 1]
        n = tot[tb, kind, ctx]
        u = used[tb, kind, ctx]
        s = np.int32(MIX_ONE // (lut[min(u, last)] + n))
        keep = np.int64(MIX_ONE - n * s)
        qs = np.int64(Q_ADAPT * s)
        acc = np.int64(0)
        for i in range(1, N_TOKENS):
            acc += hist[tb, kind, ctx, i - 1]
            T[tb, kind, ctx, i] = np.int32((keep * np.int64(T[tb, kind, ctx, i]) + qs * acc) >> MIX_BITS)
            hist[tb, kind, ctx, i - 1] = 0
        hist[tb, kind, ctx, N_TOKENS - 1] = 0
        tot[tb, kind, ctx] = 0
        used[tb, kind, ctx] = min(u + n, np.int32(last))
        avg[tb, kind, ctx] = (COST_WINDOW * avg[tb, kind, ctx] + sc[tb, kind, ctx]) / (COST_WINDOW + n)
        sc[tb, kind, ctx] = 0.0


@njit(cache=True, nogil=True, inline="always")
def _quantise16(v, wq, n_tab):
    """Weights v (>= 0, some > 0) -> integers summing to 16 (the last table with weight takes the rest)."""
    s = 0.0
    for x in range(n_tab):
        s += v[x]
    left = 16
    last = -1
    for x in range(n_tab):
        wq[x] = 0
        if v[x] > 0:
            last = x
    for x in range(n_tab):
        if v[x] > 0 and x != last:
            wq[x] = min(left, int(16.0 * v[x] / s + 0.5))
            left -= wq[x]
    wq[last] = left


@njit(cache=True, nogil=True)
def _strip_cost(res, kinds, y0, y1, init, bin_a, bin_b, cmodes, luts, update_steps, r_type, r_w, r_par, cost,
                pctx=np.zeros((1, 1, 1), np.int32), c_every=1):
    """One strip, coded by wavefront_ref's schedule with the tables of ``init`` (n_tab <= 4, 3, NC, 25) (tables
    2, 3: contexts ``_ctx_c(cmodes[0 / 1])``, or with cmode PIXEL the context ``pctx[p, y, x]`` given per pixel:
    tools/research_pixel_contexts.py); luts (n_tab, L) each table's weight_lut; tables 2, 3 are updated at
    every ``c_every``-th update of A and B.  cost (M, 3) += each rule's bits per plane kind."""
    n_planes, _, w = res.shape
    rows = y1 - y0
    n_tab = init.shape[0]
    nc = init.shape[2]
    T = init.copy()
    hist = np.zeros((n_tab, 3, nc, N_TOKENS), np.int32)
    tot = np.zeros((n_tab, 3, nc), np.int32)
    used = np.zeros((n_tab, 3, nc), np.int32)
    sc = np.zeros((n_tab, 3, nc), np.float64)
    avg = np.zeros((n_tab, 3, nc), np.float64)
    touched = np.empty((n_tab, 3 * nc, 2), np.int32)
    n_t = np.zeros(n_tab, np.int64)
    ring = np.zeros((n_planes, RING, rows + 2), np.int16)
    ctx = np.zeros(4, np.int64)
    v = np.zeros(4, np.float64)
    wq = np.zeros(4, np.int64)
    own = np.zeros(4, np.float64)
    n_rules = r_type.shape[0]
    steps = n_steps(n_planes, rows, w)
    for t in range(steps):
        for p in range(n_planes):
            d = t - 2 * p
            kind = kinds[p]
            lo_y, hi_y = _row_range(d, rows, w)
            _clear_slot(ring, p, d)
            for yy in range(lo_y, hi_y):
                ca, cb = _ctx_ring(ring, p, kind, d, yy + 2, bin_a, bin_b)
                ctx[0] = ca
                ctx[1] = cb
                for x in range(2, n_tab):
                    if cmodes[x - 2] == PIXEL:
                        ctx[x] = pctx[p, y0 + yy, d - 2 * yy]
                    else:
                        ctx[x] = _ctx_c(ring, p, kind, d, yy + 2, cmodes[x - 2])
                r = np.int32(res[p, y0 + yy, d - 2 * yy]) - 128
                ring[p, d & (RING - 1), yy + 2] = r
                tok, n_extra, _ = _token(2 * r if r >= 0 else -2 * r - 1)
                # the shipped mix (reference of the cost rule) and each table's own cost
                f0 = ((T[0, kind, ca, tok + 1] + T[1, kind, cb, tok + 1] + 2 * tok + 2) >> 1) \
                    - ((T[0, kind, ca, tok] + T[1, kind, cb, tok] + 2 * tok) >> 1)
                ref = 16.0 - np.log2(np.float64(f0))
                for x in range(n_tab):
                    c = ctx[x]
                    own[x] = 16.0 - np.log2(np.float64(T[x, kind, c, tok + 1] - T[x, kind, c, tok] + 1))
                for m in range(n_rules):
                    if r_type[m] == STATIC:
                        for x in range(4):
                            wq[x] = r_w[m, kind, x]
                    elif r_type[m] == USES:
                        for x in range(4):
                            v[x] = 0.0
                            if x < n_tab and r_w[m, kind, x] > 0:
                                v[x] = min(used[x, kind, ctx[x]], r_par[m, 0]) + r_par[m, 1]
                        _quantise16(v, wq, 4)
                    else:
                        for x in range(4):
                            v[x] = 0.0
                            if x < n_tab and r_w[m, kind, x] > 0:
                                v[x] = 2.0 ** (-r_par[m, 0] * avg[x, kind, ctx[x]])
                        _quantise16(v, wq, 4)
                    dd = wq[0] + wq[1] + wq[2] + wq[3]
                    lo = np.int64(0)
                    hi = np.int64(0)
                    for x in range(n_tab):
                        if wq[x] > 0:
                            lo += wq[x] * np.int64(T[x, kind, ctx[x], tok])
                            hi += wq[x] * np.int64(T[x, kind, ctx[x], tok + 1])
                    f = (hi // dd + tok + 1) - (lo // dd + tok)
                    cost[m, kind] += 16.0 - np.log2(np.float64(f)) + n_extra
                for x in range(n_tab):
                    c = ctx[x]
                    if tot[x, kind, c] == 0:
                        touched[x, n_t[x], 0] = kind
                        touched[x, n_t[x], 1] = c
                        n_t[x] += 1
                    tot[x, kind, c] += 1
                    hist[x, kind, c, tok] += 1
                    sc[x, kind, c] += own[x] - ref
        if (t + 1) % update_steps == 0 or t == steps - 1:
            for x in range(n_tab):
                if x < 2 or (t + 1) // update_steps % c_every == 0 or t == steps - 1:
                    _update(x, T, hist, tot, used, touched, n_t[x], luts[x], sc, avg)
                    n_t[x] = 0


# ---- rules and table sets ----

def rules_ab() -> list:
    """(name, type, weights (3 kinds, 3 tables), params) of the two-table pass."""
    out = [("base (a+b)/2", STATIC, [8, 8, 0], (0, 0))]
    out += [(f"static wA={wa}/16", STATIC, [wa, 16 - wa, 0], (0, 0)) for wa in (4, 6, 10, 12)]
    out += [(f"uses cap={u} k={k}", USES, [1, 1, 0], (u, k)) for u, k in ((32, 8), (128, 8), (496, 16))]
    out += [(f"cost beta={b}", COST, [1, 1, 0], (b, 0)) for b in (1, 2, 4, 8, 16, 32)]
    return out


def rules_abc() -> list:
    out = [("base (a+b)/2", STATIC, [8, 8, 0], (0, 0)), ("(a+b+c)/3", STATIC, [1, 1, 1], (0, 0))]
    out += [(f"static {wa}:{wb}:{wc}", STATIC, [wa, wb, wc], (0, 0)) for wa, wb, wc in ((6, 6, 4), (5, 5, 6),
                                                                                          (4, 4, 8))]
    out += [("uses cap=128 k=8 (3 tables)", USES, [1, 1, 1], (128, 8)),
            ("cost beta=2 (3 tables)", COST, [1, 1, 1], (2, 0)), ("cost beta=4 (3 tables)", COST, [1, 1, 1], (4, 0)),
            ("cost beta=8 (3 tables)", COST, [1, 1, 1], (8, 0)), ("cost beta=16 (3 tables)", COST, [1, 1, 1], (16, 0)),
            ("cost beta=32 (3 tables)", COST, [1, 1, 1], (32, 0)),
            ("cost beta=8 (A, B only)", COST, [1, 1, 0], (8, 0))]
    return out


def rules_abcd() -> list:
    return [("base (a+b)/2", STATIC, [8, 8, 0, 0], (0, 0)), ("(a+b+c+d)/4", STATIC, [1, 1, 1, 1], (0, 0)),
            ("(a+b+c)/3", STATIC, [1, 1, 1, 0], (0, 0))] + \
        [(f"cost beta={b} (4 tables)", COST, [1, 1, 1, 1], (b, 0)) for b in (4, 8, 16, 32)]


def rule_arrays(rules: list):
    r_type = np.array([r[1] for r in rules], np.int64)
    r_w = np.array([[list(r[2]) + [0] * (4 - len(r[2]))] * 3 for r in rules], np.int64)
    r_par = np.array([r[3] for r in rules], np.float64)
    return r_type, r_w, r_par


def _pad(t: np.ndarray) -> np.ndarray:
    out = np.zeros((3, NC_C, N_TOKENS + 1), np.int32)
    out[:, :, -1] = Q_ADAPT
    out[:, :t.shape[1]] = t
    out[:, t.shape[1]:] = np.round(np.arange(N_TOKENS + 1) * Q_ADAPT / N_TOKENS).astype(np.int32)
    return out


# ---- table C's starting tables, counted on the training set as train_context counts A and B ----

def train_c_tables(train: Path, grain: float = 1.0, seed: int = 0) -> dict:
    if CACHE.exists():
        with np.load(CACHE, allow_pickle=False) as z:
            if str(z["key"]) == json.dumps([str(train.resolve()), grain, seed, sorted(C_KINDS)]):
                return {k: z[k] for k in C_KINDS}
    from tricodec.pixels import read_image
    from tricodec.train import image_files
    from tricodec.train_context import LANE_PIXELS, _planes, _residuals
    hist = {k: np.zeros((3, NC_C, N_TOKENS), np.int64) for k in C_KINDS}
    files = image_files(train)
    t0 = time.perf_counter()
    for i, path in enumerate(files):
        planes = _planes(read_image(path))
        if planes is None:
            continue
        samples = [planes]
        if grain > 0:
            rng = np.random.default_rng([seed, i])
            noisy = planes.astype(np.float32) + rng.normal(0.0, grain, planes.shape)
            samples.append(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))
        for pl in samples:
            res = _residuals(pl, "blend")
            n, h, w = res.shape
            lane_rows = max(1, -(-LANE_PIXELS // w))
            for y0 in range(0, h, lane_rows):
                for k, cmode in C_KINDS.items():
                    h32 = np.zeros((3, NC_C, N_TOKENS), np.int32)
                    _count_c(res, plane_kinds(n), y0, min(h, y0 + lane_rows), cmode, h32)
                    hist[k] += h32
        print(f"\r  table C: {i + 1}/{len(files)} training images ({time.perf_counter() - t0:.0f} s)", end="",
              flush=True)
    print()
    tables = {k: cm.tables_from_counts(h).astype(np.int32) for k, h in hist.items()}
    np.savez(CACHE, key=np.array(json.dumps([str(train.resolve()), grain, seed, sorted(C_KINDS)])), **tables)
    return tables


# ---- images ----

def load(folder: Path, limit: int | None) -> list:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".ppm", ".pgm", ".tif", ".tiff"))
    out = []
    for f in files[:limit]:
        im = Image.open(f)
        a = np.asarray(im.convert("L" if im.mode in ("L", "I;16", "1") else "RGB"))
        out.append((f.name, a[:, :, None] if a.ndim == 2 else a))
    return out


def image_costs(arr: np.ndarray, passes: list, check_file: bool) -> dict:
    """{pass name: (M, 3) bits per rule and plane kind}, plus the real LANES bytes and symbols per kind."""
    order, refs = MODEL.plane_layout(arr.shape[2])
    planes = np.ascontiguousarray(arr.transpose(2, 0, 1)[list(order)])
    res = br.compute_blend_residuals(planes, bs.choose_params(planes))
    n, h, w = res.shape
    kinds = plane_kinds(n)
    lane_rows = MODEL.lane_rows(w, h)
    counts, words = wr.encode_wavefront_lanes(res, kinds, *MODEL.arrays, MODEL.update_steps, lane_rows)
    lanes = 12 * counts.shape[0] + 2 * words.size
    if check_file:
        secs = dict(MODEL.encode_image(arr, order, refs, backend_for("cpu", MODEL)))
        assert len(secs[fmt.SEC_LANES]) == lanes, "residuals differ from the codec's"
    out = {"_lanes": lanes, "_syms": np.bincount(kinds, minlength=3) * h * w}
    for name, (init, cmodes, luts, rules) in passes:
        cost = np.zeros((len(rules), 3))
        t0 = time.perf_counter()
        for y0 in range(0, h, lane_rows):
            _strip_cost(res, kinds, y0, min(h, y0 + lane_rows), init, MODEL.bin_a, MODEL.bin_b, cmodes, luts,
                        MODEL.update_steps, *rule_arrays(rules), cost)
        out[name] = cost
        out["_t " + name] = time.perf_counter() - t0
    return out


def build_passes(c_tables: dict, adapt_kind: str) -> list:
    """(name, (stacked starting tables, table C/D context modes, weight_luts, rules)) of every pass."""
    a, b = _pad(MODEL.init_a), _pad(MODEL.init_b)
    lut = MODEL.weight_lut.astype(np.int32)

    def luts(*extra):
        ls = [lut, lut, *extra]
        m = max(len(x) for x in ls)
        return np.stack([np.pad(x, (0, m - len(x)), mode="edge") for x in ls])
    none = np.zeros(1, np.int64)
    passes = [("AB", (np.stack([a, b]), none, luts(), rules_ab()))]
    for k, cmode in C_KINDS.items():
        passes.append((f"AB+C {k}", (np.stack([a, b, c_tables[k]]), np.array([cmode]), luts(lut), rules_abc())))
    for tag, (w0, wmax) in (("fast C (8,128)", (8, 128)), ("slow C (32,2048)", (32, 2048))):
        lc = weight_schedule(w0, wmax).astype(np.int32)
        passes.append((f"AB+C {adapt_kind}, {tag}", (np.stack([a, b, c_tables[adapt_kind]]),
                                                     np.array([C_KINDS[adapt_kind]]), luts(lc), rules_abc())))
    passes.append(("AB+C wide+D values", (np.stack([a, b, c_tables["wide"], c_tables["values"]]),
                                         np.array([C_KINDS["wide"], C_KINDS["values"]]), luts(lut, lut), rules_abcd())))
    return passes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", type=Path, help="folder holding the sets and train/ (e.g. ../shared/data)")
    ap.add_argument("--sets", nargs="+", default=["kodak", "dev", "dev_gray"])
    ap.add_argument("--limit", type=int, default=None, help="first N images of each set")
    ap.add_argument("--adapt-kind", default="wide", choices=sorted(C_KINDS),
                    help="table C context of the adaptation-rate passes")
    ap.add_argument("--no-check", action="store_true", help="skip the check of the residuals against a real file")
    a = ap.parse_args()
    passes = build_passes(train_c_tables(a.data / "train"), a.adapt_kind)
    for name in a.sets:
        ims = load(a.data / name, a.limit)
        t0 = time.perf_counter()
        per = [image_costs(arr, passes, not a.no_check) for _, arr in ims]
        samples = np.array([arr.size for _, arr in ims], np.float64)
        ideal = np.array([r["AB"][0].sum() for r in per]) / samples
        real = np.array([8 * r["_lanes"] for r in per]) / samples
        print(f"\n{name} ({len(ims)} images, {time.perf_counter() - t0:.0f} s)")
        print(f"  real LANES {real.mean():.4f} bpsp, ideal baseline {ideal.mean():.4f} bpsp "
              f"({100 * (ideal.mean() / real.mean() - 1):+.2f}%; worst image "
              f"{100 * np.max(np.abs(ideal / real - 1)):.2f}%)")
        base = ideal.mean()

        def show(label, bits_per_image):
            bpsp = np.mean(bits_per_image / samples)
            print(f"  {label:50s} {bpsp:.4f} bpsp  {100 * (bpsp / base - 1):+.2f}%", flush=True)
        for pname, (_, _, _, rules) in passes:
            ms = np.median([r["_t " + pname] * 1e9 / s for r, s in zip(per, samples)])
            print(f" [{pname}]  ({ms:.0f} ns a sample for the pass and all its rules, median image)")
            for m, rule in enumerate(rules):
                show(rule[0], np.array([r[pname][m].sum() for r in per]))
            # per plane kind: the best static rule of each kind (chosen on this set)
            st = [m for m, rule in enumerate(rules) if rule[1] == STATIC]
            tot = np.array([[r[pname][m] for m in st] for r in per])      # (images, rules, kinds)
            pick = [st[int(np.argmin((tot[:, :, k] / samples[:, None]).sum(0)))] for k in range(3)]
            show("static per kind: " + " / ".join(rules[m][0].replace("static ", "") for m in pick),
                 np.array([sum(r[pname][pick[k], k] for k in range(3)) for r in per]))


if __name__ == "__main__":
    main()
