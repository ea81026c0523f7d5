"""Predictor decode scan: Triton twin of :func:`tricodec.predictor_ref.reconstruct`.

Pixel ``(y, x)`` of a plane needs its decoded left ``(y, x-1)``, up ``(y-1, x)`` and up-left
``(y-1, x-1)`` neighbours and, for a colour plane, its reference plane's pixel ``(y, x)``, so decoding is
a scan.  One program decodes one image in strips of ``BLOCK_H`` rows; in a strip every plane advances as
an anti-diagonal wavefront, plane k one step behind plane k - 1 (a plane's reference is an earlier plane:
its pixel is then decoded a step or more before it is needed).  A strip takes ``W + rows - 1 + P - 1``
steps for all its planes together.  Samples have ``bits`` bits (1..16), ``half = 2**(bits-1)``,
``maxv = 2**bits - 1``.  Pseudo-Python::

    for y0 in range(0, H, BLOCK_H):
        rows = min(BLOCK_H, H - y0)
        for d in range(W + rows - 1 + P - 1):            # wavefront steps
            for k, i in planes x range(rows):            # vectorised: one (plane, row) per element
                y, x = y0 + i, d - i - k
                if not 0 <= x < W: continue
                r = refs[k]; base = 0 if r >= 0 else half; R(yy, xx) = out[r, yy, xx] if r >= 0 else 0
                a = left[k, i]                           # v(y, x-1), kept in a register
                c = upleft[k, i]                         # v(y-1, x-1) = the previous step's b
                b = out[k, y-1, x] - R(y-1, x)           # v(y-1, x): the row above, one step ago
                pv = base if y == 0 and x == 0 else a if y == 0 else b if x == 0 else MED(a, b, c)
                pred = clamp(pv + R(y, x), 0, maxv)
                out[k, y, x] = (residuals[k, y, x] - half + pred) & maxv
                left[k, i], upleft[k, i] = out[k, y, x] - R(y, x), b
            barrier()                                    # makes this step's stores visible to all threads

``b`` and ``R`` are read from memory stored by other threads (the row above, the reference plane) a step
or more earlier, hence the ``tl.debug_barrier()`` after every step's store; the interpreter runs a
program sequentially and would pass without it, a GPU would not.  At 8 bits (half = 128, maxv = 255)
that is the 8-bit scan, byte for byte; ``bits`` is a runtime argument, not a constexpr: one compiled
kernel per pointer dtype (uint8, uint16), not one per depth.  int32 arithmetic throughout (|values| <
2**18): exact on every device.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._host import check_planes

BLOCK_H = 256       # rows decoded in parallel by the one program, per plane (pinned)
MAX_PLANES = 4      # the vector holds MAX_PLANES x BLOCK_H (plane, row) elements
NUM_WARPS = 8


@triton.jit
def _predictor_scan_kernel(
    # pointers
    res_ptr, ref_ptr, out_ptr,
    # sizes
    P, H, W, bits,
    stride_rp, stride_rh, stride_rw,
    # meta-parameters
    BLOCK_H: tl.constexpr, MAX_PLANES: tl.constexpr,
):
    # out is contiguous (P, H, W): allocated by the wrapper.
    lane = tl.arange(0, MAX_PLANES * BLOCK_H)
    k = lane // BLOCK_H                      # plane of the element
    rows = lane % BLOCK_H                    # row of the element in the strip
    plane_ok = k < P
    r = tl.load(ref_ptr + k, mask=plane_ok, other=-1)
    has_ref = r >= 0
    half = 1 << (bits - 1)
    maxv = (1 << bits) - 1
    base = tl.where(has_ref, 0, half)
    plane_size = H * W                       # int32 offsets: the wrapper checks P * H * W < 2**31
    res_k = res_ptr + k * stride_rp
    out_k = out_ptr + k * plane_size
    out_r = out_ptr + tl.maximum(r, 0) * plane_size
    for y0 in range(0, H, BLOCK_H):
        y = y0 + rows
        row_ok = plane_ok & (y < H)
        n_steps = W + tl.minimum(H - y0, BLOCK_H) - 1 + P - 1
        left = tl.zeros([MAX_PLANES * BLOCK_H], tl.int32)
        upleft = tl.zeros([MAX_PLANES * BLOCK_H], tl.int32)
        for d in range(n_steps):
            x = d - rows - k
            act = row_ok & (x >= 0) & (x < W)
            has_up = act & (y > 0)
            o = y * W + x
            b = tl.load(out_k + o - W, mask=has_up, other=0).to(tl.int32) \
                - tl.load(out_r + o - W, mask=has_up & has_ref, other=0).to(tl.int32)
            rv = tl.load(out_r + o, mask=act & has_ref, other=0).to(tl.int32)
            s = tl.load(res_k + y * stride_rh + x * stride_rw, mask=act, other=0).to(tl.int32)
            hi = tl.maximum(left, b)
            lo = tl.minimum(left, b)
            pv = tl.where(upleft >= hi, lo, tl.where(upleft <= lo, hi, left + b - upleft))
            pv = tl.where(x == 0, b, pv)
            pv = tl.where(y == 0, left, pv)
            pv = tl.where((y == 0) & (x == 0), base, pv)
            pred = tl.minimum(tl.maximum(pv + rv, 0), maxv)
            xk = (s - half + pred) & maxv
            # out has the residuals' dtype (uint8 or uint16): xk < 2**bits fits either.
            tl.store(out_k + o, xk.to(out_ptr.dtype.element_ty), mask=act)
            # Elements outside [0, W) this step never use these values again before they are rewritten
            # (x == 0 ignores left and upleft), so the carries need no masking.
            left = xk - rv
            upleft = b
            tl.debug_barrier()


def reconstruct(residuals: torch.Tensor, refs, bits: int = 8) -> torch.Tensor:
    """Inverse of :func:`compute_residuals`: the decode scan.

    Args:
        residuals: uint8 (``bits == 8``) or torch.uint16 (any ``bits``), (P, H, W) in coding order, any
            strides, any device (bits above ``bits`` are ignored, as by the twin: ``& maxv`` drops them).
        refs: the refs the encoder used (a sequence or a tensor).
        bits: the sample depth the encoder used, 1..16.

    Returns:
        residuals' dtype, (P, H, W), contiguous, on residuals' device: the planes.
    """
    refs_t, out, bits = check_planes("residuals", residuals, refs, bits)
    p, h, w = residuals.shape
    if residuals.numel() == 0:
        return out
    if residuals.numel() >= 2**31 or max(residuals.stride()) * max(residuals.shape) >= 2**31:
        raise ValueError("image too large for int32 offsets")
    if p > MAX_PLANES:
        raise ValueError(f"at most {MAX_PLANES} planes")
    _predictor_scan_kernel[(1,)](residuals, refs_t, out, p, h, w, bits, *residuals.stride(),
                                 BLOCK_H=BLOCK_H, MAX_PLANES=MAX_PLANES, num_warps=NUM_WARPS)
    return out
