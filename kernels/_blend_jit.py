"""Device functions of the blended predictor shared by ``blend_residual.py`` and ``blend_scan.py`` (their
twin and specification: ``tricodec/blend_ref.py``).  Everything is int32, except the blend's weighted sums
(int64); every division has non-negative operands, so C's truncation equals the twin's floor."""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _med(a, b, c):
    hi = tl.maximum(a, b)
    lo = tl.minimum(a, b)
    return tl.where(c >= hi, lo, tl.where(c <= lo, hi, a + b - c))


@triton.jit
def _blend_term(e, s, lut_ptr, tw, ts):
    """Adds sub-predictor ``s``'s weight (from its error sum ``e``) to the blend's sums."""
    wt = tl.load(lut_ptr + e).to(tl.int64)
    return tw + wt, ts + wt * (s + 4096).to(tl.int64)


@triton.jit
def _blend_finish(tw, ts, s0):
    """The blend's pv (pixel units) from its sums; MED's (``s0`` / 4) when every weight is 0."""
    pv4 = tl.where(tw > 0, ((ts + tw // 2) // tl.maximum(tw, 1)).to(tl.int32) - 4096, s0)
    return ((pv4 + 4098) >> 2) - 1024


@triton.jit
def _subpredictions(vw, vn, vnw, vne, vnne):
    s0 = 4 * _med(vw, vn, vnw)
    s1 = 4 * vw
    s2 = 4 * vn
    s3 = 4 * (vw + vne - vn)
    s4 = 4 * (vn + vne - vnne)
    s5 = 2 * (vw + vn) + vne - vnw
    return s0, s1, s2, s3, s4, s5
