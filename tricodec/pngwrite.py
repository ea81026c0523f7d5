"""A small PNG writer: for what Pillow cannot write (16-bit grey+alpha and colour, LA;16 / RGB;16 /
RGBA;16, with its metadata) and for fast decode output (8-bit L, LA, RGB, RGBA at low zlib levels: about
four times as fast as Pillow's writer, whose per-row adaptive filter choice costs more than zlib level 1
itself; files about as large: the "Up" filter loses ~3% to adaptive filtering, libdeflate wins it back).

Chunks in the order PNG requires (colour chunks and sBIT before PLTE/IDAT), the same chunks Pillow's
writer makes from :func:`tricodec.metadata.save_kwargs`' arguments, and the image data filtered row by
row with the "Up" filter (vectorised) and deflated at ``level`` (libdeflate, see :func:`deflate`).
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


_COLOUR_TYPES = {("L", 1): 0, ("LA", 2): 4, ("RGB", 3): 2, ("RGBA", 4): 6}


def deep_png(arr: np.ndarray, kwargs: dict, extra: list, level: int = 6) -> bytes:
    """uint16 (H, W, 2|3|4) (LA;16, RGB;16, RGBA;16) -> PNG bytes: see :func:`png_bytes`."""
    if arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[2] not in (2, 3, 4):
        raise WriteError(f"not a 16-bit grey+alpha or colour image: {arr.dtype} {arr.shape}")
    return png_bytes(arr, kwargs, extra, level)


def png_bytes(arr: np.ndarray, kwargs: dict, extra: list, level: int = 6) -> bytes:
    """uint8 or uint16 (H, W[, C]) grey, grey+alpha, RGB or RGBA -> PNG bytes; ``kwargs`` as
    ``metadata.save_kwargs(image, "PNG")`` gives them (icc_profile, dpi, exif, transparency, pnginfo),
    ``extra``: (type, data) chunks of ``metadata.png_extra_chunks``."""
    h, w = arr.shape[:2]
    c = 1 if arr.ndim == 2 else arr.shape[2]
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(arr.dtype)
    colour = _COLOUR_TYPES.get(({1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(c), c))
    if depth is None or colour is None:
        raise WriteError(f"cannot write a {arr.dtype} array of shape {arr.shape} as PNG")
    parts = [PNG_SIGNATURE, chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0))]
    info = kwargs.get("pnginfo")
    chunks = [(ch[0], ch[1]) for ch in (info.chunks if info is not None else [])]
    icc = kwargs.get("icc_profile")
    if icc:
        parts.append(chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc)))
    parts += [chunk(cid, data) for cid, data in chunks if cid in _EARLY and not (icc and cid == b"sRGB")]
    t = kwargs.get("transparency")
    if t is not None:
        if c == 3 and isinstance(t, tuple) and len(t) == 3:
            parts.append(chunk(b"tRNS", struct.pack(">3H", *t)))
        elif c == 1 and isinstance(t, int) and 0 <= t <= 0xFFFF:
            parts.append(chunk(b"tRNS", struct.pack(">H", t)))
        else:
            raise WriteError(f"cannot write transparency {t!r} for a {c}-channel PNG")
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
    parts += [chunk(b"IDAT", deflate(filtered_rows(arr), level)), chunk(b"IEND", b"")]
    return b"".join(parts)


def deflate(data: bytes, level: int) -> bytes:
    """A zlib stream of ``data`` (what IDAT holds): libdeflate through imagecodecs (a dependency; about
    twice as fast as zlib at level 1, and smaller), else zlib; both release the GIL."""
    try:
        import imagecodecs

        return imagecodecs.deflate_encode(data, level=level)
    except (ImportError, AttributeError):  # imagecodecs built without libdeflate
        return zlib.compress(data, level)
