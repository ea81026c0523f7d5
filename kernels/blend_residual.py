"""Blended-predictor residuals (encode side): Triton twin of
:func:`tricodec.blend_ref.compute_blend_residuals`.

Every pixel is independent at encode time, so two plain tiled maps do it, one program per
``BLOCK_H x BLOCK_W`` tile of one plane.  Samples have ``bits`` bits (1..16; uint8 planes at 8 bits,
uint16 at any), ``half = 2**(bits-1)``, ``maxv = 2**bits - 1``, ``esh = max(bits - 8, 0)``.  Pseudo-Python
(``v``, the neighbours with their fallbacks, the sub-predictions ``s``, the weights and the blend's
offset are those of ``blend_ref``'s docstring)::

    for k in range(P):                                        # program axis 2
        mode, q1, c1, q2, c2 = params[k]
        for y, x in tile:                                     # kernel 1, vectorised
            err[k, i, y, x] = min(|4 v(y, x) - s_i(y, x)| >> esh, E_MAX)   # i = 0..5 (blend planes only)
        for y, x in tile:                                     # kernel 2, vectorised
            pv = med(W, N, NW) if mode == 0 else blend(s(y, x), err[k, :, neighbours of (y, x)])
            pv = (0 if q1 >= 0 or q2 >= 0 else half) if (y, x) == (0, 0) else pv
            out[k, y, x] = (planes[k, y, x] - clamp(pv + ref(y, x), 0, maxv) + half) & maxv

The errors (<= E_MAX = 4080 at any depth) go through an int16 (P, 6, H, W) scratch tensor between the two
launches.  At 8 bits that is the 8-bit predictor byte for byte; ``bits`` is a runtime argument, not a
constexpr: one compiled kernel per pointer dtype (uint8, uint16), not one per depth.
"""
from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from tricodec.predictor_ref import check_bits

from ._blend_jit import _blend_err, _blend_finish, _blend_term, _med, _subpredictions

BLOCK_H = 16        # pinned tile: 16 x 64 pixels per program
BLOCK_W = 64
NUM_WARPS = 4
N_SUB = 6


@triton.jit
def _v_at(plane, ref1, ref2, c1, c2, o, m):
    """v = x_k - ((c1 x_q1 + c2 x_q2) >> 2) at offsets ``o`` (0 where ``m`` is false)."""
    xv = tl.load(plane + o, mask=m, other=0).to(tl.int32)
    r = c1 * tl.load(ref1 + o, mask=m, other=0).to(tl.int32) + c2 * tl.load(ref2 + o, mask=m, other=0).to(tl.int32)
    return xv - (r >> 2)


@triton.jit
def _neighbours(plane, ref1, ref2, c1, c2, ys, xs, inside, H, W, sh, sw):
    """(W, N, NW, NE, NNE) of v with the twin's edge fallbacks."""
    return _neighbours_below(plane, ref1, ref2, c1, c2, ys, ys, xs, inside, W, sh, sw)


@triton.jit
def _neighbours_below(plane, ref1, ref2, c1, c2, ys, yl, xs, inside, W, sh, sw):
    """(W, N, NW, NE, NNE) of v at rows ``ys`` with the twin's edge fallbacks, the rows above ``ys - yl``
    missing (``yl``: the row below that top; ``ys`` itself for the whole image, the row inside its strip
    for ``fused_encode``)."""
    o = ys * sh + xs * sw
    has_l = inside & (xs > 0)
    has_u = inside & (yl > 0)
    has_ur = has_u & (xs < W - 1)
    vl = _v_at(plane, ref1, ref2, c1, c2, o - sw, has_l)
    vu = _v_at(plane, ref1, ref2, c1, c2, o - sh, has_u)
    vw = tl.where(xs > 0, vl, tl.where(yl > 0, vu, 0))
    vn = tl.where(yl > 0, vu, vw)
    vnw = tl.where((yl > 0) & (xs > 0), _v_at(plane, ref1, ref2, c1, c2, o - sh - sw, has_u & (xs > 0)), vn)
    vne = tl.where((yl > 0) & (xs < W - 1), _v_at(plane, ref1, ref2, c1, c2, o - sh + sw, has_ur), vn)
    vnne = tl.where((yl > 1) & (xs < W - 1),
                    _v_at(plane, ref1, ref2, c1, c2, o - 2 * sh + sw, has_ur & (yl > 1)), vne)
    return vw, vn, vnw, vne, vnne


@triton.jit
def _plane_setup(x_ptr, prm_ptr, k, stride_xp):
    mode = tl.load(prm_ptr + k * 5)
    q1 = tl.load(prm_ptr + k * 5 + 1)
    c1 = tl.load(prm_ptr + k * 5 + 2)
    q2 = tl.load(prm_ptr + k * 5 + 3)
    c2 = tl.load(prm_ptr + k * 5 + 4)
    plane = x_ptr + k.to(tl.int64) * stride_xp
    ref1 = x_ptr + tl.maximum(q1, 0).to(tl.int64) * stride_xp     # weight 0 where there is no reference
    ref2 = x_ptr + tl.maximum(q2, 0).to(tl.int64) * stride_xp
    return mode, q1, c1, q2, c2, plane, ref1, ref2


@triton.jit
def _blend_errors_kernel(
    # pointers
    x_ptr, prm_ptr, err_ptr,
    # sizes
    H, W, bits,
    stride_xp, stride_xh, stride_xw,
    # meta-parameters
    BLOCK_H: tl.constexpr, BLOCK_W: tl.constexpr,
):
    pid_w = tl.program_id(0)
    pid_h = tl.program_id(1)
    k = tl.program_id(2)
    esh = tl.maximum(bits - 8, 0)
    mode, q1, c1, q2, c2, plane, ref1, ref2 = _plane_setup(x_ptr, prm_ptr, k, stride_xp)
    if mode != 0:
        ys = (pid_h * BLOCK_H + tl.arange(0, BLOCK_H))[:, None]
        xs = (pid_w * BLOCK_W + tl.arange(0, BLOCK_W))[None, :]
        inside = (ys < H) & (xs < W)
        vw, vn, vnw, vne, vnne = _neighbours(plane, ref1, ref2, c1, c2, ys, xs, inside, H, W, stride_xh, stride_xw)
        v4 = 4 * _v_at(plane, ref1, ref2, c1, c2, ys * stride_xh + xs * stride_xw, inside)
        s0, s1, s2, s3, s4, s5 = _subpredictions(vw, vn, vnw, vne, vnne)
        plane_size = H * W
        e = err_ptr + k.to(tl.int64) * 6 * plane_size + ys * W + xs
        tl.store(e, _blend_err(v4, s0, esh).to(tl.int16), mask=inside)
        tl.store(e + plane_size, _blend_err(v4, s1, esh).to(tl.int16), mask=inside)
        tl.store(e + 2 * plane_size, _blend_err(v4, s2, esh).to(tl.int16), mask=inside)
        tl.store(e + 3 * plane_size, _blend_err(v4, s3, esh).to(tl.int16), mask=inside)
        tl.store(e + 4 * plane_size, _blend_err(v4, s4, esh).to(tl.int16), mask=inside)
        tl.store(e + 5 * plane_size, _blend_err(v4, s5, esh).to(tl.int16), mask=inside)


@triton.jit
def _err_sum(e, ys, xs, inside, W):
    """S = 2 (e(W) + e(N) + e(NW) + e(NE)) + e(WW) + e(NN) of one sub-predictor's errors ``e`` at (ys, xs)
    (``ys`` only decides which rows above exist: ``fused_encode`` passes the row inside the strip)."""
    has_u = inside & (ys > 0)
    s = 2 * tl.load(e - 1, mask=inside & (xs > 0), other=0).to(tl.int32)
    s += tl.load(e - 2, mask=inside & (xs > 1), other=0).to(tl.int32)
    s += 2 * tl.load(e - W, mask=has_u, other=0).to(tl.int32)
    s += 2 * tl.load(e - W - 1, mask=has_u & (xs > 0), other=0).to(tl.int32)
    s += 2 * tl.load(e - W + 1, mask=has_u & (xs < W - 1), other=0).to(tl.int32)
    s += tl.load(e - 2 * W, mask=inside & (ys > 1), other=0).to(tl.int32)
    return s


@triton.jit
def _blend_residual_kernel(
    # pointers
    x_ptr, prm_ptr, err_ptr, lut_ptr, out_ptr,
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
    half = 1 << (bits - 1)
    maxv = (1 << bits) - 1
    off = 1 << (bits + 4)                    # the blend's offset: s_i + off > 0 at every depth
    mode, q1, c1, q2, c2, plane, ref1, ref2 = _plane_setup(x_ptr, prm_ptr, k, stride_xp)
    ys = (pid_h * BLOCK_H + tl.arange(0, BLOCK_H))[:, None]
    xs = (pid_w * BLOCK_W + tl.arange(0, BLOCK_W))[None, :]
    inside = (ys < H) & (xs < W)
    o = ys * stride_xh + xs * stride_xw
    xv = tl.load(plane + o, mask=inside, other=0).to(tl.int32)
    ref = (c1 * tl.load(ref1 + o, mask=inside, other=0).to(tl.int32)
           + c2 * tl.load(ref2 + o, mask=inside, other=0).to(tl.int32)) >> 2
    vw, vn, vnw, vne, vnne = _neighbours(plane, ref1, ref2, c1, c2, ys, xs, inside, H, W, stride_xh, stride_xw)
    pv = _med(vw, vn, vnw)
    if mode != 0:
        s0, s1, s2, s3, s4, s5 = _subpredictions(vw, vn, vnw, vne, vnne)
        plane_size = H * W
        e = err_ptr + k.to(tl.int64) * 6 * plane_size + ys * W + xs
        tw = tl.zeros([BLOCK_H, BLOCK_W], tl.int64)
        ts = tl.zeros([BLOCK_H, BLOCK_W], tl.int64)
        tw, ts = _blend_term(_err_sum(e, ys, xs, inside, W), s0, lut_ptr, tw, ts, off)
        tw, ts = _blend_term(_err_sum(e + plane_size, ys, xs, inside, W), s1, lut_ptr, tw, ts, off)
        tw, ts = _blend_term(_err_sum(e + 2 * plane_size, ys, xs, inside, W), s2, lut_ptr, tw, ts, off)
        tw, ts = _blend_term(_err_sum(e + 3 * plane_size, ys, xs, inside, W), s3, lut_ptr, tw, ts, off)
        tw, ts = _blend_term(_err_sum(e + 4 * plane_size, ys, xs, inside, W), s4, lut_ptr, tw, ts, off)
        tw, ts = _blend_term(_err_sum(e + 5 * plane_size, ys, xs, inside, W), s5, lut_ptr, tw, ts, off)
        pv = _blend_finish(tw, ts, s0, off)
    no_ref = (q1 < 0) & (q2 < 0)
    pv = tl.where((ys == 0) & (xs == 0), tl.where(no_ref, half, 0), pv)
    pred = tl.minimum(tl.maximum(pv + ref, 0), maxv)
    s = (xv - pred + half) & maxv
    # out has the planes' dtype (uint8 or uint16): s < 2**bits fits either
    tl.store(out_ptr + k.to(tl.int64) * stride_op + ys * stride_oh + xs * stride_ow,
             s.to(out_ptr.dtype.element_ty), mask=inside)


_LUTS: dict = {}


def weight_lut(device) -> torch.Tensor:
    """``blend_ref.WEIGHT_LUT`` on ``device`` (uploaded once)."""
    from tricodec.blend_ref import WEIGHT_LUT
    key = str(device)
    if key not in _LUTS:
        _LUTS[key] = torch.from_numpy(np.ascontiguousarray(WEIGHT_LUT)).to(device)
    return _LUTS[key]


def check_params(params, n_planes: int, device) -> torch.Tensor:
    """The twin's parameter rules -> int32 (P, 5) tensor on ``device``."""
    from tricodec.blend_ref import check_params as check
    if isinstance(params, torch.Tensor):
        params = params.cpu().numpy()
    return torch.from_numpy(check(np.asarray(params), n_planes)).to(device)


def prepare(name: str, planes: torch.Tensor, params, scratch_per_sample: int, bits: int = 8,
            check_samples: bool = False) -> tuple:
    """The wrappers' common checks -> (params int32 (P, 5) on the device, the (P, H, W) output of planes'
    dtype, bits as an int): a uint8 or uint16 (P, H, W) tensor with the twin's depth rule
    (``predictor_ref.check_bits``: uint8 only at 8 bits), valid params, int32 offsets for it and
    ``scratch_per_sample`` times its size.  ``check_samples`` (the encoder's side) also refuses a sample
    >= ``2**bits``, as the twin does; paid only where the dtype can hold one (uint16 below 16 bits)."""
    np_dtype = {torch.uint8: np.uint8, torch.uint16: np.uint16}.get(getattr(planes, "dtype", None))
    if not isinstance(planes, torch.Tensor) or np_dtype is None or planes.ndim != 3:
        raise ValueError(f"{name} must be a uint8 or uint16 (P, H, W) tensor")
    bits = check_bits(bits, np_dtype)
    prm = check_params(params, planes.shape[0], planes.device)
    if scratch_per_sample * planes.numel() >= 2**31 or max(planes.stride()) * max(planes.shape) >= 2**31:
        raise ValueError("image too large for int32 offsets")
    if check_samples and planes.dtype == torch.uint16 and bits < 16 and planes.numel():
        # torch has few uint16 kernels; the same-size int16 view (no copy) has them all: a sample >= 2**15
        # shows there as a negative value (as kernels/_host.check_planes does for the MED kernels)
        v = planes.view(torch.int16)
        if bool(((v < 0) | (v > (1 << bits) - 1)).any()):
            raise ValueError(f"{name} hold a sample >= 2**{bits}")
    return prm, torch.empty(tuple(planes.shape), dtype=planes.dtype, device=planes.device), bits


def compute_blend_residuals(planes: torch.Tensor, params, bits: int = 8) -> torch.Tensor:
    """Residual symbols of every pixel, computed in parallel.

    Args:
        planes: uint8 (``bits == 8``) or torch.uint16 (any ``bits``), (P, H, W) in coding order, any
            strides, any device; every sample below ``2**bits``.
        params: int (P, 5): (mode, q1, c1, q2, c2) per plane (a sequence, array or tensor).
        bits: sample depth, 1..16.

    Returns:
        planes' dtype, (P, H, W), contiguous, on planes' device: residuals in [0, 2**bits).

    Raises:
        ValueError: as the twin: bad shape, dtype/bits combination or params, or a sample >= ``2**bits``.
    """
    prm, out, bits = prepare("planes", planes, params, N_SUB, bits, check_samples=True)
    p, h, w = planes.shape
    if planes.numel() == 0:
        return out
    err = torch.empty((p, N_SUB, h, w), dtype=torch.int16, device=planes.device)
    grid = (triton.cdiv(w, BLOCK_W), triton.cdiv(h, BLOCK_H), p)
    _blend_errors_kernel[grid](planes, prm, err, h, w, bits, *planes.stride(),
                               BLOCK_H=BLOCK_H, BLOCK_W=BLOCK_W, num_warps=NUM_WARPS)
    _blend_residual_kernel[grid](planes, prm, err, weight_lut(planes.device), out, h, w, bits, *planes.stride(),
                                 *out.stride(), BLOCK_H=BLOCK_H, BLOCK_W=BLOCK_W, num_warps=NUM_WARPS)
    return out
