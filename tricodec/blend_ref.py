"""The self-correcting (blended) predictor with per-image colour references: the CPU reference twin (and
specification) of ``kernels/blend_residual.py`` / ``kernels/blend_scan.py``.

Each coded plane ``k`` has five parameters, ``params[k] = (mode, q1, c1, q2, c2)``, chosen by the encoder
and recorded in the file.  The plane is predicted in the domain of its difference to a *reference*, a
quarter-weighted mix of up to two earlier planes (``q < k``, ``-1``: none; ``c`` in 0..4)::

    ref(y, x) = (c1 * x[q1, y, x] + c2 * x[q2, y, x]) >> 2          # 0 for a plane without references
    v(y, x) = x[k, y, x] - ref(y, x)                                 # in [-255, 255]

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
    e_i(y, x) = |4 v(y, x) - s_i(y, x)|                                    # every pixel, every i
    S_i = 2 (e_i(W) + e_i(N) + e_i(NW) + e_i(NE)) + e_i(WW) + e_i(NN)      # those inside the image
    w_i = 2**30 // (8 + S_i)**2
    pv4 = (sum(w_i * (s_i + 4096)) + sum(w) // 2) // sum(w) - 4096      # s_0 if every w_i is 0
    pv = floor(pv4 / 4 + 1/2) = ((pv4 + 4098) >> 2) - 1024

and, in both modes, ``pv = 0 if the plane has references else 128`` at (0, 0)::

    pred = clamp(pv + ref(y, x), 0, 255)
    s = (x[k, y, x] - pred + 128) & 255               # the residual symbol the context model codes
    x[k, y, x] = (s - 128 + pred) & 255               # its inverse, in the decode scan

Every quantity is an integer (the blend's sums in int64), so every backend computes the same bytes.
The errors a pixel reads lie at most two rows up: the decode scan keeps four rows of them per plane.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

N_SUB = 6            # sub-predictors of the blend
MODE_MED = 0
MODE_BLEND = 1
N_MODES = 2
ERR_ROWS = 4         # rows of sub-predictor errors the scan keeps (a pixel reads two rows up)
CHUNK_ROWS = 32      # the encoder computes residuals in bands of this many rows (in parallel)
MAX_ERR_SUM = 10 * 4080   # S_i <= 10 * max e_i (|4 v| <= 1020, |s_i| <= 3060)
# w(S) = 2**30 // (8 + S)**2 for every possible S: a look-up instead of six divisions a pixel
WEIGHT_LUT = ((1 << 30) // (8 + np.arange(MAX_ERR_SUM + 1, dtype=np.int64)) ** 2).astype(np.int32)


def check_params(params, n_planes: int) -> np.ndarray:
    """``params`` as int32 (P, 5), or ValueError if a plane names a later plane, a weight outside 0..4 or an
    unknown mode."""
    p = np.ascontiguousarray(params, dtype=np.int32)
    if p.shape != (n_planes, 5):
        raise ValueError("predictor params must be (P, 5): mode, q1, c1, q2, c2 per plane")
    for k, (mode, q1, c1, q2, c2) in enumerate(p.tolist()):
        if not 0 <= mode < N_MODES:
            raise ValueError(f"plane {k}: unknown predictor mode {mode}")
        for q, c in ((q1, c1), (q2, c2)):
            if not (-1 <= q < k) or not 0 <= c <= 4 or (q < 0 and c != 0):
                raise ValueError(f"plane {k}: a reference must be an earlier plane with weight 0..4")
    return p


def _ref_planes(px, params, k) -> np.ndarray:
    """ref(y, x) of plane k for the whole image, int32 (H, W) (vectorised)."""
    _, q1, c1, q2, c2 = (int(v) for v in params[k])
    r = np.zeros(px.shape[1:], np.int32)
    if q1 >= 0:
        r += c1 * px[q1].astype(np.int32)
    if q2 >= 0:
        r += c2 * px[q2].astype(np.int32)
    return r >> 2


@njit(cache=True, nogil=True, inline="always")
def _ref_at(px, q1, c1, q2, c2, y, x):
    r = np.int32(0)
    if q1 >= 0:
        r += c1 * np.int32(px[q1, y, x])
    if q2 >= 0:
        r += c2 * np.int32(px[q2, y, x])
    return r >> 2


@njit(cache=True, nogil=True, inline="always")
def _med(a, b, c):
    hi = max(a, b)
    lo = min(a, b)
    if c >= hi:
        return lo
    if c <= lo:
        return hi
    return a + b - c


@njit(cache=True, nogil=True, inline="always")
def _predict(vr, err, y, x, w, mode, s):
    """pv of pixel (y, x) from the rings of v (``vr[row % ERR_ROWS, x]``) and of the sub-predictors'
    errors (``err[i, row % ERR_ROWS, x]``), which hold rows y-2 .. y up to x-1; fills ``s`` (mode 1)."""
    r0 = y & (ERR_ROWS - 1)
    r1 = (y - 1) & (ERR_ROWS - 1)
    r2 = (y - 2) & (ERR_ROWS - 1)
    if x > 0:
        vw = vr[r0, x - 1]
    elif y > 0:
        vw = vr[r1, x]
    else:
        vw = np.int32(0)
    vn = vr[r1, x] if y > 0 else vw
    vnw = vr[r1, x - 1] if (y > 0 and x > 0) else vn
    if mode == MODE_MED:
        return _med(vw, vn, vnw)
    vne = vr[r1, x + 1] if (y > 0 and x < w - 1) else vn
    vnne = vr[r2, x + 1] if (y > 1 and x < w - 1) else vne
    s[0] = 4 * _med(vw, vn, vnw)
    s[1] = 4 * vw
    s[2] = 4 * vn
    s[3] = 4 * (vw + vne - vn)
    s[4] = 4 * (vn + vne - vnne)
    s[5] = 2 * (vw + vn) + vne - vnw
    tw = np.int64(0)
    ts = np.int64(0)
    for i in range(N_SUB):
        e = np.int32(0)
        if x > 0:
            e += 2 * np.int32(err[i, r0, x - 1])
        if x > 1:
            e += np.int32(err[i, r0, x - 2])
        if y > 0:
            e += 2 * np.int32(err[i, r1, x])
            if x > 0:
                e += 2 * np.int32(err[i, r1, x - 1])
            if x < w - 1:
                e += 2 * np.int32(err[i, r1, x + 1])
        if y > 1:
            e += np.int32(err[i, r2, x])
        wt = np.int64(WEIGHT_LUT[e])
        tw += wt
        ts += wt * np.int64(s[i] + 4096)
    pv4 = np.int32(s[0]) if tw == 0 else np.int32((ts + tw // 2) // tw - 4096)
    return ((pv4 + 4098) >> 2) - 1024


@njit(cache=True, nogil=True, inline="always")
def _keep(vr, err, y, x, v, mode, s):
    """Record pixel (y, x)'s v and, in mode 1, its sub-predictors' errors in the rings."""
    r0 = y & (ERR_ROWS - 1)
    vr[r0, x] = v
    if mode != MODE_MED:
        for i in range(N_SUB):
            err[i, r0, x] = np.int16(abs(4 * v - s[i]))


@njit(cache=True, nogil=True, parallel=True)
def _residuals_nb(planes, v, params, out):
    n_planes, h, w = planes.shape
    n_chunks = (h + CHUNK_ROWS - 1) // CHUNK_ROWS
    for job in prange(n_planes * n_chunks):
        k = job // n_chunks
        y0 = (job % n_chunks) * CHUNK_ROWS
        y1 = min(h, y0 + CHUNK_ROWS)
        mode = params[k, 0]
        base = np.int32(128) if (params[k, 1] < 0 and params[k, 3] < 0) else np.int32(0)
        err = np.zeros((N_SUB, ERR_ROWS, w), np.int16)
        vr = np.zeros((ERR_ROWS, w), np.int32)
        s = np.zeros(N_SUB, np.int32)
        for y in range(max(0, y0 - 4), y1):   # rows y0-4, y0-3 fill v; y0-2, y0-1 also the errors
            for x in range(w):
                vv = np.int32(v[k, y, x])
                pv = _predict(vr, err, y, x, w, mode, s)
                if y >= y0:
                    if y == 0 and x == 0:
                        pv = base
                    pred = min(max(pv + (np.int32(planes[k, y, x]) - vv), 0), 255)
                    out[k, y, x] = np.uint8((np.int32(planes[k, y, x]) - pred + 128) & 255)
                _keep(vr, err, y, x, vv, mode, s)


def compute_blend_residuals(planes: np.ndarray, params) -> np.ndarray:
    """Residual symbols of every pixel (all neighbours are known: bands of rows in parallel, each starting
    four rows early to fill its rings).

    Args:
        planes: uint8 (P, H, W), in coding order.
        params: int (P, 5): (mode, q1, c1, q2, c2) per plane (module docstring).

    Returns:
        uint8 (P, H, W).
    """
    planes = np.ascontiguousarray(planes, dtype=np.uint8)
    params = check_params(params, planes.shape[0])
    out = np.empty_like(planes)
    if planes.size:
        v = np.stack([planes[k].astype(np.int16) - _ref_planes(planes, params, k).astype(np.int16)
                      for k in range(planes.shape[0])])
        _residuals_nb(planes, v, params, out)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _reconstruct_nb(res, params, out, level):
    _, h, w = res.shape
    for i in prange(level.shape[0]):
        k = level[i]
        mode, q1, c1, q2, c2 = params[k, 0], params[k, 1], params[k, 2], params[k, 3], params[k, 4]
        base = np.int32(128) if (q1 < 0 and q2 < 0) else np.int32(0)
        err = np.zeros((N_SUB, ERR_ROWS, w), np.int16)
        vr = np.zeros((ERR_ROWS, w), np.int32)
        s = np.zeros(N_SUB, np.int32)
        for y in range(h):
            for x in range(w):
                ref = _ref_at(out, q1, c1, q2, c2, y, x)
                pv = _predict(vr, err, y, x, w, mode, s)
                if y == 0 and x == 0:
                    pv = base
                pred = min(max(pv + ref, 0), 255)
                xv = (np.int32(res[k, y, x]) - 128 + pred) & 255
                out[k, y, x] = np.uint8(xv)
                _keep(vr, err, y, x, xv - ref, mode, s)


def _levels(params) -> list:
    """Planes grouped so that each group's references are decoded before it (the groups decode in order,
    the planes of a group in parallel)."""
    done: set = set()
    levels = []
    n = params.shape[0]
    while len(done) < n:
        level = [k for k in range(n) if k not in done
                 and all(q < 0 or q in done for q in (int(params[k, 1]), int(params[k, 3])))]
        levels.append(np.array(level, dtype=np.int64))
        done.update(level)
    return levels


def reconstruct_blend(residuals: np.ndarray, params) -> np.ndarray:
    """Inverse of :func:`compute_blend_residuals`: the decode scan.

    Args:
        residuals: uint8 (P, H, W), in coding order.
        params: the params the encoder used.

    Returns:
        uint8 (P, H, W): the planes.
    """
    residuals = np.ascontiguousarray(residuals, dtype=np.uint8)
    params = check_params(params, residuals.shape[0])
    out = np.empty_like(residuals)
    if residuals.size:
        for level in _levels(params):
            _reconstruct_nb(residuals, params, out, level)
    return out
