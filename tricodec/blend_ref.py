"""The self-correcting (blended) predictor with per-image colour references: the CPU reference twin (and
specification) of ``kernels/blend_residual.py`` / ``kernels/blend_scan.py``.

Samples have ``D = bits`` bits (1..16; arrays uint8 at ``D = 8``, uint16 at any ``D``; the output has the
input's dtype).  ``half = 2**(D-1)``, ``maxv = 2**D - 1``, ``esh = max(D - 8, 0)``, ``OFF = 2**(D+4)``.

Each coded plane ``k`` has five parameters, ``params[k] = (mode, q1, c1, q2, c2)``, chosen by the encoder
and recorded in the file.  The plane is predicted in the domain of its difference to a *reference*, a
quarter-weighted mix of up to two earlier planes (``q < k``, ``-1``: none; ``c`` in 0..4, ``c1 + c2 <= 4``)::

    ref(y, x) = (c1 * x[q1, y, x] + c2 * x[q2, y, x]) >> 2          # 0 for a plane without references
    v(y, x) = x[k, y, x] - ref(y, x)                                 # in [-maxv, maxv] (c1 + c2 <= 4)

Neighbours of ``v`` with their fallbacks at the image's edges (every one lies on an earlier anti-diagonal
``x + 2y``, so a GPU can decode a diagonal at once)::

    W  = v[y, x-1] if x > 0 else v[y-1, x] if y > 0 else 0
    N  = v[y-1, x] if y > 0 else W
    NW = v[y-1, x-1] if y > 0 and x > 0 else N
    NE = v[y-1, x+1] if y > 0 and x < w-1 else N
    NNE = v[y-2, x+1] if y > 1 and x < w-1 else NE

Mode 0 is MED (``med(W, N, NW)``, the predictor of ``predictor_ref``).  Mode 1 blends six sub-predictors
(in quarter units) by their recent accuracy around the pixel::

    s = [4 med(W, N, NW), 4 W, 4 N, 4 (W + NE - N), 4 (N + NE - NNE), 2 (W + N) + NE - NW]
    e_i(y, x) = min(|4 v(y, x) - s_i(y, x)| >> esh, E_MAX)                 # every pixel, every i
    S_i = 2 (e_i(W) + e_i(N) + e_i(NW) + e_i(NE)) + e_i(WW) + e_i(NN)      # those inside the image
    w_i = 2**30 // (8 + S_i)**2                                            # WEIGHT_LUT[S_i]
    pv4 = (sum(w_i * (s_i + OFF)) + sum(w) // 2) // sum(w) - OFF           # s_0 if every w_i is 0
    pv = floor(pv4 / 4 + 1/2) = ((pv4 + 2 + OFF) >> 2) - (OFF >> 2)

and, in both modes, ``pv = 0 if the plane has references else half`` at (0, 0)::

    pred = clamp(pv + ref(y, x), 0, maxv)
    s = (x[k, y, x] - pred + half) & maxv             # the residual symbol the coder codes
    x[k, y, x] = (s - half + pred) & maxv             # its inverse, in the decode scan

At ``D = 8`` (the default) that is the 8-bit predictor byte for byte: ``esh = 0``, ``OFF = 4096``,
``half = 128``, ``maxv = 255``, and the cap ``E_MAX = 4080`` is the largest 8-bit error (below).  Why the
errors are scaled to the 8-bit range at ``D > 8``: the weights depend on S only through WEIGHT_LUT, which
then stays the one table (and its meaning: an error sum in 8-bit units) at every depth; the cap bounds
``|4v - s_i| >> esh <= 16 maxv >> esh <= 4095`` to the table's range (a no-op at ``D <= 8``, where
``|4v - s_i| <= 4 maxv + 12 maxv <= 4080``).  ``OFF > 12 maxv >= |s_i|`` keeps every ``s_i + OFF``
positive, so the division's operands are non-negative at every depth.

Every quantity is an integer, so every backend computes the same samples.  Ranges at ``D = 16`` (the
widest): ``|v| <= 65535``, ``|4 v - s_i| <= 16 maxv < 2**20`` (int32), ``e_i <= 4080`` (int16), ``S_i
<= 40800``, ``w_i <= 2**24``, ``sum(w) < 2**27``, ``0 < s_i + OFF < 2**21``, ``sum(w_i (s_i + OFF)) <
2**48`` (int64; 2**38 at ``D = 8``).  The errors a pixel reads lie at most two rows up: the decode scan
keeps four rows of them per plane.
"""
from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange

from .predictor_ref import check_bits

N_SUB = 6            # sub-predictors of the blend
MODE_MED = 0
MODE_BLEND = 1
N_MODES = 2
ERR_ROWS = 4         # rows of sub-predictor errors the scan keeps (a pixel reads two rows up)
CHUNK_ROWS = 32      # the encoder computes residuals in bands of this many rows (in parallel)
# The largest 8-bit error |4 v - s_i| (|4 v| <= 4 * 255, |s_i| <= 12 * 255: s_3, s_4 are 4 (a + b - c)),
# and the cap on e_i at every depth (module docstring): the errors stay in the 8-bit range.
E_MAX = 16 * 255
MAX_ERR_SUM = 10 * E_MAX  # S_i <= 10 * max e_i (weights 2 + 2 + 2 + 2 + 1 + 1)
# w(S) = 2**30 // (8 + S)**2 for every possible S: a look-up instead of six divisions a pixel
WEIGHT_LUT = ((1 << 30) // (8 + np.arange(MAX_ERR_SUM + 1, dtype=np.int64)) ** 2).astype(np.int32)


def check_params(params, n_planes: int) -> np.ndarray:
    """``params`` as int32 (P, 5), or ValueError if a plane names a later plane, a weight outside 0..4,
    weights summing above 4 or an unknown mode.  (The sum rule keeps ref in [0, maxv], hence v in [-maxv,
    maxv]: the ranges the module docstring proves, e.g. ``s_i + OFF > 0``.  The encoder's mixes all sum
    to 4 or less; a larger sum never came from it and read past the weight table before the cap.)"""
    p = np.ascontiguousarray(params, dtype=np.int32)
    if p.shape != (n_planes, 5):
        raise ValueError("predictor params must be (P, 5): mode, q1, c1, q2, c2 per plane")
    for k, (mode, q1, c1, q2, c2) in enumerate(p.tolist()):
        if not 0 <= mode < N_MODES:
            raise ValueError(f"plane {k}: unknown predictor mode {mode}")
        for q, c in ((q1, c1), (q2, c2)):
            if not (-1 <= q < k) or not 0 <= c <= 4 or (q < 0 and c != 0):
                raise ValueError(f"plane {k}: a reference must be an earlier plane with weight 0..4")
        if c1 + c2 > 4:
            raise ValueError(f"plane {k}: reference weights sum to {c1 + c2} > 4")
    return p


@njit(cache=True, nogil=True, inline="always")
def _med(a, b, c):
    hi = max(a, b)
    lo = min(a, b)
    if c >= hi:
        return lo
    if c <= lo:
        return hi
    return a + b - c


@njit(cache=True, nogil=True)
def _upper_error_sums(err, r1, r2, y, up):
    """``up[i, x]``: the upper-row part of sub-predictor i's error sum at (y, x), 2 (e(NW) + e(N) + e(NE))
    + e(NN), from the error ring rows ``r1`` (y-1) and ``r2`` (y-2); neighbours outside the image count 0.
    Summed once a row (blend_ref's scan and the fused model's encoder)."""
    w = up.shape[1]
    for i in range(up.shape[0]):
        for x in range(w):
            u = np.int32(0)
            if y > 0:
                u = 2 * np.int32(err[i, r1, x])
                if x > 0:
                    u += 2 * np.int32(err[i, r1, x - 1])
                if x < w - 1:
                    u += 2 * np.int32(err[i, r1, x + 1])
                if y > 1:
                    u += np.int32(err[i, r2, x])
            up[i, x] = u


@njit(cache=True, nogil=True)
def _code_row(src, dst, k, y, params, vr, err, up, s, decode, store, dp):
    """Row ``y`` of plane ``k``: decode (``src`` residuals -> ``dst`` pixels) or encode (``src`` pixels ->
    ``dst`` residuals, written only if ``store``), keeping v and the blend's errors in the four-row rings
    ``vr[row % 4, x]`` / ``err[i, row % 4, x]`` (rows y-1, y-2 must be there).  ``up``: scratch (N_SUB, W)
    for the errors' upper-row part, 2 (e(NW) + e(N) + e(NE)) + e(NN), summed once a row.  ``dp``: the
    depth's constants (:func:`_depth`), runtime values: one compiled variant per dtype, not per depth."""
    px = dst if decode else src
    w = px.shape[2]
    mode, q1, c1, q2, c2 = params[k, 0], params[k, 1], params[k, 2], params[k, 3], params[k, 4]
    r0 = y & (ERR_ROWS - 1)
    r1 = (y - 1) & (ERR_ROWS - 1)
    r2 = (y - 2) & (ERR_ROWS - 1)
    half, maxv, esh, off = dp[0], dp[1], dp[2], dp[3]
    off4 = off >> 2
    blend = mode != MODE_MED
    if blend:
        _upper_error_sums(err, r1, r2, y, up)
    # the same row's errors at x-1 and x-2 of each sub-predictor, carried in registers
    a0 = a1 = a2 = a3 = a4 = a5 = np.int32(0)
    b0 = b1 = b2 = b3 = b4 = b5 = np.int32(0)
    s0 = s1 = s2 = s3 = s4 = s5 = np.int32(0)
    for x in range(w):
        ref = np.int32(0)
        if q1 >= 0:
            ref += c1 * np.int32(px[q1, y, x])
        if q2 >= 0:
            ref += c2 * np.int32(px[q2, y, x])
        ref >>= 2
        if x > 0:
            vw = vr[r0, x - 1]
        elif y > 0:
            vw = vr[r1, x]
        else:
            vw = np.int32(0)
        vn = vr[r1, x] if y > 0 else vw
        vnw = vr[r1, x - 1] if (y > 0 and x > 0) else vn
        if not blend:
            pv = _med(vw, vn, vnw)
        else:
            vne = vr[r1, x + 1] if (y > 0 and x < w - 1) else vn
            vnne = vr[r2, x + 1] if (y > 1 and x < w - 1) else vne
            s0 = 4 * _med(vw, vn, vnw)
            s1 = 4 * vw
            s2 = 4 * vn
            s3 = 4 * (vw + vne - vn)
            s4 = 4 * (vn + vne - vnne)
            s5 = 2 * (vw + vn) + vne - vnw
            w0 = np.int64(WEIGHT_LUT[up[0, x] + 2 * a0 + b0])
            w1 = np.int64(WEIGHT_LUT[up[1, x] + 2 * a1 + b1])
            w2 = np.int64(WEIGHT_LUT[up[2, x] + 2 * a2 + b2])
            w3 = np.int64(WEIGHT_LUT[up[3, x] + 2 * a3 + b3])
            w4 = np.int64(WEIGHT_LUT[up[4, x] + 2 * a4 + b4])
            w5 = np.int64(WEIGHT_LUT[up[5, x] + 2 * a5 + b5])
            tw = w0 + w1 + w2 + w3 + w4 + w5
            ts = (w0 * (s0 + off) + w1 * (s1 + off) + w2 * (s2 + off) + w3 * (s3 + off) + w4 * (s4 + off)
                  + w5 * (s5 + off))
            # n // tw (n = ts + tw // 2 >= 0) through a float64 division, exact at every depth: n < 2^49
            # (D = 16: ts < 2^27 * 2^21 = 2^48) and tw < 2^27 are exact in float64; the correctly
            # rounded quotient q = n / tw is off by at most q * 2^-53 = n / (tw * 2^53) < 1 / tw (as
            # n < 2^53), while a non-integer q is at least 1 / tw from the next integer (its fraction is
            # a multiple of 1 / tw), and an integer q is exact: the truncation is floor(n / tw), the
            # integer division of the kernels, at a third of its cost (tests/test_blend_ref.py checks it).
            pv4 = s0 if tw == 0 else np.int32(np.float64(ts + (tw >> 1)) / np.float64(tw)) - off
            pv = ((pv4 + 2 + off) >> 2) - off4
        if y == 0 and x == 0:
            pv = half if (q1 < 0 and q2 < 0) else np.int32(0)
        pred = min(max(pv + ref, 0), maxv)
        if decode:
            xv = (np.int32(src[k, y, x]) - half + pred) & maxv
            dst[k, y, x] = xv                       # < 2**D: fits dst's dtype (uint8 at D = 8, else uint16)
        else:
            xv = np.int32(src[k, y, x])
            if store:
                dst[k, y, x] = (xv - pred + half) & maxv
        v = xv - ref
        vr[r0, x] = v
        if blend:
            v4 = 4 * v
            b0, b1, b2, b3, b4, b5 = a0, a1, a2, a3, a4, a5
            # scaled to the 8-bit range and capped (module docstring): <= E_MAX, an int16 in err
            a0 = min(abs(v4 - s0) >> esh, E_MAX)
            a1 = min(abs(v4 - s1) >> esh, E_MAX)
            a2 = min(abs(v4 - s2) >> esh, E_MAX)
            a3 = min(abs(v4 - s3) >> esh, E_MAX)
            a4 = min(abs(v4 - s4) >> esh, E_MAX)
            a5 = min(abs(v4 - s5) >> esh, E_MAX)
            err[0, r0, x] = a0
            err[1, r0, x] = a1
            err[2, r0, x] = a2
            err[3, r0, x] = a3
            err[4, r0, x] = a4
            err[5, r0, x] = a5


def _residuals_py(planes, params, out, plane_list, dp):
    _, h, w = planes.shape
    n_chunks = (h + CHUNK_ROWS - 1) // CHUNK_ROWS
    for job in prange(plane_list.shape[0] * n_chunks):
        k = plane_list[job // n_chunks]
        y0 = (job % n_chunks) * CHUNK_ROWS
        err = np.zeros((N_SUB, ERR_ROWS, w), np.int16)
        vr = np.zeros((ERR_ROWS, w), np.int32)
        up = np.zeros((N_SUB, w), np.int32)
        s = np.zeros(N_SUB, np.int32)
        # rows y0-4, y0-3 fill the v ring; y0-2, y0-1 also the errors
        for y in range(max(0, y0 - 4), min(h, y0 + CHUNK_ROWS)):
            _code_row(planes, out, k, y, params, vr, err, up, s, False, y >= y0, dp)


_residuals_nb = njit(cache=True, nogil=True, parallel=True)(_residuals_py)
# the encoder's choice codes many small samples: one thread each (no parallel region to start and join)
_residuals_serial = njit(cache=True, nogil=True)(_residuals_py)


def _as_planes(a) -> np.ndarray:
    """Contiguous uint16 if ``a`` is uint16, else uint8 (what any other array always became here)."""
    a = np.asarray(a)
    return np.ascontiguousarray(a, dtype=np.uint16 if a.dtype == np.uint16 else np.uint8)


def _depth(bits: int) -> np.ndarray:
    """int32 (half, maxv, esh, OFF) of depth ``bits`` (module docstring)."""
    return np.array([1 << (bits - 1), (1 << bits) - 1, max(bits - 8, 0), 1 << (bits + 4)], np.int32)


def compute_blend_residuals(planes: np.ndarray, params, only_plane: int = -1, bits: int = 8) -> np.ndarray:
    """Residual symbols of every pixel (all neighbours are known: bands of rows in parallel, each starting
    four rows early to fill its rings).

    Args:
        planes: uint8 (``bits == 8``) or uint16 (any ``bits``), (P, H, W), in coding order; every sample
            below ``2**bits``.
        params: int (P, 5): (mode, q1, c1, q2, c2) per plane (module docstring).
        only_plane: >= 0: compute that plane's residuals only (the others are left undefined).
        bits: sample depth, 1..16 (``predictor_ref.check_bits``: uint8 only at 8).

    Returns:
        planes' dtype, (P, H, W): residuals in [0, 2**bits).

    Raises:
        ValueError: bad params, dtype/bits combination, or a sample >= ``2**bits`` (it would not round-trip).
    """
    planes = _as_planes(planes)
    bits = check_bits(bits, planes.dtype)
    params = check_params(params, planes.shape[0])
    # a full-width dtype holds no out-of-range sample: the max pass is only paid below it
    if planes.size and bits < 8 * planes.itemsize and int(planes.max()) >> bits:
        raise ValueError(f"planes hold a sample >= 2**{bits}")
    out = np.empty_like(planes)
    plane_list = np.arange(planes.shape[0], dtype=np.int64) if only_plane < 0 else np.array([only_plane])
    if planes.size:
        (_residuals_nb if only_plane < 0 else _residuals_serial)(planes, params, out, plane_list, _depth(bits))
    return out


BAND_ROWS = 16       # the CPU decode scan's unit: a plane decodes band b once its references have


@njit(cache=True, nogil=True)
def _decode_band(res, params, out, k, b, vr, err, up, s, dp):
    h = res.shape[1]
    for y in range(b * BAND_ROWS, min(h, (b + 1) * BAND_ROWS)):
        _code_row(res, out, k, y, params, vr, err, up, s, True, True, dp)


def _levels(params) -> np.ndarray:
    """Each plane's level: 0 without references, else one more than its references' highest."""
    lv = np.zeros(params.shape[0], np.int64)
    for k in range(params.shape[0]):
        lv[k] = max([0] + [int(lv[q]) + 1 for q in (int(params[k, 1]), int(params[k, 3])) if q >= 0])
    return lv


def reconstruct_blend(residuals: np.ndarray, params, bits: int = 8) -> np.ndarray:
    """Inverse of :func:`compute_blend_residuals`: the decode scan.  On the CPU each plane is a thread
    that decodes its rows in bands of BAND_ROWS, a band as soon as its references have decoded it (the
    numba code releases the GIL), so colour planes run a band behind the planes they refer to.

    Args:
        residuals: uint8 (``bits == 8``) or uint16 (any ``bits``), (P, H, W), in coding order (bits above
            ``bits`` are ignored: ``& maxv`` drops them).
        params: the params the encoder used.
        bits: the sample depth the encoder used, 1..16.

    Returns:
        residuals' dtype, (P, H, W): the planes.
    """
    residuals = _as_planes(residuals)
    dp = _depth(check_bits(bits, residuals.dtype))
    params = check_params(params, residuals.shape[0])
    out = np.empty_like(residuals)
    n, h, w = residuals.shape
    if residuals.size == 0:
        return out
    n_bands = -(-h // BAND_ROWS)
    refs = [[int(q) for q in (params[k, 1], params[k, 3]) if q >= 0] for k in range(n)]
    done = [0] * n                      # bands decoded per plane
    cond = threading.Condition()
    failure: list = []

    def plane(k: int) -> None:
        vr = np.zeros((ERR_ROWS, w), np.int32)
        err = np.zeros((N_SUB, ERR_ROWS, w), np.int16)
        up = np.zeros((N_SUB, w), np.int32)
        s = np.zeros(N_SUB, np.int32)
        try:
            for b in range(n_bands):
                with cond:
                    while not failure and any(done[q] <= b for q in refs[k]):
                        cond.wait()
                    if failure:
                        return
                _decode_band(residuals, params, out, k, b, vr, err, up, s, dp)
                with cond:
                    done[k] = b + 1
                    cond.notify_all()
        except BaseException as e:      # never leave the other planes waiting
            with cond:
                failure.append(e)
                cond.notify_all()

    if n == 1 or h <= BAND_ROWS:
        for k in range(n):
            plane(k)
    else:
        threads = [threading.Thread(target=plane, args=(k,), daemon=True) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if failure:
        raise failure[0]
    return out
