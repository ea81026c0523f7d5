"""Causal context model with adaptive tables, coded by rANS in independent lanes: the CPU reference twin of
``kernels/context_encode.py`` / ``kernels/context_decode.py``.

What gets coded is the predictor's residual symbol ``s`` (uint8, ``r = s - 128``) of every plane.  A lane
is a strip of ``lane_rows`` image rows; inside it symbols go row by row, plane by plane, left to right::

    for y in lane_rows:  for p in planes:  for x in range(W):  code(s[p, y, x])

Each symbol is split into a *token* (24 values) and raw *extra bits*::

    u = 2 * r if r >= 0 else -2 * r - 1                     # zigzag, 0..255
    u < 16:  token = u, no extra bits
    else:    n = floor(log2(u)); token = 16 + 2 * (n - 4) + bit n-1 of u; extra = u's low n-1 bits

The token's probability comes from two *context tables*, chosen from already-coded residuals of the
lane only (so lanes stay independent): neighbours W, N, NW, NE, WW, NN of the same plane and, for a
colour plane of kind 1 or 2, the co-located residuals of the earlier colour planes (plane ``p - kind``
at x and x+1, and plane ``p - 1`` for kind 2).  Anything above the lane or outside the row reads 0::

    ctx_a = activity bin (bin_a[2|W| + 2|N| + |NW| + |NE| + |WW| + |NN| + cross terms]) x sign(W) x sign(N)
            [x sign(co) for kinds 1, 2]                                             (NC_A per kind)
    ctx_b = bin_b[|W| + |N| + |NW| + |NE|] x bin_b[2|co (+ c1)|] x sign(co (+ c1)) x sign(W + N)   (NC_B)

Each context table is an adaptive cumulative ``c[0..24]`` (``c[0] = 0``, ``c[24] = Q_ADAPT``) that starts
from the model's trained table and, after each token ``t``, moves towards it at a rate set by how often
the context was used (``rate = rate_lut[min(n, len - 1)]``, ``n`` = uses so far)::

    for i in 1..23:  c[i] += (Q_ADAPT - c[i]) >> rate  if i > t  else  -(c[i] >> rate)

The token is coded with the *mixed* cumulative ``C(i) = (a[i] + b[i] + 2 * i) >> 1`` of the two tables,
which runs from 0 to 65536 and gives every token a frequency >= 1; extra bits are coded as a uniform
symbol of ``2**(16 - n_extra)`` slots.  The rANS coder is the one of ``rans_ref`` (32-bit state,
16-bit words, lanes start and must end at ``RANS_L``, words stored in decode order).  Every step is
integer arithmetic, so every backend writes and reads the same bytes.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .errors import DecodeError
from .rans_ref import PREC_TOTAL, RANS_L, check_counts

N_TOKENS = 24
Q_ADAPT = PREC_TOTAL - N_TOKENS
NB_A = 20          # activity bins of table A
NB_B = 12          # bins of each of table B's two activities
ACT_MAX = 4095     # activities are clamped here before the bin look-up
NC_A = NB_A * 27
NC_B = NB_B * NB_B * 9
N_KINDS = 3        # plane kinds: 0 alone, 1 after one colour plane, 2 after two
# Largest possible word count of a lane: each symbol renormalises at most once for its token and once
# for its extra bits.
MAX_WORDS_PER_SYMBOL = 2


def lane_geometry(height: int, lane_rows: int) -> int:
    """Number of lanes of an image ``height`` rows tall."""
    return (height + lane_rows - 1) // lane_rows


@njit(cache=True, nogil=True, inline="always")
def _r(res, p, y, x, y0, w):
    if y < y0 or x < 0 or x >= w:
        return np.int32(0)
    return np.int32(res[p, y, x]) - 128


@njit(cache=True, nogil=True, inline="always")
def _sgn(v):
    return np.int32(1) + np.int32(v > 0) - np.int32(v < 0)


@njit(cache=True, nogil=True, inline="always")
def _contexts(res, p, kind, y, x, y0, w, bin_a, bin_b):
    rw = _r(res, p, y, x - 1, y0, w)
    rn = _r(res, p, y - 1, x, y0, w)
    rnw = _r(res, p, y - 1, x - 1, y0, w)
    rne = _r(res, p, y - 1, x + 1, y0, w)
    rww = _r(res, p, y, x - 2, y0, w)
    rnn = _r(res, p, y - 2, x, y0, w)
    near = abs(rw) + abs(rn) + abs(rnw) + abs(rne)
    act = near + abs(rw) + abs(rn) + abs(rww) + abs(rnn)
    co = np.int32(0)
    cc = np.int32(0)
    if kind > 0:
        co = _r(res, p - kind, y, x, y0, w)
        act += 2 * abs(co) + abs(_r(res, p - kind, y, x + 1, y0, w))
        cc = co
        if kind == 2:
            c1 = _r(res, p - 1, y, x, y0, w)
            act += abs(c1)
            cc += c1
    ca = (np.int32(bin_a[min(act, ACT_MAX)]) * 3 + _sgn(rw)) * 3 + _sgn(rn)
    a2 = np.int32(0)
    if kind > 0:
        ca = ca * 3 + _sgn(co)
        a2 = np.int32(bin_b[min(2 * abs(cc), ACT_MAX)])
    cb = ((np.int32(bin_b[min(near, ACT_MAX)]) * NB_B + a2) * 3 + _sgn(cc)) * 3 + _sgn(rw + rn)
    return ca, cb


@njit(cache=True, nogil=True, inline="always")
def _token(u):
    """u in 0..255 -> (token, n_extra, extra)."""
    if u < 16:
        return u, 0, 0
    n = 4
    while (u >> (n + 1)) != 0:
        n += 1
    return 16 + 2 * (n - 4) + ((u >> (n - 1)) & 1), n - 1, u & ((1 << (n - 1)) - 1)


@njit(cache=True, nogil=True, inline="always")
def _extra_bits(t):
    return 0 if t < 16 else (4 + ((t - 16) >> 1)) - 1


@njit(cache=True, nogil=True, inline="always")
def _untoken(t, extra):
    if t < 16:
        return t
    n = 4 + ((t - 16) >> 1)
    return (1 << n) | (((t - 16) & 1) << (n - 1)) | extra


@njit(cache=True, nogil=True, inline="always")
def _adapt(c, k, ctx, t, rate):
    for i in range(1, N_TOKENS):
        v = c[k, ctx, i]
        if i > t:
            c[k, ctx, i] = v + ((Q_ADAPT - v) >> rate)
        else:
            c[k, ctx, i] = v - (v >> rate)


@njit(cache=True, nogil=True, inline="always")
def _rate(n_used, kind, ctx, rate_lut):
    n = n_used[kind, ctx]
    if n < rate_lut.shape[0] - 1:
        n_used[kind, ctx] = n + 1
    return rate_lut[n]


@njit(cache=True, nogil=True, inline="always")
def _fresh_state(init_a, init_b):
    """A lane's working tables (copies of the starting ones) and its per-context use counters."""
    return (init_a.copy(), init_b.copy(), np.zeros(init_a.shape[:2], np.int32),
            np.zeros(init_b.shape[:2], np.int32))


@njit(cache=True, nogil=True)
def _model_pass(res, kinds, init_a, init_b, bin_a, bin_b, rate_lut, y0, y1, start, freq, nx, ex):
    """Forward over one lane: each symbol's token (start, freq) and extra bits, adapting as it goes."""
    _, _, w = res.shape
    ta, tb, na, nb = _fresh_state(init_a, init_b)
    j = 0
    for y in range(y0, y1):
        for p in range(res.shape[0]):
            kind = kinds[p]
            for x in range(w):
                ca, cb = _contexts(res, p, kind, y, x, y0, w, bin_a, bin_b)
                r = np.int32(res[p, y, x]) - 128
                u = 2 * r if r >= 0 else -2 * r - 1
                t, n_extra, extra = _token(u)
                lo = (ta[kind, ca, t] + tb[kind, cb, t] + 2 * t) >> 1
                hi = (ta[kind, ca, t + 1] + tb[kind, cb, t + 1] + 2 * t + 2) >> 1
                start[j] = lo
                freq[j] = hi - lo
                nx[j] = n_extra
                ex[j] = extra
                j += 1
                _adapt(ta, kind, ca, t, _rate(na, kind, ca, rate_lut))
                _adapt(tb, kind, cb, t, _rate(nb, kind, cb, rate_lut))


@njit(cache=True, parallel=True, nogil=True)
def _encode_lanes_nb(res, kinds, init_a, init_b, bin_a, bin_b, rate_lut, lane_rows, first_lane, scratch,
                     stride, counts):
    n_planes, h, w = res.shape
    for g in prange(counts.shape[0]):
        lane = first_lane + g
        y0 = lane * lane_rows
        y1 = min(h, y0 + lane_rows)
        n = (y1 - y0) * n_planes * w
        start = np.empty(n, np.uint32)
        freq = np.empty(n, np.uint32)
        nx = np.empty(n, np.uint8)
        ex = np.empty(n, np.uint8)
        _model_pass(res, kinds, init_a, init_b, bin_a, bin_b, rate_lut, y0, y1, start, freq, nx, ex)
        base = g * stride
        x = np.uint64(RANS_L)
        m = 0
        top = base + stride - 1
        for j in range(n - 1, -1, -1):
            # LIFO: the extra bits (decoded second) are pushed first.
            if nx[j] > 0:
                sh = np.uint64(16 - nx[j])
                x, m = _push(x, np.uint64(1) << sh, np.uint64(ex[j]) << sh, scratch, top, m)
            x, m = _push(x, np.uint64(freq[j]), np.uint64(start[j]), scratch, top, m)
        scratch[base + stride - 1 - m] = np.uint16(x & np.uint64(0xFFFF))
        scratch[base + stride - 2 - m] = np.uint16(x >> np.uint64(16))
        counts[g] = m + 2


@njit(cache=True, nogil=True)
def _append_lanes(scratch, stride, counts, out, pos):
    for g in range(counts.shape[0]):
        c = counts[g]
        src = g * stride + stride - c
        out[pos:pos + c] = scratch[src:src + c]
        pos += c
    return pos


def check_kinds(kinds: np.ndarray, n_planes: int) -> np.ndarray:
    """``kinds`` if it gives each of ``n_planes`` planes 0, 1 or 2 earlier colour planes, else ValueError."""
    if kinds.shape != (n_planes,) or any(not 0 <= int(k) <= min(p, 2) for p, k in enumerate(kinds)):
        raise ValueError("kinds must give each plane 0, 1 or 2 earlier colour planes to look at")
    return kinds


def check_model_arrays(kinds, init_a, init_b, bin_a, bin_b, rate_lut, n_planes: int) -> None:
    """Shapes and ranges every twin relies on (the kernels check the same)."""
    check_kinds(kinds, n_planes)
    if init_a.shape != (N_KINDS, NC_A, N_TOKENS + 1) or init_b.shape != (N_KINDS, NC_B, N_TOKENS + 1):
        raise ValueError("context tables must be (3, NC, 25)")
    for t in (init_a, init_b):
        if (t[..., 0] != 0).any() or (t[..., -1] != Q_ADAPT).any() or (np.diff(t, axis=-1) < 0).any():
            raise ValueError("context tables must run from 0 to Q_ADAPT without decreasing")
    if bin_a.shape != (ACT_MAX + 1,) or bin_b.shape != (ACT_MAX + 1,) or int(bin_a.max()) >= NB_A \
            or int(bin_b.max()) >= NB_B:
        raise ValueError("bin look-up tables must be (4096,) with values below NB_A / NB_B")
    if rate_lut.ndim != 1 or rate_lut.shape[0] < 1 or int(rate_lut.min()) < 1 or int(rate_lut.max()) > 15:
        raise ValueError("rate_lut must hold shifts in 1..15")


def _arrays(kinds, init_a, init_b, bin_a, bin_b, rate_lut, n_planes):
    kinds = np.ascontiguousarray(kinds, dtype=np.int32)
    init_a = np.ascontiguousarray(init_a, dtype=np.int32)
    init_b = np.ascontiguousarray(init_b, dtype=np.int32)
    bin_a = np.ascontiguousarray(bin_a, dtype=np.int32)
    bin_b = np.ascontiguousarray(bin_b, dtype=np.int32)
    rate_lut = np.ascontiguousarray(rate_lut, dtype=np.int32)
    check_model_arrays(kinds, init_a, init_b, bin_a, bin_b, rate_lut, n_planes)
    return kinds, init_a, init_b, bin_a, bin_b, rate_lut


LANES_PER_BATCH = 16  # lanes encoded per parallel call: bounds the encoder's scratch memory


def encode_context_lanes(residuals: np.ndarray, kinds, init_a, init_b, bin_a, bin_b, rate_lut,
                         lane_rows: int):
    """Encode residual planes with the adaptive context model.

    Args:
        residuals: uint8 (P, H, W), the predictor's residual symbols, planes in coding order.
        kinds: int (P,): plane p looks at planes p-kinds[p] .. p-1 (0, 1 or 2 of them).
        init_a, init_b: int32 (3, NC_A, 25) / (3, NC_B, 25): trained starting cumulatives per kind.
        bin_a, bin_b: int32 (4096,): activity -> bin.
        rate_lut: int32 (L,): adaptation shift after n uses of a context (n clamped to L-1).
        lane_rows: image rows per lane (>= 1).

    Returns:
        (counts, words): uint32 (n_lanes,) words per lane; uint16 (sum(counts),) the lanes in order, each in
        decode order.
    """
    residuals = np.ascontiguousarray(residuals, dtype=np.uint8)
    n_planes, h, w = residuals.shape
    if residuals.size == 0 or lane_rows < 1:
        raise ValueError("need a non-empty (P, H, W) residual array and lane_rows >= 1")
    arrays = _arrays(kinds, init_a, init_b, bin_a, bin_b, rate_lut, n_planes)
    n_lanes = lane_geometry(h, lane_rows)
    stride = max_lane_words(residuals.shape, lane_rows)
    counts = np.empty(n_lanes, dtype=np.uint32)
    words = np.empty(n_lanes * 2 + MAX_WORDS_PER_SYMBOL * residuals.size, dtype=np.uint16)
    pos = 0
    for first in range(0, n_lanes, LANES_PER_BATCH):
        g = min(LANES_PER_BATCH, n_lanes - first)
        scratch = np.empty(g * stride, dtype=np.uint16)
        _encode_lanes_nb(residuals, *arrays, lane_rows, first, scratch, stride, counts[first:first + g])
        pos = _append_lanes(scratch, stride, counts[first:first + g], words, pos)
    return counts, words[:pos].copy()


@njit(cache=True, nogil=True, inline="always")
def _pop(x, f, offset, words, pos, end):
    """One rANS decode step for a symbol of frequency f whose slot lies ``offset`` above its start, and
    the renormalisation -> (x, pos, 1 if the lane ran out of words else 0)."""
    x = np.uint64(f) * (x >> np.uint64(16)) + np.uint64(offset)
    if x < np.uint64(RANS_L):
        if pos >= end:
            return x, pos, 1
        x = (x << np.uint64(16)) | np.uint64(words[pos])
        pos += 1
    return x, pos, 0


@njit(cache=True, nogil=True, inline="always")
def _push(x, f, start, scratch, top, m):
    """One rANS encode step (renormalise, then code [start, start + f)) -> (x, words emitted so far)."""
    if x >= (f << np.uint64(16)):
        scratch[top - m] = np.uint16(x & np.uint64(0xFFFF))
        m += 1
        x >>= np.uint64(16)
    return ((x // f) << np.uint64(16)) + (x % f) + start, m


@njit(cache=True, parallel=True, nogil=True)
def _decode_lanes_nb(counts, offsets, words, kinds, init_a, init_b, bin_a, bin_b, rate_lut, lane_rows, out,
                     status):
    n_planes, h, w = out.shape
    for lane in prange(counts.shape[0]):
        y0 = lane * lane_rows
        y1 = min(h, y0 + lane_rows)
        pos = offsets[lane]
        end = pos + counts[lane]
        x = (np.uint64(words[pos]) << np.uint64(16)) | np.uint64(words[pos + 1])
        pos += 2
        ta, tb, na, nb = _fresh_state(init_a, init_b)
        bad = 0
        for y in range(y0, y1):
            for p in range(n_planes):
                kind = kinds[p]
                for xx in range(w):
                    ca, cb = _contexts(out, p, kind, y, xx, y0, w, bin_a, bin_b)
                    slot = np.int64(x & np.uint64(0xFFFF))
                    t = 0
                    while t < N_TOKENS - 1 and ((ta[kind, ca, t + 1] + tb[kind, cb, t + 1] + 2 * t + 2) >> 1) <= slot:
                        t += 1
                    lo = (ta[kind, ca, t] + tb[kind, cb, t] + 2 * t) >> 1
                    hi = (ta[kind, ca, t + 1] + tb[kind, cb, t + 1] + 2 * t + 2) >> 1
                    x, pos, bad = _pop(x, hi - lo, slot - lo, words, pos, end)
                    if bad:
                        break
                    n_extra = _extra_bits(t)
                    extra = 0
                    if n_extra > 0:
                        slot = np.int64(x & np.uint64(0xFFFF))
                        extra = slot >> (16 - n_extra)
                        x, pos, bad = _pop(x, 1 << (16 - n_extra), slot - (extra << (16 - n_extra)), words, pos, end)
                        if bad:
                            break
                    u = _untoken(t, extra)
                    r = (u >> 1) if (u & 1) == 0 else -((u + 1) >> 1)
                    out[p, y, xx] = np.uint8(r + 128)
                    _adapt(ta, kind, ca, t, _rate(na, kind, ca, rate_lut))
                    _adapt(tb, kind, cb, t, _rate(nb, kind, cb, rate_lut))
                if bad:
                    break
            if bad:
                break
        if bad == 0 and (pos != end or x != np.uint64(RANS_L)):
            bad = 1
        status[lane] = bad


def check_context_lanes(counts: np.ndarray, n_words: int, shape: tuple, lane_rows: int) -> None:
    """Validate a lane length table against the stream and image it describes, before decoding."""
    n_planes, h, w = shape
    if lane_rows < 1 or counts.shape[0] != lane_geometry(h, lane_rows):
        raise DecodeError("lane table does not match the image size")
    if counts.shape[0]:
        check_counts(int(counts.min()), int(counts.max()), int(counts.sum(dtype=np.int64)), n_words,
                     max_lane_words(shape, lane_rows))


def max_lane_words(shape: tuple, lane_rows: int) -> int:
    """The most words an encoder writes for one lane of a (P, H, W) image."""
    n_planes, h, w = shape
    return MAX_WORDS_PER_SYMBOL * min(lane_rows, h) * n_planes * w + 2


def decode_context_lanes(counts: np.ndarray, words: np.ndarray, shape: tuple, kinds, init_a, init_b, bin_a,
                         bin_b, rate_lut, lane_rows: int) -> np.ndarray:
    """Decode what :func:`encode_context_lanes` wrote.

    Args:
        counts: uint32 (n_lanes,), words: uint16 (W,): the lane table and data.
        shape: (P, H, W) of the residual planes.
        kinds, init_a, init_b, bin_a, bin_b, rate_lut, lane_rows: as the encoder had them.

    Returns:
        uint8 (P, H, W): the residual symbols.

    Raises:
        DecodeError: a lane ran out of words, left words unread or did not end in the initial state.
    """
    counts = np.ascontiguousarray(counts, dtype=np.uint32)
    words = np.ascontiguousarray(words, dtype=np.uint16)
    n_planes, h, w = (int(v) for v in shape)
    arrays = _arrays(kinds, init_a, init_b, bin_a, bin_b, rate_lut, n_planes)
    check_context_lanes(counts, words.shape[0], (n_planes, h, w), lane_rows)
    offsets = np.zeros(counts.shape[0], dtype=np.int64)
    np.cumsum(counts[:-1], out=offsets[1:])
    out = np.empty((n_planes, h, w), dtype=np.uint8)
    status = np.zeros(counts.shape[0], dtype=np.uint8)
    _decode_lanes_nb(counts, offsets, words, *arrays, lane_rows, out, status)
    if status.any():
        raise DecodeError(f"corrupted entropy-coded data in lane {int(np.argmax(status))}")
    return out


@njit(cache=True, nogil=True)
def _count_nb(res, kinds, bin_a, bin_b, lane_rows, hist_a, hist_b):
    n_planes, h, w = res.shape
    for y in range(h):
        y0 = (y // lane_rows) * lane_rows
        for p in range(n_planes):
            kind = kinds[p]
            for x in range(w):
                ca, cb = _contexts(res, p, kind, y, x, y0, w, bin_a, bin_b)
                r = np.int32(res[p, y, x]) - 128
                t, _, _ = _token(2 * r if r >= 0 else -2 * r - 1)
                hist_a[kind, ca, t] += 1
                hist_b[kind, cb, t] += 1


def count_contexts(residuals: np.ndarray, kinds, bin_a, bin_b, lane_rows: int, hist_a: np.ndarray,
                   hist_b: np.ndarray) -> None:
    """Training: add each symbol's token to int64 ``hist_a`` (3, NC_A, 24) / ``hist_b`` (3, NC_B, 24) at
    its contexts (the statistics the starting tables are fitted to)."""
    _count_nb(np.ascontiguousarray(residuals, dtype=np.uint8), np.ascontiguousarray(kinds, dtype=np.int32),
              np.ascontiguousarray(bin_a, dtype=np.int32), np.ascontiguousarray(bin_b, dtype=np.int32),
              lane_rows, hist_a, hist_b)


def token_of_residual(residuals: np.ndarray) -> np.ndarray:
    """Vectorised token of each uint8 residual symbol (for tests and statistics)."""
    r = residuals.astype(np.int32) - 128
    u = np.where(r >= 0, 2 * r, -2 * r - 1)
    n = np.floor(np.log2(np.maximum(u, 1))).astype(np.int32)
    return np.where(u < 16, u, 16 + 2 * (n - 4) + ((u >> np.maximum(n - 1, 0)) & 1))


def encode_context_lanes_batch(residuals_list, kinds_list, init_a, init_b, bin_a, bin_b, rate_lut,
                               lane_rows_list) -> list:
    """:func:`encode_context_lanes` of several images -> one (counts, words) per image (the twin of the
    kernels' multi-image launches)."""
    return [encode_context_lanes(r, k, init_a, init_b, bin_a, bin_b, rate_lut, lr)
            for r, k, lr in zip(residuals_list, kinds_list, lane_rows_list, strict=True)]


def decode_context_lanes_batch(counts_list, words_list, shapes, kinds_list, init_a, init_b, bin_a, bin_b, rate_lut,
                               lane_rows_list) -> list:
    """:func:`decode_context_lanes` of several images -> one uint8 (P, H, W) per image."""
    out = []
    for i, (c, w, shape, k, lr) in enumerate(zip(counts_list, words_list, shapes, kinds_list, lane_rows_list,
                                                  strict=True)):
        try:
            out.append(decode_context_lanes(c, w, shape, k, init_a, init_b, bin_a, bin_b, rate_lut, lr))
        except DecodeError as e:
            raise DecodeError((f"image {i}: " if len(shapes) > 1 else "") + str(e)) from None
    return out
