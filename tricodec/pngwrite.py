"""A small PNG writer for what Pillow cannot write: 16-bit colour (RGB;16, RGBA;16) with its metadata.

Chunks in the order PNG requires (colour chunks and sBIT before PLTE/IDAT), the same chunks Pillow's
writer makes from :func:`tricodec.metadata.save_kwargs`' arguments, and the image data filtered row by
row with the "Up" filter (vectorised) and deflated at ``level``.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

from .errors import WriteError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EARLY = (b"cHRM", b"cICP", b"gAMA", b"sBIT", b"sRGB", b"tIME")   # Pillow's writer puts these before PLTE


def chunk(cid: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + cid + data + struct.pack(">I", zlib.crc32(cid + data))


def filtered_rows(arr: np.ndarray) -> bytes:
    """Image rows as PNG scanlines: filter type 2 ("Up": each byte minus the byte above, mod 256) before
    every row; samples big-endian."""
    h = arr.shape[0]
    raw = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder(">"), copy=False)).view(np.uint8).reshape(h, -1)
    out = np.empty((h, raw.shape[1] + 1), np.uint8)
    out[:, 0] = 2
    out[0, 1:] = raw[0]
    np.subtract(raw[1:], raw[:-1], out=out[1:, 1:])
    return out.tobytes()


def deep_png(arr: np.ndarray, kwargs: dict, extra: list, level: int = 6) -> bytes:
    """uint16 (H, W, 3|4) -> PNG bytes; ``kwargs`` as ``metadata.save_kwargs(image, "PNG")`` gives them
    (icc_profile, dpi, exif, transparency, pnginfo), ``extra``: (type, data) chunks of
    ``metadata.png_extra_chunks``."""
    h, w, c = arr.shape
    if arr.dtype != np.uint16 or c not in (3, 4):
        raise WriteError(f"not a 16-bit colour image: {arr.dtype} {arr.shape}")
    parts = [PNG_SIGNATURE, chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2 if c == 3 else 6, 0, 0, 0))]
    info = kwargs.get("pnginfo")
    chunks = [(ch[0], ch[1]) for ch in (info.chunks if info is not None else [])]
    icc = kwargs.get("icc_profile")
    if icc:
        parts.append(chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc)))
    parts += [chunk(cid, data) for cid, data in chunks if cid in _EARLY and not (icc and cid == b"sRGB")]
    t = kwargs.get("transparency")
    if t is not None:
        if c != 3 or not (isinstance(t, tuple) and len(t) == 3):
            raise WriteError(f"cannot write transparency {t!r} for a {c}-channel 16-bit PNG")
        parts.append(chunk(b"tRNS", struct.pack(">3H", *t)))
    dpi = kwargs.get("dpi")
    if dpi:
        ppm = [int(d / 0.0254 + 0.5) for d in dpi]
        if not all(0 < v <= 0xFFFFFFFF for v in ppm):
            raise WriteError(f"PNG cannot hold a resolution of {dpi[0]:g}x{dpi[1]:g} dpi")
        parts.append(chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1)))
    parts += [chunk(cid, data) for cid, data in extra]
    parts += [chunk(cid, data) for cid, data in chunks if cid not in _EARLY]
    exif = kwargs.get("exif")
    if exif:
        exif = bytes(exif)
        parts.append(chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    parts += [chunk(b"IDAT", zlib.compress(filtered_rows(arr), level)), chunk(b"IEND", b"")]
    return b"".join(parts)
