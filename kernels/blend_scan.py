"""Blended-predictor decode scan: Triton twin of :func:`tricodec.blend_ref.reconstruct_blend`.

A pixel needs, of its own plane, v at W, N, NW, NE, NNE and the sub-predictors' errors at W, WW, N, NW, NE,
NN (all on earlier anti-diagonals ``x + 2y``), and of its reference planes the pixel (y, x).  One program
decodes the image in strips of ``BLOCK_H`` rows; in a strip every (plane, row) element advances along
its row, plane k one step behind plane k - 1, so a strip takes ``W + 2 (rows - 1) + P - 1`` steps.
Samples have ``bits`` bits (1..16; uint8 residuals at 8 bits, uint16 at any), ``half = 2**(bits-1)``,
``maxv = 2**bits - 1``, ``esh = max(bits - 8, 0)``.  Pseudo-Python (``blend_ref``'s docstring defines v,
the fallbacks, s, the errors' cap E_MAX and the blend)::

    for y0 in range(0, H, BLOCK_H):
        for d in range(W + 2 * (rows - 1) + P - 1):              # wavefront steps
            for k, i in planes x range(rows):                    # vectorised
                y, x = y0 + i, d - 2 * i - k
                if not 0 <= x < W: continue
                ref = (c1 out[q1, y, x] + c2 out[q2, y, x]) >> 2
                pv = med(W, N, NW) or blend(s, errors)           # from the rings, rows y-2 .. y
                pv = base if (y, x) == (0, 0) else pv             # base: half, or 0 with references
                out[k, y, x] = (res[k, y, x] - half + clamp(pv + ref, 0, maxv)) & maxv
                vring[k, y % 4, x] = out[k, y, x] - ref
                ering[k, i', y % 4, x] = min(|4 vring[k, y % 4, x] - s_i'| >> esh, E_MAX)   # blend planes
            barrier()

The rings (int32 scratch tensors, four rows per plane) are read by other threads a step or more after
they were stored, hence the ``tl.debug_barrier()`` after every step.  Row y + 4, which reuses row y's
ring row, writes column c four steps after the last read of row y's column c.  At 8 bits that is the
8-bit scan byte for byte; ``bits`` is a runtime argument, not a constexpr: one compiled kernel per pointer
dtype (uint8, uint16), not one per depth.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._blend_jit import _blend_err, _blend_finish, _blend_term, _med, _subpredictions
from .blend_residual import N_SUB, prepare, weight_lut

BLOCK_H = 256       # rows decoded in parallel by the one program, per plane (pinned)
MAX_PLANES = 4
NUM_WARPS = 8
RING = 4


@triton.jit
def _ring_err_sum(e, r0, r1, r2, x, ok, y, W):
    """S of one sub-predictor from its error ring ``e`` (rows at offsets r0, r1, r2 = rows y, y-1, y-2)."""
    has_u = ok & (y > 0)
    s = 2 * tl.load(e + r0 + x - 1, mask=ok & (x > 0), other=0)
    s += tl.load(e + r0 + x - 2, mask=ok & (x > 1), other=0)
    s += 2 * tl.load(e + r1 + x, mask=has_u, other=0)
    s += 2 * tl.load(e + r1 + x - 1, mask=has_u & (x > 0), other=0)
    s += 2 * tl.load(e + r1 + x + 1, mask=has_u & (x < W - 1), other=0)
    s += tl.load(e + r2 + x, mask=ok & (y > 1), other=0)
    return s


@triton.jit
def _blend_scan_kernel(
    # pointers
    res_ptr, prm_ptr, lut_ptr, out_ptr, vring_ptr, ering_ptr,
    # sizes
    P, H, W, bits,
    stride_rp, stride_rh, stride_rw,
    # meta-parameters
    BLOCK_H: tl.constexpr, MAX_PLANES: tl.constexpr, RING: tl.constexpr, N_SUB: tl.constexpr,
):
    # out is contiguous (P, H, W); vring (P, RING, W) and ering (P, N_SUB, RING, W) int32: the wrapper's.
    lane = tl.arange(0, MAX_PLANES * BLOCK_H)
    k = lane // BLOCK_H
    rows = lane % BLOCK_H
    plane_ok = k < P
    mode = tl.load(prm_ptr + k * 5, mask=plane_ok, other=0)
    q1 = tl.load(prm_ptr + k * 5 + 1, mask=plane_ok, other=-1)
    c1 = tl.load(prm_ptr + k * 5 + 2, mask=plane_ok, other=0)
    q2 = tl.load(prm_ptr + k * 5 + 3, mask=plane_ok, other=-1)
    c2 = tl.load(prm_ptr + k * 5 + 4, mask=plane_ok, other=0)
    blend = mode != 0
    half = 1 << (bits - 1)
    maxv = (1 << bits) - 1
    esh = tl.maximum(bits - 8, 0)
    off = 1 << (bits + 4)                    # the blend's offset: s_i + off > 0 at every depth
    base = tl.where((q1 < 0) & (q2 < 0), half, 0)
    plane_size = H * W                       # int32 offsets: the wrapper checks the sizes
    res_k = res_ptr + k * stride_rp
    out_k = out_ptr + k * plane_size
    out_1 = out_ptr + tl.maximum(q1, 0) * plane_size
    out_2 = out_ptr + tl.maximum(q2, 0) * plane_size
    vr = vring_ptr + k * (RING * W)
    er = ering_ptr + k * (N_SUB * RING * W)
    ring_size = RING * W
    for y0 in range(0, H, BLOCK_H):
        y = y0 + rows
        row_ok = plane_ok & (y < H)
        n_steps = W + 2 * (tl.minimum(H - y0, BLOCK_H) - 1) + P - 1
        r0 = (y % RING) * W
        r1 = ((y + RING - 1) % RING) * W
        r2 = ((y + RING - 2) % RING) * W
        for d in range(n_steps):
            x = d - 2 * rows - k
            ok = row_ok & (x >= 0) & (x < W)
            o = y * W + x
            ref = (c1 * tl.load(out_1 + o, mask=ok, other=0).to(tl.int32)
                   + c2 * tl.load(out_2 + o, mask=ok, other=0).to(tl.int32)) >> 2
            up = ok & (y > 0)
            vl = tl.load(vr + r0 + x - 1, mask=ok & (x > 0), other=0)
            vu = tl.load(vr + r1 + x, mask=up, other=0)
            vw = tl.where(x > 0, vl, tl.where(y > 0, vu, 0))
            vn = tl.where(y > 0, vu, vw)
            vnw = tl.where((y > 0) & (x > 0), tl.load(vr + r1 + x - 1, mask=up & (x > 0), other=0), vn)
            vne = tl.where((y > 0) & (x < W - 1), tl.load(vr + r1 + x + 1, mask=up & (x < W - 1), other=0), vn)
            vnne = tl.where((y > 1) & (x < W - 1),
                            tl.load(vr + r2 + x + 1, mask=ok & (y > 1) & (x < W - 1), other=0), vne)
            s0, s1, s2, s3, s4, s5 = _subpredictions(vw, vn, vnw, vne, vnne)
            eb = ok & blend
            tw = tl.zeros([MAX_PLANES * BLOCK_H], tl.int64)
            ts = tl.zeros([MAX_PLANES * BLOCK_H], tl.int64)
            tw, ts = _blend_term(_ring_err_sum(er, r0, r1, r2, x, eb, y, W), s0, lut_ptr, tw, ts, off)
            tw, ts = _blend_term(_ring_err_sum(er + ring_size, r0, r1, r2, x, eb, y, W), s1, lut_ptr, tw, ts, off)
            tw, ts = _blend_term(_ring_err_sum(er + 2 * ring_size, r0, r1, r2, x, eb, y, W), s2, lut_ptr, tw, ts, off)
            tw, ts = _blend_term(_ring_err_sum(er + 3 * ring_size, r0, r1, r2, x, eb, y, W), s3, lut_ptr, tw, ts, off)
            tw, ts = _blend_term(_ring_err_sum(er + 4 * ring_size, r0, r1, r2, x, eb, y, W), s4, lut_ptr, tw, ts, off)
            tw, ts = _blend_term(_ring_err_sum(er + 5 * ring_size, r0, r1, r2, x, eb, y, W), s5, lut_ptr, tw, ts, off)
            pv = tl.where(blend, _blend_finish(tw, ts, s0, off), _med(vw, vn, vnw))
            pv = tl.where((y == 0) & (x == 0), base, pv)
            pred = tl.minimum(tl.maximum(pv + ref, 0), maxv)
            s = tl.load(res_k + y * stride_rh + x * stride_rw, mask=ok, other=0).to(tl.int32)
            xk = (s - half + pred) & maxv
            # out has the residuals' dtype (uint8 or uint16): xk < 2**bits fits either
            tl.store(out_k + o, xk.to(out_ptr.dtype.element_ty), mask=ok)
            v4 = 4 * (xk - ref)
            tl.store(vr + r0 + x, xk - ref, mask=ok)
            tl.store(er + r0 + x, _blend_err(v4, s0, esh), mask=eb)
            tl.store(er + ring_size + r0 + x, _blend_err(v4, s1, esh), mask=eb)
            tl.store(er + 2 * ring_size + r0 + x, _blend_err(v4, s2, esh), mask=eb)
            tl.store(er + 3 * ring_size + r0 + x, _blend_err(v4, s3, esh), mask=eb)
            tl.store(er + 4 * ring_size + r0 + x, _blend_err(v4, s4, esh), mask=eb)
            tl.store(er + 5 * ring_size + r0 + x, _blend_err(v4, s5, esh), mask=eb)
            tl.debug_barrier()


def reconstruct_blend(residuals: torch.Tensor, params, bits: int = 8) -> torch.Tensor:
    """Inverse of :func:`tricodec.kernels.blend_residual.compute_blend_residuals`: the decode scan.

    Args:
        residuals: uint8 (``bits == 8``) or torch.uint16 (any ``bits``), (P, H, W) in coding order, any
            strides, any device (bits above ``bits`` are ignored, as by the twin: ``& maxv`` drops them).
        params: the params the encoder used, int (P, 5).
        bits: the sample depth the encoder used, 1..16.

    Returns:
        residuals' dtype, (P, H, W), contiguous, on residuals' device: the planes.
    """
    prm, out, bits = prepare("residuals", residuals, params, 1, bits)
    p, h, w = residuals.shape
    if residuals.numel() == 0:
        return out
    if p > MAX_PLANES:
        raise ValueError(f"at most {MAX_PLANES} planes")
    vring = torch.zeros((p, RING, w), dtype=torch.int32, device=residuals.device)
    ering = torch.zeros((p, N_SUB, RING, w), dtype=torch.int32, device=residuals.device)
    _blend_scan_kernel[(1,)](residuals, prm, weight_lut(residuals.device), out, vring, ering, p, h, w, bits,
                             *residuals.stride(), BLOCK_H=BLOCK_H, MAX_PLANES=MAX_PLANES, RING=RING, N_SUB=N_SUB,
                             num_warps=NUM_WARPS)
    return out
