"""Causal predictor: the CPU reference twin of ``kernels/predictor_residual.py`` / ``kernels/predictor_scan.py``.

Planes are coded in a fixed order; plane ``k`` may name an earlier plane ``r = refs[k]`` as its
reference (``-1``: none).  The predictor works on ``v = x_k - x_r`` (``v = x_k`` without a reference),
so for RGB coded as G, R(ref G), B(ref G) it is MED on the colour planes G, R-G, B-G::

    a, b, c = v[y, x-1], v[y-1, x], v[y-1, x-1]              # left, up, up-left
    pv = base                              if y == 0 and x == 0   (base = 128 without reference, else 0)
       = a                                 if y == 0
       = b                                 if x == 0
       = min(a, b) if c >= max(a, b) else max(a, b) if c <= min(a, b) else a + b - c   (MED)
    pred = clamp(pv + x_r, 0, 255)
    s = (x_k - pred + 128) mod 256          # the residual symbol that gets entropy coded
    x_k = (s - 128 + pred) mod 256          # its inverse, used by the decode scan

Encode computes every residual at once (all pixels are known); decode is a scan, because each pixel's
prediction needs its decoded neighbours.  All integer, hence exact on every backend.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


def _check(planes: np.ndarray, refs) -> np.ndarray:
    refs = np.asarray(refs, dtype=np.int32)
    if planes.ndim != 3 or planes.dtype != np.uint8 or refs.shape != (planes.shape[0],):
        raise ValueError("planes must be uint8 (P, H, W) with one ref per plane")
    for k, r in enumerate(refs):
        if not (r == -1 or 0 <= r < k):
            raise ValueError("a plane can only reference an earlier plane")
    return refs


@njit(cache=True, nogil=True, inline="always")
def _predict(px, refs, k, y, x):
    """The prediction of pixel (k, y, x) from ``px``, whose causal neighbours (and plane refs[k]) hold
    original pixels: the encoder passes the image, the decode scan its output so far."""
    r = refs[k]
    rv = np.int32(px[r, y, x]) if r >= 0 else np.int32(0)
    if y == 0 and x == 0:
        pv = np.int32(0) if r >= 0 else np.int32(128)
    else:
        a = np.int32(0)
        b = np.int32(0)
        if x > 0:
            a = np.int32(px[k, y, x - 1]) - (np.int32(px[r, y, x - 1]) if r >= 0 else 0)
        if y > 0:
            b = np.int32(px[k, y - 1, x]) - (np.int32(px[r, y - 1, x]) if r >= 0 else 0)
        if y == 0:
            pv = a
        elif x == 0:
            pv = b
        else:
            c = np.int32(px[k, y - 1, x - 1]) - (np.int32(px[r, y - 1, x - 1]) if r >= 0 else 0)
            hi = max(a, b)
            lo = min(a, b)
            if c >= hi:
                pv = lo
            elif c <= lo:
                pv = hi
            else:
                pv = a + b - c
    return min(max(pv + rv, 0), 255)


@njit(cache=True, nogil=True, parallel=True)
def _residuals_nb(planes, refs, out):
    n_planes, h, w = planes.shape
    for job in prange(n_planes * h):
        k = job // h
        y = job % h
        for x in range(w):
            pred = _predict(planes, refs, k, y, x)
            out[k, y, x] = np.uint8((np.int32(planes[k, y, x]) - pred + 128) & 255)


def compute_residuals(planes: np.ndarray, refs) -> np.ndarray:
    """Residual symbols of every pixel, computed in parallel (rows are independent at encode time).

    Args:
        planes: uint8, shape (P, H, W), in coding order.
        refs: P ints, ``refs[k]`` in [-1, k).

    Returns:
        uint8, shape (P, H, W).
    """
    refs = _check(planes, refs)
    out = np.empty_like(planes)
    _residuals_nb(np.ascontiguousarray(planes), refs, out)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _reconstruct_nb(res, refs, out, y_start, planes):
    _, h, w = res.shape
    for i in prange(planes.shape[0]):
        k = planes[i]
        for y in range(y_start, h):
            for x in range(w):
                pred = _predict(out, refs, k, y, x)
                out[k, y, x] = np.uint8((np.int32(res[k, y, x]) - 128 + pred) & 255)


def reconstruct(residuals: np.ndarray, refs) -> np.ndarray:
    """Inverse of :func:`compute_residuals`: the decode scan.

    Args:
        residuals: uint8, shape (P, H, W), in coding order.
        refs: the same refs the encoder used.

    Returns:
        uint8, shape (P, H, W): the planes.
    """
    refs = _check(residuals, refs)
    out = np.empty_like(residuals)
    _scan(np.ascontiguousarray(residuals), refs, out, 0)
    return out


def _scan(res, refs, out, y_start):
    """Planes whose reference is already decoded are independent: scan them in parallel (for RGB:
    G, then R and B together)."""
    done: set = set()
    while len(done) < len(refs):
        level = [k for k in range(len(refs)) if k not in done and (refs[k] < 0 or refs[k] in done)]
        _reconstruct_nb(res, refs, out, y_start, np.array(level, dtype=np.int64))
        done.update(level)


def reconstruct_rows(residuals: np.ndarray, refs, above: np.ndarray) -> np.ndarray:
    """The decode scan for a band of rows that continues an image: ``above`` (uint8 (P, W)) is the
    decoded row just above the band. Equal to the matching rows of :func:`reconstruct` on the whole
    image (CPU only: lets big images be decoded band by band in bounded memory)."""
    refs = _check(residuals, refs)
    p, h, w = residuals.shape
    res = np.empty((p, h + 1, w), dtype=np.uint8)
    res[:, 1:] = residuals
    out = np.empty_like(res)
    out[:, 0] = above
    _scan(res, refs, out, 1)
    return out[:, 1:]
