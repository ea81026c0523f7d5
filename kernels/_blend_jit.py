"""Device functions of the blended predictor shared by ``blend_residual.py`` and ``blend_scan.py`` (their
twin and specification: ``tricodec/blend_ref.py``).  Everything is int32, except the blend's weighted sums
(int64); every division has non-negative operands, so C's truncation equals the twin's floor.  The depth's
constants (``off = 2**(bits+4)``, ``esh = max(bits - 8, 0)``) are runtime values: one compiled kernel per
pointer dtype, not one per depth.  Ranges at 16 bits (the widest; blend_ref's docstring): ``|4 v - s_i|
< 2**20``, ``0 < s_i + off < 2**21``, weights <= 2**24, ``ts < 2**48``."""
from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def _med(a, b, c):
    hi = tl.maximum(a, b)
    lo = tl.minimum(a, b)
    return tl.where(c >= hi, lo, tl.where(c <= lo, hi, a + b - c))


@triton.jit
def _blend_err(v4, s, esh):
    """A sub-predictor's error as the weights read it: ``|4 v - s|`` scaled to the 8-bit range (``esh``)
    and capped at ``blend_ref.E_MAX`` = 4080, so every error sum indexes the one weight table (a no-op at
    8 bits and below, where ``|4 v - s| <= 4080`` already)."""
    return tl.minimum(tl.abs(v4 - s) >> esh, 4080)


@triton.jit
def _blend_term(e, s, lut_ptr, tw, ts, off):
    """Adds sub-predictor ``s``'s weight (from its error sum ``e``) to the blend's sums (``s + off > 0``)."""
    wt = tl.load(lut_ptr + e).to(tl.int64)
    return tw + wt, ts + wt * (s + off).to(tl.int64)


@triton.jit
def _blend_finish(tw, ts, s0, off):
    """The blend's pv (pixel units) from its sums; MED's (``s0`` / 4) when every weight is 0.
    ``((pv4 + 2 + off) >> 2) - off // 4`` = floor(pv4 / 4 + 1/2) with a non-negative shifted operand."""
    pv4 = tl.where(tw > 0, ((ts + tw // 2) // tl.maximum(tw, 1)).to(tl.int32) - off, s0)
    return ((pv4 + 2 + off) >> 2) - (off >> 2)


@triton.jit
def _subpredictions(vw, vn, vnw, vne, vnne):
    s0 = 4 * _med(vw, vn, vnw)
    s1 = 4 * vw
    s2 = 4 * vn
    s3 = 4 * (vw + vne - vn)
    s4 = 4 * (vn + vne - vnne)
    s5 = 2 * (vw + vn) + vne - vnw
    return s0, s1, s2, s3, s4, s5
