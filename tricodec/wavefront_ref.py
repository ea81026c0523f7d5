"""The wavefront context model: the CPU reference twin (and specification) of ``kernels/wavefront_encode.py``
/ ``kernels/wavefront_decode.py``.

What gets coded is the predictor's residual symbol ``s`` (uint8, ``r = s - 128``) of every plane, as a
*token* and raw extra bits, under the mixed cumulative of two context tables, with exactly the contexts of
``context_ref`` (the ``tric-cx1`` model).  What differs is the *shape*: every symbol whose causal
neighbours are coded is coded in the same step, probabilities are fixed within a step, and several rANS
states share one word stream.

Strips.  The image is cut into strips of ``lane_rows`` rows; contexts never cross a strip (anything above
it reads 0), so strips are independent (separate programs on a GPU, threads on the CPU).

Schedule of a strip of R rows, W columns, P planes (neighbours reach up to NE = (y-1, x+1), and a colour
plane reads the earlier planes at (y, x) and (y, x+1))::

    n_steps = (W - 1) + 2 * (R - 1) + 2 * (P - 1) + 1
    for T in range(n_steps):                     # steps: dependent
        symbols(T) = [(p, y, x) for p in range(P) for y in range(R)      # this order: j = 0, 1, ...
                      if 0 <= (x := T - 2 * p - 2 * y) < W]
        # all of them are independent: W, N, NW, NE, WW, NN and the earlier planes' (y, x), (y, x+1)
        # lie on earlier steps (diagonal x + 2y, plane p delayed by 2 steps per plane)

Tables (semi-dynamic).  Each table (A, B) is an integer cumulative ``c[ctx, 0..24]`` (0 .. Q_ADAPT); a
step looks them up only.  After every step, each context used in it is updated once, from the counts of
that step's tokens in it, by an order-independent integer weighted average::

    n = uses in this step, H[i] = uses with token < i, w = weight_lut[min(uses before, len - 1)]
    c[ctx, i] = (w * c[ctx, i] + Q_ADAPT * H[i]) // (w + n)        for i in 1..23
    uses += n

(with ``weight_lut[u] = u + w0`` capped: a running average of everything seen, then a fixed window).
The token's frequency is that of ``C(i) = (a[i] + b[i] + 2 * i) >> 1`` (every token >= 1 of 65536).

Interleaved rANS.  A strip has K states (32-bit, 16-bit words, as ``rans_ref``): a power of two the encoder
chooses and records (``_choose_states``: one per 4096 symbols, 128 at most, fewer where their final
values would cost more than 1/300 of the strip's estimated length); a decoder accepts any power of two up to 128 and the
strip's symbol count.
Symbol j of a step belongs to state ``j % K`` and round ``j // K``.  Decoding a round is two sub-rounds:
every state of the round pops its token (states in ascending order; a state whose value drops below
2^16 reads the next word of the strip's stream), then every state whose token has extra bits pops them
(again ascending).  On a GPU a sub-round is one vector step: word positions are a prefix sum over the
states that need a word.  The stream starts with the K final encoder states (2 words each, state 0
first) and must end with every word read and every state back at 2^16.

Everything is integer arithmetic, so every backend writes and reads the same bytes.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .context_ref import (ACT_MAX, N_TOKENS, NB_B, Q_ADAPT, _extra_bits, _pop, _push, _sgn, _token, _untoken,
                          check_model_arrays)
from .errors import DecodeError
from .rans_ref import RANS_L, check_counts

MAX_STATES = 128            # rANS states per strip, at most
SYMBOLS_PER_STATE = 4096    # a strip gets one state per this many symbols (a power of two, >= 1)
STATE_BUDGET = 300          # final states may cost 1/300 of a strip's estimated bits
MAX_UPDATE_STEPS = 64       # the kernels keep the contexts of this many steps' symbols in a list
MIX_BITS = 15               # precision of the table update's weights (int32 products)
MIX_ONE = 1 << MIX_BITS


def lane_geometry(height: int, lane_rows: int) -> int:
    """Number of strips of an image ``height`` rows tall."""
    return (height + lane_rows - 1) // lane_rows


@njit(cache=True, nogil=True)
def n_states(n_symbols):
    """The most rANS states the encoder gives a strip of ``n_symbols`` symbols: the largest power of two
    <= n / 4096, in [1, 128] (one state's final value, 4 bytes, per >= 4096 symbols)."""
    k = 1
    while k < MAX_STATES and (k << 1) * SYMBOLS_PER_STATE <= n_symbols:
        k <<= 1
    return k


@njit(cache=True, nogil=True)
def max_states(n_symbols):
    """The most rANS states a strip of ``n_symbols`` symbols may have (what a decoder accepts): a power of
    two, at most 128 and at most the symbol count."""
    k = 1
    while k < MAX_STATES and (k << 1) <= n_symbols:
        k <<= 1
    return k


def _check_states(states) -> int:
    states = int(states)
    if states < 0 or states > MAX_STATES or states & (states - 1):
        raise ValueError(f"states must be 0 or a power of two up to {MAX_STATES}")
    return states


@njit(cache=True, nogil=True)
def _choose_states(n_symbols, freq, nx):
    """The encoder's choice of a strip's states: as many as ``n_states`` allows while their final states
    (4 bytes each) stay within 1/STATE_BUDGET of the strip's estimated code length, sum(16 - floor(log2(freq))
    + extra bits), an integer every backend computes alike (a very smooth image gets fewer states: less
    parallelism, but framing stays a fraction of a percent; the estimate runs above the real length)."""
    bits = np.int64(0)
    for j in range(n_symbols):
        bits += 16 - _floor_log2(np.int64(freq[j])) + nx[j]
    k = n_states(n_symbols)
    while k > 1 and 4 * k * STATE_BUDGET * 8 > bits:
        k >>= 1
    return k


@njit(cache=True, nogil=True, inline="always")
def _floor_log2(f):
    """floor(log2(f)) of 1 <= f < 2^32 in five shifts (math.frexp was a call per symbol: 1 ms of a
    kodak image's encode), written out: as a loop over the shifts it took 9x as long."""
    e = 0
    if f >= 65536:
        f >>= 16
        e += 16
    if f >= 256:
        f >>= 8
        e += 8
    if f >= 16:
        f >>= 4
        e += 4
    if f >= 4:
        f >>= 2
        e += 2
    return e + (1 if f >= 2 else 0)


@njit(cache=True, nogil=True)
def _log2(k):
    n = 0
    while (1 << (n + 1)) <= k:
        n += 1
    return n


@njit(cache=True, nogil=True)
def n_steps(n_planes, rows, width):
    return (width - 1) + 2 * (rows - 1) + 2 * (n_planes - 1) + 1


@njit(cache=True, nogil=True, inline="always")
def _row_range(d, rows, width):
    """Rows (local to the strip) of diagonal ``d``: x = d - 2 * y in [0, W) -> [lo, hi)."""
    lo = max(0, (d - width + 2) // 2)
    hi = min(rows, d // 2 + 1) if d >= 0 else 0
    return lo, max(lo, hi)


RING = 8                    # diagonals kept per plane for the contexts (they reach back 4, forward 1)


@njit(cache=True, nogil=True, inline="always")
def _ctx_ring(ring, p, kind, d, yi, bin_a, bin_b):
    """``context_ref._contexts`` of the pixel on diagonal ``d``, ring row ``yi`` (strip row + 2), read from
    the ring of signed residuals ``ring[plane, d % RING, row]`` (0 outside the image and above the strip).
    The encoders call it; the two decoders (here and fused_ref) state the same contexts with branches on
    ``kind`` inside their loops (5% / 4% faster there; a branch splits the helper into blocks, and numba's
    reference-count pruning then keeps an atomic incref/decref per array and symbol in a loop this large)."""
    s1 = (d - 1) & (RING - 1)
    s2 = (d - 2) & (RING - 1)
    rw = np.int32(ring[p, s1, yi])
    rn = np.int32(ring[p, s2, yi - 1])
    rnw = np.int32(ring[p, (d - 3) & (RING - 1), yi - 1])
    rne = np.int32(ring[p, s1, yi - 1])
    rww = np.int32(ring[p, s2, yi])
    rnn = np.int32(ring[p, (d - 4) & (RING - 1), yi - 2])
    near = abs(rw) + abs(rn) + abs(rnw) + abs(rne)
    # straight-line code (flags, not branches; the earlier-plane loads always read some plane): one basic
    # block, so numba's reference-count pruning drops the arrays' incref/decref however large the caller
    one = np.int32(kind > 0)
    two = np.int32(kind == 2)
    q = p - kind
    co = one * np.int32(ring[q, d & (RING - 1), yi])
    c1 = two * np.int32(ring[p - 1, d & (RING - 1), yi])
    act = (near + abs(rw) + abs(rn) + abs(rww) + abs(rnn) + 2 * abs(co)
           + one * abs(np.int32(ring[q, (d + 1) & (RING - 1), yi])) + abs(c1))
    cc = co + c1
    ca = (np.int32(bin_a[min(act, ACT_MAX)]) * 3 + _sgn(rw)) * 3 + _sgn(rn)
    ca = ca * (1 + 2 * one) + one * _sgn(co)
    a2 = one * np.int32(bin_b[min(2 * abs(cc), ACT_MAX)])
    cb = ((np.int32(bin_b[min(near, ACT_MAX)]) * NB_B + a2) * 3 + _sgn(cc)) * 3 + _sgn(rw + rn)
    return ca, cb


@njit(cache=True, nogil=True, inline="always")
def _clear_slot(ring, p, d):
    ring[p, d & (RING - 1), :] = 0


@njit(cache=True, nogil=True)
def _update(c, hist, tot, used, touched, n_touched, weight_lut):
    """The end-of-step update of every context used in the step (each one alone: order-independent).
    Every product stays below 2**31 (``keep + s * n <= MIX_ONE``, tables below 2**16)."""
    last = weight_lut.shape[0] - 1
    for e in range(n_touched):
        kind = touched[e, 0]
        ctx = touched[e, 1]
        n = tot[kind, ctx]
        u = used[kind, ctx]
        s = np.int32(MIX_ONE // (weight_lut[min(u, last)] + n))
        keep = np.int64(MIX_ONE - n * s)
        qs = np.int64(Q_ADAPT * s)
        crow = c[kind, ctx]
        hrow = hist[kind, ctx]
        acc = np.int64(0)
        for i in range(1, N_TOKENS):
            acc += hrow[i - 1]
            crow[i] = np.int32((keep * np.int64(crow[i]) + qs * acc) >> MIX_BITS)
            hrow[i - 1] = 0
        hrow[N_TOKENS - 1] = 0
        tot[kind, ctx] = 0
        used[kind, ctx] = min(u + n, np.int32(last))


@njit(cache=True, nogil=True)
def _fresh(init_a, init_b):
    """A strip's working state: tables, per-step counts, use counters, touched lists."""
    ta = init_a.copy()
    tb = init_b.copy()
    ha = np.zeros((init_a.shape[0], init_a.shape[1], N_TOKENS), np.int32)
    hb = np.zeros((init_b.shape[0], init_b.shape[1], N_TOKENS), np.int32)
    sa = np.zeros(init_a.shape[:2], np.int32)
    sb = np.zeros(init_b.shape[:2], np.int32)
    ua = np.zeros(init_a.shape[:2], np.int32)
    ub = np.zeros(init_b.shape[:2], np.int32)
    # one row more than there are contexts: the decoders write a row for every symbol and keep it
    # only on a context's first use
    lista = np.empty((init_a.shape[0] * init_a.shape[1] + 1, 2), np.int32)
    listb = np.empty((init_b.shape[0] * init_b.shape[1] + 1, 2), np.int32)
    return ta, tb, ha, hb, sa, sb, ua, ub, lista, listb


@njit(cache=True, nogil=True)
def _model_pass(res, kinds, init_a, init_b, bin_a, bin_b, weight_lut, update_steps, y0, y1, start, freq, nx, raw,
                counts):
    """Forward over one strip in schedule order: each symbol's (start, freq) and each step's symbol count;
    the extra bits go to ``raw`` (16-bit words, LSB first) -> the number of raw words."""
    n_planes, _, w = res.shape
    rows = y1 - y0
    ta, tb, ha, hb, sa, sb, ua, ub, lista, listb = _fresh(init_a, init_b)
    ring = np.zeros((n_planes, RING, rows + 2), np.int16)
    j = 0
    acc = np.uint64(0)
    n_acc = 0
    n_raw = 0
    na = 0
    nb = 0
    steps = n_steps(n_planes, rows, w)
    for t in range(steps):
        j0 = j
        for p in range(n_planes):
            d = t - 2 * p
            kind = kinds[p]
            lo_y, hi_y = _row_range(d, rows, w)
            _clear_slot(ring, p, d)     # every step: a diagonal past the strip's last one must read 0 too
            for yy in range(lo_y, hi_y):
                ca, cb = _ctx_ring(ring, p, kind, d, yy + 2, bin_a, bin_b)
                r = np.int32(res[p, y0 + yy, d - 2 * yy]) - 128
                ring[p, d & (RING - 1), yy + 2] = r
                tok, n_extra, extra = _token(2 * r if r >= 0 else -2 * r - 1)
                lo = (ta[kind, ca, tok] + tb[kind, cb, tok] + 2 * tok) >> 1
                start[j] = lo
                freq[j] = ((ta[kind, ca, tok + 1] + tb[kind, cb, tok + 1] + 2 * tok + 2) >> 1) - lo
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
                if sa[kind, ca] == 0:       # (written out: numba's inlined helper was 2x slower)
                    lista[na, 0] = kind
                    lista[na, 1] = ca
                    na += 1
                sa[kind, ca] += 1
                ha[kind, ca, tok] += 1
                if sb[kind, cb] == 0:
                    listb[nb, 0] = kind
                    listb[nb, 1] = cb
                    nb += 1
                sb[kind, cb] += 1
                hb[kind, cb, tok] += 1
        counts[t] = j - j0
        if (t + 1) % update_steps == 0 or t == steps - 1:
            _update(ta, ha, sa, ua, lista, na, weight_lut)
            _update(tb, hb, sb, ub, listb, nb, weight_lut)
            na = 0
            nb = 0
    if n_acc > 0:
        raw[n_raw] = np.uint16(acc & np.uint64(0xFFFF))
        n_raw += 1
    return n_raw


@njit(cache=True, nogil=True)
def _encode_strip(res, kinds, init_a, init_b, bin_a, bin_b, weight_lut, update_steps, y0, y1, scratch, base, stride,
                  out_counts, states):
    """One strip -> its rANS words (decode order) then its raw words, at the start of
    ``scratch[base:base + stride]``; their counts in ``out_counts``."""
    n_planes, _, w = res.shape
    n_sym = (y1 - y0) * n_planes * w
    steps = n_steps(n_planes, y1 - y0, w)
    start = np.empty(n_sym, np.uint32)
    freq = np.empty(n_sym, np.uint32)
    nx = np.empty(n_sym, np.uint8)
    raw = np.empty(n_sym // 2 + 1, np.uint16)   # at most 6 extra bits a symbol
    counts = np.empty(steps, np.int64)
    n_raw = _model_pass(res, kinds, init_a, init_b, bin_a, bin_b, weight_lut, update_steps, y0, y1, start, freq, nx,
                        raw, counts)
    _emit_words(start, freq, nx, raw, n_raw, counts, n_sym, steps, scratch, base, stride, out_counts, states)


@njit(cache=True, nogil=True)
def _emit_words(start, freq, nx, raw, n_raw, counts, n_sym, steps, scratch, base, stride, out_counts, states):
    """A strip's rANS pass over the (start, freq) its model pass gave each symbol: its words (decode order)
    then its ``n_raw`` raw words at the start of ``scratch[base:base + stride]``, their counts in
    ``out_counts``."""
    k_states = _choose_states(n_sym, freq, nx) if states == 0 else min(states, max_states(n_sym))
    x = np.full(k_states, np.uint64(RANS_L), np.uint64)
    top = base + stride - 1
    m = 0
    end = n_sym
    for t in range(steps - 1, -1, -1):
        n = counts[t]
        first = end - n
        # LIFO over the whole strip; a state's symbols are j, j + K, j + 2K, ... of each step, and
        # states descending so that each round's words land in ascending state order.
        for jj in range(n - 1, -1, -1):
            k = jj % k_states
            x[k], m = _push(x[k], np.uint64(freq[first + jj]), np.uint64(start[first + jj]), scratch, top, m)
        end = first
    for k in range(k_states - 1, -1, -1):
        scratch[top - m] = np.uint16(x[k] & np.uint64(0xFFFF))
        scratch[top - m - 1] = np.uint16(x[k] >> np.uint64(16))
        m += 2
    # move the rANS words to the front of the slot, the raw words after them
    scratch[base:base + m] = scratch[top + 1 - m:top + 1].copy()
    scratch[base + m:base + m + n_raw] = raw[:n_raw]
    out_counts[0] = m
    out_counts[1] = n_raw
    out_counts[2] = _log2(k_states)


@njit(cache=True, parallel=True, nogil=True)
def _encode_strips_nb(res, kinds, init_a, init_b, bin_a, bin_b, weight_lut, update_steps, lane_rows, first, scratch,
                      stride, counts, states):
    h = res.shape[1]
    for g in prange(counts.shape[0]):
        y0 = (first + g) * lane_rows
        _encode_strip(res, kinds, init_a, init_b, bin_a, bin_b, weight_lut, update_steps, y0, min(h, y0 + lane_rows),
                      scratch, g * stride, stride, counts[g], states)


@njit(cache=True, nogil=True)
def _append(scratch, stride, counts, out, pos):
    for g in range(counts.shape[0]):
        c = counts[g, 0] + counts[g, 1]
        out[pos:pos + c] = scratch[g * stride:g * stride + c]
        pos += c
    return pos


def max_lane_words(shape: tuple, lane_rows: int) -> tuple[int, int]:
    """The most (rANS, raw) words an encoder writes for one strip of a (P, H, W) image: a rANS word per
    symbol at most, plus two per state; at most 6 extra bits per symbol."""
    n_planes, h, w = shape
    n = min(lane_rows, h) * n_planes * w
    return n + 2 * int(max_states(n)), (6 * n + 15) // 16


def check_model_arrays_wf(kinds, init_a, init_b, bin_a, bin_b, weight_lut, n_planes: int) -> None:
    """Shapes and ranges every twin relies on (the kernels check the same)."""
    check_model_arrays(kinds, init_a, init_b, bin_a, bin_b, np.ones(1, np.int32), n_planes)
    if weight_lut.ndim != 1 or not 1 <= weight_lut.shape[0] <= 1 << 16 or int(weight_lut.min()) < 1 \
            or int(weight_lut.max()) > 1 << 16:
        raise ValueError("weight_lut must hold 1 to 2**16 weights in 1..2**16")


def _check_update_steps(update_steps) -> int:
    if not 1 <= int(update_steps) <= MAX_UPDATE_STEPS:
        raise ValueError(f"update_steps must be in 1..{MAX_UPDATE_STEPS}")
    return int(update_steps)


def _arrays(kinds, init_a, init_b, bin_a, bin_b, weight_lut, n_planes):
    out = tuple(np.ascontiguousarray(a, dtype=np.int32) for a in (kinds, init_a, init_b, bin_a, bin_b, weight_lut))
    check_model_arrays_wf(*out, n_planes)
    return out


STRIPS_PER_BATCH = 16  # strips encoded per parallel call: bounds the encoder's scratch memory


def encode_wavefront_lanes(residuals: np.ndarray, kinds, init_a, init_b, bin_a, bin_b, weight_lut,
                           update_steps: int, lane_rows: int, states: int = 0):
    """Encode residual planes with the wavefront context model.

    Args:
        residuals: uint8 (P, H, W), the predictor's residual symbols, planes in coding order.
        kinds: int (P,): plane p looks at planes p-kinds[p] .. p-1 (0, 1 or 2 of them).
        init_a, init_b: int32 (3, NC_A, 25) / (3, NC_B, 25): trained starting cumulatives per kind.
        bin_a, bin_b: int32 (4096,): activity -> bin.
        weight_lut: int32 (L,): weight of a context's past after u uses (u clamped to L-1).
        update_steps: tables are updated after every this many steps (and after the last).
        lane_rows: image rows per strip (>= 1).
        states: 0 (the encoder chooses, ``_choose_states``) or a power of two: every strip gets that many
            rANS states, or as many as it may have (``max_states``): for tests and experiments.

    Returns:
        (counts, words): uint32 (n_strips, 3) rANS words, raw words and log2 of the rANS states per strip;
        uint16 (counts[:, :2].sum(),) each strip's rANS words (decode order) then its raw words, strips in
        order.
    """
    residuals = np.ascontiguousarray(residuals, dtype=np.uint8)
    n_planes, h, w = residuals.shape
    if residuals.size == 0 or lane_rows < 1:
        raise ValueError("need a non-empty (P, H, W) residual array and lane_rows >= 1")
    arrays = _arrays(kinds, init_a, init_b, bin_a, bin_b, weight_lut, n_planes)
    update_steps = _check_update_steps(update_steps)
    n_lanes = lane_geometry(h, lane_rows)
    stride = sum(max_lane_words(residuals.shape, lane_rows))
    counts = np.empty((n_lanes, 3), dtype=np.uint32)
    words = np.empty(n_lanes * stride, dtype=np.uint16)
    pos = 0
    for first in range(0, n_lanes, STRIPS_PER_BATCH):
        g = min(STRIPS_PER_BATCH, n_lanes - first)
        scratch = np.empty(g * stride, dtype=np.uint16)
        _encode_strips_nb(residuals, *arrays, update_steps, lane_rows, first, scratch, stride,
                          counts[first:first + g], _check_states(states))
        pos = _append(scratch, stride, counts[first:first + g], words, pos)
    return counts, words[:pos].copy()


@njit(cache=True, nogil=True)
def _decode_strip(words, pos, end, raw_end, k_states, kinds, init_a, init_b, bin_a, bin_b, weight_lut, update_steps,
                  y0, y1, out, stats):
    """Decode one strip (rANS words ``words[pos:end]``, raw words ``words[end:raw_end]``) into ``out``
    -> 0, or 1 if its words are corrupted.  ``stats`` gets the strip's dependent steps as run (diagonal
    steps, rANS rounds)."""
    n_planes, _, w = out.shape
    rows = y1 - y0
    if end - pos < 2 * k_states:
        return 1
    x = np.empty(k_states, np.uint64)
    for k in range(k_states):
        x[k] = (np.uint64(words[pos]) << np.uint64(16)) | np.uint64(words[pos + 1])
        pos += 2
    ta, tb, ha, hb, sa, sb, ua, ub, lista, listb = _fresh(init_a, init_b)
    ring = np.zeros((n_planes, RING, rows + 2), np.int16)
    rpos = end
    acc = np.uint64(0)
    n_acc = 0
    steps = n_steps(n_planes, rows, w)
    rounds = 0
    na = 0
    nb = 0
    for t in range(steps):
        k = 0
        for p in range(n_planes):
            d = t - 2 * p
            kind = kinds[p]
            lo_y, hi_y = _row_range(d, rows, w)
            _clear_slot(ring, p, d)     # every step: a diagonal past the strip's last one must read 0 too
            for yy in range(lo_y, hi_y):
                if k == 0:
                    rounds += 1
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
                while tok < N_TOKENS - 1 and ((ta[kind, a, tok + 1] + tb[kind, b, tok + 1] + 2 * tok + 2) >> 1) <= slot:
                    tok += 1
                lo = (ta[kind, a, tok] + tb[kind, b, tok] + 2 * tok) >> 1
                hi = (ta[kind, a, tok + 1] + tb[kind, b, tok + 1] + 2 * tok + 2) >> 1
                # context_ref._pop written out: in a function this large numba's reference-count pruning
                # gives up, and each array passed to an inlined helper costs an atomic incref and decref a symbol
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
                out[p, y0 + yy, d - 2 * yy] = np.uint8(rr + 128)
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
        if (t + 1) % update_steps == 0 or t == steps - 1:
            _update(ta, ha, sa, ua, lista, na, weight_lut)
            _update(tb, hb, sb, ub, listb, nb, weight_lut)
            na = 0
            nb = 0
    stats[0] = steps
    stats[1] = rounds
    if pos != end or rpos != raw_end or acc != 0:
        return 1
    for k in range(k_states):
        if x[k] != np.uint64(RANS_L):
            return 1
    return 0


@njit(cache=True, parallel=True, nogil=True)
def _decode_strips_nb(counts, offsets, words, kinds, init_a, init_b, bin_a, bin_b, weight_lut, update_steps, lane_rows,
                      out, status, stats):
    h = out.shape[1]
    for lane in prange(counts.shape[0]):
        y0 = lane * lane_rows
        pos = offsets[lane]
        end = pos + counts[lane, 0]
        status[lane] = _decode_strip(words, pos, end, end + counts[lane, 1], 1 << counts[lane, 2], kinds, init_a,
                                     init_b, bin_a, bin_b,
                                     weight_lut, update_steps, y0, min(h, y0 + lane_rows), out, stats[lane])


def check_wavefront_lanes(counts: np.ndarray, n_words: int, shape: tuple, lane_rows: int) -> None:
    """Validate a strip table (uint32 (n, 3): rANS words, raw words, log2 states) against the stream and
    image it describes, before decoding."""
    n_planes, h, w = shape
    if lane_rows < 1 or counts.ndim != 2 or counts.shape != (lane_geometry(h, lane_rows), 3):
        raise DecodeError("lane table does not match the image size")
    max_rans, max_raw = max_lane_words(shape, lane_rows)
    check_counts(int(counts[:, 0].min()), int(counts[:, 0].max()), int(counts[:, :2].sum(dtype=np.int64)),
                 n_words, max_rans)
    if int(counts[:, 1].max()) > max_raw:
        raise DecodeError("lane longer than any encoder writes")
    rows = np.minimum(lane_rows, h - lane_rows * np.arange(counts.shape[0]))
    for log2_k, r in zip(counts[:, 2].tolist(), rows.tolist()):
        if not 0 <= log2_k <= 7 or 1 << log2_k > max_states(r * n_planes * w):
            raise DecodeError("more rANS states than the strip has symbols")


def decode_wavefront_lanes(counts: np.ndarray, words: np.ndarray, shape: tuple, kinds, init_a, init_b, bin_a,
                           bin_b, weight_lut, update_steps: int, lane_rows: int,
                           stats: np.ndarray | None = None) -> np.ndarray:
    """Decode what :func:`encode_wavefront_lanes` wrote.

    Args:
        counts: uint32 (n_strips, 3), words: uint16 (W,): the strip table and data.
        shape: (P, H, W) of the residual planes.
        kinds, init_a, init_b, bin_a, bin_b, weight_lut, update_steps, lane_rows: as the encoder had them.
        stats: optional int64 (n_strips, 2): receives each strip's dependent steps as run (diagonal
            steps, rANS rounds).

    Returns:
        uint8 (P, H, W): the residual symbols.

    Raises:
        DecodeError: a strip ran out of words, left words unread or did not end in the initial states.
    """
    counts = np.ascontiguousarray(counts, dtype=np.uint32)
    words = np.ascontiguousarray(words, dtype=np.uint16)
    n_planes, h, w = (int(v) for v in shape)
    arrays = _arrays(kinds, init_a, init_b, bin_a, bin_b, weight_lut, n_planes)
    update_steps = _check_update_steps(update_steps)
    check_wavefront_lanes(counts, words.shape[0], (n_planes, h, w), lane_rows)
    totals = counts[:, :2].sum(axis=1, dtype=np.int64)
    offsets = np.zeros(counts.shape[0], dtype=np.int64)
    np.cumsum(totals[:-1], out=offsets[1:])
    out = np.empty((n_planes, h, w), dtype=np.uint8)
    status = np.zeros(counts.shape[0], dtype=np.uint8)
    if stats is None:
        stats = np.zeros((counts.shape[0], 2), np.int64)
    _decode_strips_nb(counts, offsets, words, *arrays, update_steps, lane_rows, out, status, stats)
    if status.any():
        raise DecodeError(f"corrupted entropy-coded data in lane {int(np.argmax(status))}")
    return out


def encode_wavefront_lanes_batch(residuals_list, kinds_list, init_a, init_b, bin_a, bin_b, weight_lut, update_steps,
                                 lane_rows_list) -> list:
    """:func:`encode_wavefront_lanes` of several images -> one (counts, words) per image."""
    return [encode_wavefront_lanes(r, k, init_a, init_b, bin_a, bin_b, weight_lut, update_steps, lr)
            for r, k, lr in zip(residuals_list, kinds_list, lane_rows_list, strict=True)]


def decode_wavefront_lanes_batch(counts_list, words_list, shapes, kinds_list, init_a, init_b, bin_a, bin_b,
                                 weight_lut, update_steps, lane_rows_list) -> list:
    """:func:`decode_wavefront_lanes` of several images -> one uint8 (P, H, W) per image."""
    out = []
    for i, (c, w, shape, k, lr) in enumerate(zip(counts_list, words_list, shapes, kinds_list, lane_rows_list,
                                                  strict=True)):
        try:
            out.append(decode_wavefront_lanes(c, w, shape, k, init_a, init_b, bin_a, bin_b, weight_lut,
                                              update_steps, lr))
        except DecodeError as e:
            raise DecodeError((f"image {i}: " if len(shapes) > 1 else "") + str(e)) from None
    return out
