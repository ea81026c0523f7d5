"""Predictor residuals (encode side): Triton twin of :func:`tricodec.predictor_ref.compute_residuals`.

Every pixel is independent at encode time (all neighbours are known), so the kernel is a plain 2-D
tiled map, one program per ``BLOCK_H x BLOCK_W`` tile of one plane.  Samples have ``bits`` bits (1..16),
``half = 2**(bits-1)``, ``maxv = 2**bits - 1``.  Pseudo-Python::

    for k in range(P):                                   # program axis 2
        r = refs[k]                                      # -1: no reference plane
        for y, x in tile:                                # vectorised, BLOCK_H x BLOCK_W
            v(yy, xx) = planes[k, yy, xx] - (planes[r, yy, xx] if r >= 0 else 0)
            a, b, c = v(y, x-1), v(y-1, x), v(y-1, x-1)  # left, up, up-left (0 outside the image)
            if y == 0 and x == 0: pv = 0 if r >= 0 else half
            elif y == 0:          pv = a
            elif x == 0:          pv = b
            elif c >= max(a, b):  pv = min(a, b)
            elif c <= min(a, b):  pv = max(a, b)
            else:                 pv = a + b - c
            pred = clamp(pv + (planes[r, y, x] if r >= 0 else 0), 0, maxv)
            out[k, y, x] = (planes[k, y, x] - pred + half) & maxv

At 8 bits (half = 128, maxv = 255) that is the 8-bit predictor, byte for byte.  ``bits`` is a runtime
argument, not a constexpr: one compiled kernel per pointer dtype (uint8, uint16), not one per depth.
int32 arithmetic throughout (|values| < 2**18): exact on every device.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._host import check_planes

BLOCK_H = 16        # pinned tile: 16 x 64 pixels per program
BLOCK_W = 64
NUM_WARPS = 4


@triton.jit
def _predictor_residual_kernel(
    # pointers
    x_ptr, ref_ptr, out_ptr,
    # sizes
    H, W, bits,
    stride_xp, stride_xh, stride_xw,
    stride_op, stride_oh, stride_ow,
    # meta-parameters
    BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):
    pid_w = tl.program_id(0)
    pid_h = tl.program_id(1)
    k = tl.program_id(2)
    r = tl.load(ref_ptr + k)
    half = 1 << (bits - 1)
    maxv = (1 << bits) - 1
    rk = tl.maximum(r, 0)
    ys = (pid_h * BLOCK_H + tl.arange(0, BLOCK_H))[:, None]
    xs = (pid_w * BLOCK_W + tl.arange(0, BLOCK_W))[None, :]
    # The reference flag as a full tile: under the interpreter, tile_mask & scalar_mask comes out as
    # int32 data that tl.load refuses as a mask (the GPU compiler broadcasts it correctly).
    has_ref = (tl.zeros([BLOCK_H, BLOCK_W], tl.int32) + r) >= 0
    inside = (ys < H) & (xs < W)
    has_l = inside & (xs > 0)
    has_u = inside & (ys > 0)
    has_ul = has_l & (ys > 0)
    plane = x_ptr + k.to(tl.int64) * stride_xp
    refp = x_ptr + rk.to(tl.int64) * stride_xp
    o_c = ys * stride_xh + xs * stride_xw
    o_l = o_c - stride_xw
    o_u = o_c - stride_xh
    o_ul = o_u - stride_xw
    xv = tl.load(plane + o_c, mask=inside, other=0).to(tl.int32)
    rv = tl.load(refp + o_c, mask=inside & has_ref, other=0).to(tl.int32)
    a = tl.load(plane + o_l, mask=has_l, other=0).to(tl.int32) \
        - tl.load(refp + o_l, mask=has_l & has_ref, other=0).to(tl.int32)
    b = tl.load(plane + o_u, mask=has_u, other=0).to(tl.int32) \
        - tl.load(refp + o_u, mask=has_u & has_ref, other=0).to(tl.int32)
    c = tl.load(plane + o_ul, mask=has_ul, other=0).to(tl.int32) \
        - tl.load(refp + o_ul, mask=has_ul & has_ref, other=0).to(tl.int32)
    hi = tl.maximum(a, b)
    lo = tl.minimum(a, b)
    pv = tl.where(c >= hi, lo, tl.where(c <= lo, hi, a + b - c))
    pv = tl.where(xs == 0, b, pv)
    pv = tl.where(ys == 0, a, pv)
    pv = tl.where((ys == 0) & (xs == 0), tl.where(has_ref, 0, half), pv)
    pred = tl.minimum(tl.maximum(pv + rv, 0), maxv)
    s = (xv - pred + half) & maxv
    # out has the planes' dtype (uint8 or uint16): s < 2**bits fits either.
    tl.store(out_ptr + k.to(tl.int64) * stride_op + ys * stride_oh + xs * stride_ow,
             s.to(out_ptr.dtype.element_ty), mask=inside)


def compute_residuals(planes: torch.Tensor, refs, bits: int = 8) -> torch.Tensor:
    """Residual symbols of every pixel, computed in parallel.

    Args:
        planes: uint8 (``bits == 8``) or torch.uint16 (any ``bits``), (P, H, W) in coding order, any
            strides, any device; every sample below ``2**bits``.
        refs: P ints (a sequence or a tensor), ``refs[k]`` in [-1, k).
        bits: sample depth, 1..16.

    Returns:
        planes' dtype, (P, H, W), contiguous, on planes' device: residuals in [0, 2**bits).

    Raises:
        ValueError: as the twin: bad shape, dtype/bits combination or refs, or a sample >= ``2**bits``
            (checked only for uint16 below 16 bits: one reduction and a read-back).
    """
    refs_t, out, bits = check_planes("planes", planes, refs, bits, check_samples=True)
    p, h, w = planes.shape
    if planes.numel() == 0:
        return out
    grid = (triton.cdiv(w, BLOCK_W), triton.cdiv(h, BLOCK_H), p)
    _predictor_residual_kernel[grid](planes, refs_t, out, h, w, bits, *planes.stride(), *out.stride(),
                                     BLOCK_H=BLOCK_H, BLOCK_W=BLOCK_W, num_warps=NUM_WARPS)
    return out
