"""Causal predictor: the CPU reference twin of ``kernels/predictor_residual.py`` / ``kernels/predictor_scan.py``.

Planes are coded in a fixed order; plane ``k`` may name an earlier plane ``r = refs[k]`` as its
reference (``-1``: none).  The predictor works on ``v = x_k - x_r`` (``v = x_k`` without a reference),
so for RGB coded as G, R(ref G), B(ref G) it is MED on the colour planes G, R-G, B-G.  Samples have
``bits`` bits (1..16; ``half = 2**(bits-1)``, ``maxv = 2**bits - 1``)::

    a, b, c = v[y, x-1], v[y-1, x], v[y-1, x-1]              # left, up, up-left
    pv = base                              if y == 0 and x == 0   (base = half without reference, else 0)
       = a                                 if y == 0
       = b                                 if x == 0
       = min(a, b) if c >= max(a, b) else max(a, b) if c <= min(a, b) else a + b - c   (MED)
    pred = clamp(pv + x_r, 0, maxv)
    s = (x_k - pred + half) & maxv          # the residual symbol that gets entropy coded
    x_k = (s - half + pred) & maxv          # its inverse, used by the decode scan

At ``bits = 8`` (the default) that is ``base = 128``, ``clamp(.., 0, 255)``, ``mod 256``: 8-bit output
is what it always was.  Arrays are uint8 when ``bits == 8``, or uint16 for any ``bits`` (8 included;
uint8 with another depth is refused, so that a uint8 array always means 8-bit samples); the output has
the input's dtype.  Encode computes every residual at once (all pixels are
known); decode is a scan, because each pixel's prediction needs its decoded neighbours.  All integer
(|values| < 2**18 in int32), hence exact on every backend.
"""
from __future__ import annotations

import operator

import numpy as np
from numba import njit, prange


def check_bits(bits, dtype) -> int:
    """The sample depth rule shared with the kernels' wrappers: ``bits`` in 1..16; uint8 arrays only at
    8 bits, uint16 arrays at any depth."""
    if isinstance(bits, bool):
        raise ValueError(f"bits must be an int in 1..16, got {bits!r}")
    try:
        bits = operator.index(bits)
    except TypeError:
        raise ValueError(f"bits must be an int in 1..16, got {bits!r}") from None
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be in 1..16, got {bits}")
    if dtype == np.uint8 and bits != 8:
        raise ValueError(f"uint8 planes hold 8-bit samples only (bits={bits}): use uint16")
    if dtype not in (np.uint8, np.uint16):
        raise ValueError(f"planes must be uint8 or uint16, got {dtype}")
    return bits


def _check(planes: np.ndarray, refs, bits) -> tuple:
    refs = np.asarray(refs, dtype=np.int32)
    if planes.ndim != 3 or planes.dtype not in (np.uint8, np.uint16) or refs.shape != (planes.shape[0],):
        raise ValueError("planes must be uint8 or uint16 (P, H, W) with one ref per plane")
    bits = check_bits(bits, planes.dtype)
    for k, r in enumerate(refs):
        if not (r == -1 or 0 <= r < k):
            raise ValueError("a plane can only reference an earlier plane")
    return refs, np.int32(1 << (bits - 1)), np.int32((1 << bits) - 1)


@njit(cache=True, nogil=True, inline="always")
def _predict(px, refs, k, y, x, half, maxv):
    """The prediction of pixel (k, y, x) from ``px``, whose causal neighbours (and plane refs[k]) hold
    original pixels: the encoder passes the image, the decode scan its output so far."""
    r = refs[k]
    rv = np.int32(px[r, y, x]) if r >= 0 else np.int32(0)
    if y == 0 and x == 0:
        pv = np.int32(0) if r >= 0 else half
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
    return min(max(pv + rv, 0), maxv)


@njit(cache=True, nogil=True, parallel=True)
def _residuals_nb(planes, refs, out, half, maxv):
    # half and maxv are runtime arguments: one compiled variant per dtype, not one per depth.
    n_planes, h, w = planes.shape
    for job in prange(n_planes * h):
        k = job // h
        y = job % h
        for x in range(w):
            pred = _predict(planes, refs, k, y, x, half, maxv)
            out[k, y, x] = (np.int32(planes[k, y, x]) - pred + half) & maxv


def compute_residuals(planes: np.ndarray, refs, bits: int = 8) -> np.ndarray:
    """Residual symbols of every pixel, computed in parallel (rows are independent at encode time).

    Args:
        planes: uint8 (``bits == 8``) or uint16 (any ``bits``), shape (P, H, W), in coding order;
            every sample below ``2**bits``.
        refs: P ints, ``refs[k]`` in [-1, k).
        bits: sample depth, 1..16.

    Returns:
        planes' dtype, shape (P, H, W): residuals in [0, 2**bits).

    Raises:
        ValueError: bad shape, dtype/bits combination or refs, or a sample >= ``2**bits`` (its residual
            would not round-trip).
    """
    refs, half, maxv = _check(planes, refs, bits)
    # A full-width dtype holds no out-of-range sample: the max pass is only paid below it.
    if planes.size and maxv < np.iinfo(planes.dtype).max and int(planes.max()) > maxv:
        raise ValueError(f"planes hold a sample >= 2**{int(maxv).bit_length()}")
    out = np.empty_like(planes)
    _residuals_nb(np.ascontiguousarray(planes), refs, out, half, maxv)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _reconstruct_nb(res, refs, out, y_start, planes, half, maxv):
    _, h, w = res.shape
    for i in prange(planes.shape[0]):
        k = planes[i]
        for y in range(y_start, h):
            for x in range(w):
                pred = _predict(out, refs, k, y, x, half, maxv)
                out[k, y, x] = (np.int32(res[k, y, x]) - half + pred) & maxv


def reconstruct(residuals: np.ndarray, refs, bits: int = 8) -> np.ndarray:
    """Inverse of :func:`compute_residuals`: the decode scan.

    Args:
        residuals: uint8 (``bits == 8``) or uint16 (any ``bits``), shape (P, H, W), in coding order
            (bits above ``bits`` are ignored: ``& maxv`` drops them).
        refs: the same refs the encoder used.
        bits: the same sample depth, 1..16.

    Returns:
        residuals' dtype, shape (P, H, W): the planes.
    """
    refs, half, maxv = _check(residuals, refs, bits)
    out = np.empty_like(residuals)
    _scan(np.ascontiguousarray(residuals), refs, out, 0, half, maxv)
    return out


def _scan(res, refs, out, y_start, half, maxv):
    """Planes whose reference is already decoded are independent: scan them in parallel (for RGB:
    G, then R and B together)."""
    done: set = set()
    while len(done) < len(refs):
        level = [k for k in range(len(refs)) if k not in done and (refs[k] < 0 or refs[k] in done)]
        _reconstruct_nb(res, refs, out, y_start, np.array(level, dtype=np.int64), half, maxv)
        done.update(level)


def reconstruct_rows(residuals: np.ndarray, refs, above: np.ndarray, bits: int = 8) -> np.ndarray:
    """The decode scan for a band of rows that continues an image: ``above`` ((P, W), residuals' dtype)
    is the decoded row just above the band. Equal to the matching rows of :func:`reconstruct` on the
    whole image with the same ``bits`` (CPU only: lets big images be decoded band by band in bounded
    memory)."""
    refs, half, maxv = _check(residuals, refs, bits)
    p, h, w = residuals.shape
    res = np.empty((p, h + 1, w), dtype=residuals.dtype)
    res[:, 1:] = residuals
    out = np.empty_like(res)
    out[:, 0] = above
    _scan(res, refs, out, 1, half, maxv)
    return out[:, 1:]
