"""The encoder's per-image choice of the blended predictor's parameters (``blend_ref``): each plane's mode
(MED or blend) and colour reference, from a cheap estimate of the residuals' cost on a sample of rows.

Any choice decodes (the parameters are recorded in the file); this module only decides which is smaller,
so it may use floating point and change between versions without breaking a file.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import blend_ref as br

# Colour references tried per coded plane of an RGB image (planes in coding order G, R, B):
# (q1, c1, q2, c2) with ref = (c1 x[q1] + c2 x[q2]) >> 2.
REFS_RGB = (
    ((-1, 0, -1, 0),),
    ((0, 4, -1, 0), (0, 2, -1, 0), (-1, 0, -1, 0)),
    ((0, 4, -1, 0), (0, 2, 1, 2), (0, 3, 1, 1), (0, 1, 1, 3), (1, 4, -1, 0), (-1, 0, -1, 0)),
)
SAMPLE_BANDS = 8          # bands of rows the estimate looks at
SAMPLE_FRACTION = 8       # ... together about 1/8 of the rows
_EDGES = np.array([1, 2, 3, 5, 9, 17, 33, 65], np.int32)
# the bucket of every activity up to the last edge (searchsorted(_EDGES, act, "right") as a look-up: 3x faster)
_BUCKET = np.searchsorted(_EDGES, np.arange(_EDGES[-1] + 1), side="right").astype(np.int32)


def sample_rows(h: int) -> np.ndarray:
    """Rows of the estimate's sample: SAMPLE_BANDS evenly spaced bands, ~h / SAMPLE_FRACTION rows in all
    (every row of a small image)."""
    band = max(8, h // (SAMPLE_BANDS * SAMPLE_FRACTION))
    if band * SAMPLE_BANDS >= h:
        return np.arange(h)
    starts = np.linspace(0, h - band, SAMPLE_BANDS).astype(np.int64)
    return np.unique(np.concatenate([np.arange(s, s + band) for s in starts]))


def estimate_bits(res: np.ndarray, bits: int = 8, shift: int = 0) -> float:
    """Cost estimate of one plane's residual symbols, (H, W) at depth ``bits``: the empirical entropy of
    ``q = (res - 2**(bits-1)) >> shift`` (clamped to [-128, 127]) given a bucket of the left and upper q's
    magnitudes (what the context model mostly knows), plus ``bits - shift`` bits for each clamped q (an
    escape).  The ``shift`` bits below q are left out: they cost the same for every option of a plane
    (at 8 bits, shift 0: the plain entropy of the uint8 symbols, as always)."""
    joint, n_esc = _context_histogram(np.ascontiguousarray(res), bits, shift)
    joint = joint.reshape(-1, 256).astype(np.float64)
    tot = joint.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(joint > 0, joint / np.maximum(tot, 1), 1.0)
    cost = float(-(joint * np.log2(p)).sum())
    return cost + n_esc * (bits - shift) if n_esc else cost


@njit(cache=True, nogil=True)
def _context_histogram(res, bits, shift):
    """estimate_bits' counts: int64 ((len(_EDGES) + 1) * 256) of (bucket of the left and upper |q|, q),
    and the number of escapes.  One pass (numpy's form made seven temporaries of the plane: 3x slower)."""
    h, w = res.shape
    joint = np.zeros((_EDGES.shape[0] + 1) * 256, np.int64)
    n_esc = 0
    last = _EDGES[-1]
    above = np.zeros(w, np.int64)       # |q| of the row above
    for y in range(h):
        left = 0
        for x in range(w):
            q = (np.int64(res[y, x]) - (1 << (bits - 1))) >> shift
            if q < -128 or q > 127:
                n_esc += 1
                q = min(max(q, -128), 127)
            act = left + above[x]
            joint[_BUCKET[min(act, last)] * 256 + q + 128] += 1
            left = abs(q)
            above[x] = left
    return joint, n_esc


def _plane_cost(sample: np.ndarray, k: int, params: np.ndarray, bits: int = 8, shift: int = 0) -> float:
    return estimate_bits(br.compute_blend_residuals(sample, params, only_plane=k, bits=bits)[k], bits, shift)


def estimate_shift(res: np.ndarray, bits: int) -> int:
    """The estimate's shift for a plane at depth ``bits`` (0 at 8 bits and below), from residual symbols
    ``res`` (H, W) of one option (the plane alone with MED): the smallest that brings the mean |q| to
    about 2 to 4, the scale of an 8-bit photo's residuals.

    Why a shift, and why this one: above 8 bits a sample's residuals take thousands of values, so on the
    estimate's few rows nearly every one is seen once and every option's entropy comes out as about
    log2(sample size): no ranking.  Quantised to a 256-value histogram as the 8-bit one, the entropies
    compare the options' spread again (the low bits are noise-like and cost about the same for every
    option).  A fixed ``bits - 8`` would not do: a smooth 16-bit plane whose residuals stay within a few
    hundred quantises to 0 and -1 and every option looks free; the shift must follow the residuals' own
    scale (as ``deep.py``'s shift does), and the escape term keeps a too-small one honest.  One shift per
    plane, shared by all its options, so their costs stay comparable."""
    if bits <= 8 or res.size == 0:
        return 0
    mean = float(np.abs(res.astype(np.int64) - (1 << (bits - 1))).mean())
    return int(min(bits - 1, max(0, int(np.log2(mean + 1.0)) - 2)))


def choose_params(planes: np.ndarray, bits: int = 8) -> np.ndarray:
    """Each plane's (mode, q1, c1, q2, c2) for ``planes`` (P, H, W) in coding order, uint8 at ``bits`` = 8
    or uint16 at any depth 1..16 (``blend_ref``'s rule): the colour reference with the cheapest MED
    residuals, then the cheaper mode with it (1 or 3 colour planes; an alpha plane after them is coded
    alone with the cheaper mode).  At 8 bits the choices are those of the 8-bit estimate, unchanged."""
    n = planes.shape[0]
    sample = np.ascontiguousarray(planes[:, sample_rows(planes.shape[1])])
    params = np.zeros((n, 5), np.int32)
    params[:, 1] = -1
    params[:, 3] = -1
    colour = 3 if n >= 3 else 1
    for k in range(n):
        options = REFS_RGB[k] if colour == 3 and k < 3 else ((-1, 0, -1, 0),)
        shift = 0
        if bits > 8:
            params[k] = (br.MODE_MED, -1, 0, -1, 0)
            shift = estimate_shift(br.compute_blend_residuals(sample, params, only_plane=k, bits=bits)[k], bits)
        best = None
        for ref in options:
            params[k] = (br.MODE_MED,) + ref
            cost = _plane_cost(sample, k, params, bits, shift) if len(options) > 1 else 0.0
            if best is None or cost < best[0]:
                best = (cost, ref)
        params[k] = (br.MODE_MED,) + best[1]
        med = _plane_cost(sample, k, params, bits, shift)
        params[k, 0] = br.MODE_BLEND
        if _plane_cost(sample, k, params, bits, shift) >= med:
            params[k, 0] = br.MODE_MED
    return params
