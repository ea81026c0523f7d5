"""The encoder's per-image choice of the blended predictor's parameters (``blend_ref``): each plane's mode
(MED or blend) and colour reference, from a cheap estimate of the residuals' cost on a sample of rows.

Any choice decodes (the parameters are recorded in the file); this module only decides which is smaller,
so it may use floating point and change between versions without breaking a file.
"""
from __future__ import annotations

import numpy as np

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


def sample_rows(h: int) -> np.ndarray:
    """Rows of the estimate's sample: SAMPLE_BANDS evenly spaced bands, ~h / SAMPLE_FRACTION rows in all
    (every row of a small image)."""
    band = max(8, h // (SAMPLE_BANDS * SAMPLE_FRACTION))
    if band * SAMPLE_BANDS >= h:
        return np.arange(h)
    starts = np.linspace(0, h - band, SAMPLE_BANDS).astype(np.int64)
    return np.unique(np.concatenate([np.arange(s, s + band) for s in starts]))


def estimate_bits(res: np.ndarray) -> float:
    """Cost estimate of one plane's residual symbols, uint8 (H, W): their empirical entropy given a bucket
    of the left and upper residuals' magnitudes (what the context model mostly knows)."""
    r = res.astype(np.int32) - 128
    a = np.abs(r)
    act = np.zeros_like(a)
    act[:, 1:] += a[:, :-1]
    act[1:, :] += a[:-1, :]
    ctx = np.searchsorted(_EDGES, act, side="right")
    joint = np.bincount((ctx * 256 + res.astype(np.int32)).ravel(), minlength=256 * (len(_EDGES) + 1))
    joint = joint.reshape(-1, 256).astype(np.float64)
    tot = joint.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(joint > 0, joint / np.maximum(tot, 1), 1.0)
    return float(-(joint * np.log2(p)).sum())


def _plane_cost(sample: np.ndarray, k: int, params: np.ndarray) -> float:
    return estimate_bits(br.compute_blend_residuals(sample, params, only_plane=k)[k])


def choose_params(planes: np.ndarray) -> np.ndarray:
    """Each plane's (mode, q1, c1, q2, c2) for uint8 ``planes`` (P, H, W) in coding order: the colour
    reference with the cheapest MED residuals, then the cheaper mode with it (1 or 3 colour planes; an
    alpha plane after them is coded alone with the cheaper mode)."""
    n = planes.shape[0]
    sample = np.ascontiguousarray(planes[:, sample_rows(planes.shape[1])])
    params = np.zeros((n, 5), np.int32)
    params[:, 1] = -1
    params[:, 3] = -1
    colour = 3 if n >= 3 else 1
    for k in range(n):
        options = REFS_RGB[k] if colour == 3 and k < 3 else ((-1, 0, -1, 0),)
        best = None
        for ref in options:
            params[k] = (br.MODE_MED,) + ref
            cost = _plane_cost(sample, k, params) if len(options) > 1 else 0.0
            if best is None or cost < best[0]:
                best = (cost, ref)
        params[k] = (br.MODE_MED,) + best[1]
        med = _plane_cost(sample, k, params)
        params[k, 0] = br.MODE_BLEND
        if _plane_cost(sample, k, params) >= med:
            params[k, 0] = br.MODE_MED
    return params
