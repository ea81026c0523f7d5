"""16-bit images (1-16 significant bits a sample) through any model: the depth split.

A model's coder codes 8-bit residual symbols with contexts and tables learned on 8-bit photos. A deep
image reaches it like this (planes in the model's coding order; everything integer)::

    k = trailing zero bits every sample shares       # data shifted up in its 16-bit container
    D = bit length of max(x >> k)  (>= 1)             # 12-bit data in 16-bit samples: D = 12
    v = x >> k
    s = blend_ref's residual symbol of v at depth D: s in [0, 2^D) (each plane's mode, MED or the blend,
        and colour reference chosen as for an 8-bit image by blend_select, at depth D: recorded), in
        bands of R rows predicted each as an image of its own (so that a decoder scans them side by
        side: a one-plane image would otherwise be one sequential scan; R recorded)
    e = s - 2^(D-1)                                   # signed residual
    per plane p, a shift t_p (the encoder's choice, 0 <= t_p < D; recorded):
        q   = e >> t_p                                # floor; q in [-2^(E-1), 2^(E-1)), E = D - t_p
        low = e & (2^t_p - 1)                         # the t_p low bits, stored raw
        sym = clamp(q, -128, 127) + 128               # uint8: what the model codes, with its contexts
        if E > 8 and sym in (0, 255): q follows exactly in E raw bits (q + 2^(E-1))   # escape

The shift puts the residuals in the range the 8-bit contexts and tables know; the bits below it are close
to uniform noise in a deep photo, so storing them raw costs little. The decoder inverts each step:
``e = (q << t_p) | low``, ``s = e + 2^(D-1)``, the predictor's scan at depth D, ``x = v << k``.

The model's sections (SIDE, LANES) hold the symbols as for an 8-bit image; the ``DEEP`` section holds::

    D (u8) | k (u8) | predictor (u8: 1 = blend_ref's; other values are refused) | t_p (u8 x P)
    | P x 5 int8: each plane's blend parameters (mode, q1, c1, q2, c2) | R (u32: rows of a predictor band)
    | per plane: its escapes, E_p bits each, LSB first, padded to a byte (none when E_p <= 8)
    | per plane: its low bits as t_p bit planes (bit 0 first), each ceil(H*W / 8) bytes, LSB first

Only the choice of the shifts uses floats (an entropy estimate); it is recorded, never recomputed.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np

from . import blend_ref as br
from . import container as fmt
from .blend_select import choose_params
from .errors import DecodeError

MAX_BITS = 16
BAND_PIXELS = 1 << 19      # the encoder's predictor bands: one per this many pixels ...
MAX_BANDS = 8              # ... at most this many (each band's first row loses the row above it: +0.2%)
SAMPLE_ROWS = 256          # rows the shift estimate reads at most (spread over the image)
_BUCKETS = 16              # context buckets of the estimate: log2 of 1 + |q_W| + |q_N|


def depth_of(planes: np.ndarray) -> tuple[int, int]:
    """uint16 planes -> (D, k): the bits every sample needs after dropping the ``k`` low zero bits all
    samples share."""
    ored = int(np.bitwise_or.reduce(planes, axis=None)) if planes.size else 0
    k = (ored & -ored).bit_length() - 1 if ored else 0
    top = int(planes.max()) >> k if planes.size else 0
    return max(1, top.bit_length()), k


# ---- the encoder's choice of shifts (an estimate: recorded, never recomputed) ----

def _tokens(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``context_ref._token`` of clamp(q) (vectorised) -> (token, extra bits)."""
    q = np.clip(q, -128, 127)
    z = np.where(q >= 0, 2 * q, -2 * q - 1)
    n = np.maximum(np.floor(np.log2(np.maximum(z, 1))).astype(np.int64), 4)
    big = z >= 16
    tok = np.where(big, 16 + 2 * (n - 4) + ((z >> (n - 1)) & 1), z)
    return tok, np.where(big, n - 1, 0)


def _cost(up: np.ndarray, cur: np.ndarray, depth: int, t: int) -> float:
    """Estimated bits a sample of rows ``cur`` (n, W) of signed residuals, ``up`` the rows above them, at
    shift ``t``: the token's entropy given a bucket of its left and upper neighbours' |q| (what the
    contexts see), its extra bits, the t raw bits and the escapes."""
    q = cur[:, 1:] >> t
    near = np.abs(cur[:, :-1] >> t) + np.abs(up[:, 1:] >> t)
    tok, extra = _tokens(q)
    bucket = np.minimum(np.floor(np.log2(1 + near)).astype(np.int64), _BUCKETS - 1)
    joint = np.bincount((bucket * 24 + tok).ravel(), minlength=_BUCKETS * 24).reshape(_BUCKETS, 24)
    n = joint.sum()
    if n == 0:
        return float(t)
    rows = np.broadcast_to(joint.sum(axis=1, keepdims=True), joint.shape)
    nz = joint > 0
    bits = -(joint[nz] * np.log2(joint[nz] / rows[nz])).sum()
    escapes = int(np.count_nonzero((q <= -128) | (q >= 127))) if depth - t > 8 else 0
    return (bits + extra.sum() + escapes * (depth - t)) / n + t


def _sample_rows(h: int) -> np.ndarray:
    """Rows the estimate reads (each with the row above it), spread over the image."""
    if h <= SAMPLE_ROWS:
        return np.arange(1, h)
    return np.unique(np.linspace(1, h - 1, SAMPLE_ROWS).astype(np.int64))


def choose_shifts(s: np.ndarray, depth: int) -> tuple[int, ...]:
    """uint16 (P, H, W) residual symbols in [0, 2^D) -> each plane's shift (the cheapest by :func:`_cost`)."""
    rows = _sample_rows(s.shape[1])
    if rows.size == 0:
        return (0,) * s.shape[0]
    out = []
    for plane in s:
        up = plane[rows - 1].astype(np.int32) - (1 << (depth - 1))
        cur = plane[rows].astype(np.int32) - (1 << (depth - 1))
        costs = [_cost(up, cur, depth, t) for t in range(depth)]
        out.append(int(np.argmin(costs)))
    return tuple(out)


# ---- the split and its inverse ----

def _pack_bits(values: np.ndarray, width: int) -> bytes:
    """Non-negative ints < 2**width -> ``width`` bits each, LSB first, padded to a byte."""
    if width == 0 or values.size == 0:
        return b""
    bits = ((values.reshape(-1, 1) >> np.arange(width)) & 1).astype(np.uint8)
    return np.packbits(bits.ravel(), bitorder="little").tobytes()


def _unpack_bits(data: bytes, n: int, width: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(data, np.uint8), count=n * width, bitorder="little")
    return (bits.reshape(n, width).astype(np.int32) << np.arange(width, dtype=np.int32)).sum(axis=1,
                                                                                          dtype=np.int32)


def _bit_planes(low: np.ndarray, t: int) -> bytes:
    """One plane's low bits as ``t`` packed bit planes (bit 0 first): a byte per 8 samples per bit."""
    flat = low.ravel()
    return b"".join(np.packbits(((flat >> b) & 1).astype(np.uint8), bitorder="little").tobytes()
                    for b in range(t))


def split(s: np.ndarray, depth: int, shifts: tuple) -> tuple[np.ndarray, bytes]:
    """uint16 (P, H, W) residual symbols in [0, 2^D) -> (uint8 (P, H, W) symbols, the DEEP section's
    payload). One plane's signed residuals at a time (int32: a whole image of them would double the
    encoder's peak memory)."""
    n_planes = s.shape[0]
    sym = np.empty(s.shape, np.uint8)
    escapes, lows = [], []
    for p in range(n_planes):
        t = shifts[p]
        e = s[p].astype(np.int32) - (1 << (depth - 1))
        q = e >> t
        sym[p] = (np.clip(q, -128, 127) + 128).astype(np.uint8)
        width = depth - t
        if width > 8:
            hit = (sym[p] == 0) | (sym[p] == 255)
            escapes.append(_pack_bits((q[hit] + (1 << (width - 1))).astype(np.int64), width))
        lows.append(_bit_planes((e & ((1 << t) - 1)).astype(np.uint16), t))
    return sym, b"".join(escapes) + b"".join(lows)


PRED_BLEND = 1             # the DEEP section's predictor byte: blend_ref's (room for another one)


class DeepParams(NamedTuple):
    depth: int                 # D: bits a sample uses after the zero shift
    zeros: int                 # k: low zero bits every sample shares
    shifts: tuple              # t_p: each plane's shift
    blend: np.ndarray          # int32 (P, 5): the predictor's parameters
    band_rows: int             # R: rows of a predictor band


def band_rows(height: int, width: int) -> int:
    """The encoder's predictor band height: about BAND_PIXELS pixels a band, MAX_BANDS at most."""
    n = min(MAX_BANDS, max(1, height * width // BAND_PIXELS))
    return -(-height // n)


def head_size(n_planes: int) -> int:
    return 3 + 6 * n_planes + 4


def pack_params(p: DeepParams) -> bytes:
    """The DEEP section's head."""
    return (bytes([p.depth, p.zeros, PRED_BLEND, *p.shifts]) + np.asarray(p.blend, np.int8).tobytes()
            + int(p.band_rows).to_bytes(4, "little"))


def unpack_params(payload: memoryview, shape: tuple) -> DeepParams:
    """The DEEP section's head for planes of ``shape`` (P, H, W) -> its DeepParams, validated."""
    n_planes, height = shape[0], shape[1]
    if len(payload) < 3:
        raise DecodeError("truncated depth section")
    if payload[2] != PRED_BLEND:
        raise DecodeError(f"unknown predictor {payload[2]} in the depth section (written by a newer tricodec?)")
    if len(payload) < head_size(n_planes):
        raise DecodeError("truncated depth section")
    depth, zeros = payload[0], payload[1]
    shifts = tuple(payload[3:3 + n_planes])
    rows = int.from_bytes(bytes(payload[3 + 6 * n_planes:head_size(n_planes)]), "little")
    if not 1 <= depth <= MAX_BITS or depth + zeros > MAX_BITS or any(t >= depth for t in shifts) \
            or not 1 <= rows <= height:
        raise DecodeError("invalid depth parameters")
    params = np.frombuffer(bytes(payload[3 + n_planes:3 + 6 * n_planes]), np.int8).astype(np.int32)
    try:
        blend = br.check_params(params.reshape(n_planes, 5), n_planes)
    except ValueError as e:
        raise DecodeError(f"bad predictor parameters: {e}") from None
    return DeepParams(depth, zeros, shifts, blend, rows)


def join(sym: np.ndarray, body: memoryview, depth: int, shifts: tuple) -> np.ndarray:
    """Inverse of :func:`split` (``body``: the DEEP payload after its head) -> uint16 (P, H, W) residual
    symbols s in [0, 2^D). DecodeError when ``body`` does not hold exactly what the symbols need. One
    plane at a time: the escapes of plane p, then its low bits (they follow every plane's escapes)."""
    n_planes, h, w = sym.shape
    n = h * w
    plane_bytes = -(-n // 8)
    low_at = len(body) - sum(shifts) * plane_bytes     # where the low bits start
    if low_at < 0:
        raise DecodeError("truncated depth section")
    pos = 0
    out = np.empty(sym.shape, np.uint16)
    half = 1 << (depth - 1)
    for p in range(n_planes):
        e = sym[p].astype(np.int32) - 128
        width = depth - shifts[p]
        if width > 8:
            hit = (sym[p] == 0) | (sym[p] == 255)
            n_hit = int(np.count_nonzero(hit))
            size = -(-n_hit * width // 8)
            if pos + size > low_at:
                raise DecodeError("truncated depth section")
            e[hit] = _unpack_bits(bytes(body[pos:pos + size]), n_hit, width) - (1 << (width - 1))
            pos += size
        e <<= shifts[p]
        for b in range(shifts[p]):
            bits = np.unpackbits(np.frombuffer(body, np.uint8, plane_bytes, low_at), count=n, bitorder="little")
            e |= bits.reshape(h, w).astype(np.int32) << b
            low_at += plane_bytes
        e += half
        if e.min() < 0 or e.max() >= 2 * half:
            raise DecodeError("residual out of range: the file is corrupted")
        out[p] = e
    if pos != len(body) - sum(shifts) * plane_bytes:
        raise DecodeError("depth section does not match the image")
    return out


# ---- the model path of a deep image ----

def summary(data: bytes) -> dict:
    """What a model-coded 16-bit file's DEEP section says (``tricodec info``): the significant bits, the
    zero bits dropped, each plane's shift and the number of predictor bands."""
    header, sections = fmt.unpack(data)
    if fmt.SEC_DEEP not in sections:
        raise DecodeError("not a model-coded 16-bit file")
    p = unpack_params(sections[fmt.SEC_DEEP], (header.channels, header.height, header.width))
    return {"bits": p.depth, "zero_bits": p.zeros, "shifts": list(p.shifts),
            "predictor_bands": len(_bands(header.height, p.band_rows))}


def _bands(height: int, rows: int) -> list[tuple[int, int]]:
    return [(y, min(y + rows, height)) for y in range(0, height, rows)]


def encode_deep(model, planes: np.ndarray, backend) -> list:
    """uint16 (P, H, W) planes in coding order -> the model's sections and the DEEP section."""
    depth, zeros = depth_of(planes)
    v = np.ascontiguousarray(planes >> zeros if zeros else planes)
    blend = choose_params(v, depth)
    rows = band_rows(*v.shape[1:])
    s = np.empty_like(v)
    for y0, y1 in _bands(v.shape[1], rows):
        band = backend.upload(np.ascontiguousarray(v[:, y0:y1]))
        s[:, y0:y1] = backend.download(backend.compute_blend_residuals(band, blend, depth))
    shifts = choose_shifts(s, depth)
    sym, body = split(s, depth, shifts)
    sections = model.encode_residuals_batch([backend.upload(sym)], backend)[0]
    return list(sections) + [(fmt.SEC_DEEP, pack_params(DeepParams(depth, zeros, shifts, blend, rows)) + body)]


def _scan(s: np.ndarray, p: DeepParams, backend) -> np.ndarray:
    """The predictor's decode scan, band by band: side by side on the CPU (numba releases the GIL), one
    after another on a GPU (each band a wavefront of its own)."""
    out = np.empty_like(s)

    def one(band):
        y0, y1 = band
        res = backend.upload(np.ascontiguousarray(s[:, y0:y1]))
        out[:, y0:y1] = backend.download(backend.reconstruct_blend(res, p.blend, p.depth))

    bands = _bands(s.shape[1], p.band_rows)
    if backend.name == "cpu" and len(bands) > 1:
        with ThreadPoolExecutor(min(len(bands), os.cpu_count() or 1)) as pool:
            list(pool.map(one, bands))
    else:
        for band in bands:
            one(band)
    return out


def decode_deep(model, sections: dict, shape: tuple, backend) -> np.ndarray:
    """Inverse of :func:`encode_deep` -> uint16 (P, H, W) planes in coding order, on the host."""
    payload = sections.get(fmt.SEC_DEEP)
    if payload is None:
        raise DecodeError("16-bit file without its depth section")
    p = unpack_params(payload, shape)
    sym = backend.download(model.decode_residuals_batch([sections], [shape], backend)[0])
    v = _scan(join(sym, payload[head_size(shape[0]):], p.depth, p.shifts), p, backend)
    return v << p.zeros if p.zeros else v
