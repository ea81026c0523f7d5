"""The FALLBACK section: images the model does not code, or codes worse than a simple lossless format.

Payload: ``kind (u8)`` then

* ``STORED`` (0) / ``LZMA`` (2): ``palette_mode (4 bytes ASCII, NUL-padded) | palette_len (u32) |
  palette | pixels`` where pixels are the raw bytes (``LZMA``: xz-compressed) of Pillow's ``tobytes()``
  or, for deep arrays, big-endian uint16 samples;
* ``PNG`` (1): a PNG file written by Pillow (used only after decoding it back proved it exact).
"""
from __future__ import annotations

import io
import lzma
import struct

import numpy as np
from PIL import Image

from .errors import DecodeError
from .pixels import DEEP_MODES, PNG_MODES, palette, pixel_bytes

STORED, PNG, LZMA = 0, 1, 2
_PAL = struct.Struct("<4sI")


def _same(a: Image.Image, b: Image.Image) -> bool:
    return a.mode == b.mode and a.size == b.size and a.tobytes() == b.tobytes() and palette(a) == palette(b)


def encode_png(image) -> bytes | None:
    """PNG bytes of the image if a PNG holds it exactly, else None."""
    if not isinstance(image, Image.Image) or image.mode not in PNG_MODES:
        return None
    buf = io.BytesIO()
    try:
        image.save(buf, format="PNG")
        with Image.open(io.BytesIO(buf.getvalue())) as back:
            back.load()
            if not _same(image, back):
                return None
    except Exception:
        return None
    return bytes([PNG]) + buf.getvalue()


def encode_raw(image, compress: bool) -> bytes:
    pmode, pal = palette(image)
    data = pixel_bytes(image)
    if compress:
        data = lzma.compress(data, preset=6)
    return bytes([LZMA if compress else STORED]) + _PAL.pack(pmode.encode("ascii"), len(pal)) + pal + data


def encode_fallback(image, try_png: bool = True) -> bytes:
    """The smallest exact fallback payload of ``image``."""
    candidates = [encode_raw(image, compress=True)]
    if try_png:
        png = encode_png(image)
        if png is not None:
            candidates.append(png)
    stored_size = 1 + _PAL.size + len(pixel_bytes(image))
    best = min(candidates, key=len)
    return best if len(best) < stored_size else encode_raw(image, compress=False)


def decode_fallback(payload: memoryview, mode: str, width: int, height: int, channels: int):
    """-> PIL image or deep array with exactly the header's mode and size."""
    if len(payload) < 1:
        raise DecodeError("empty fallback section")
    kind = payload[0]
    body = bytes(payload[1:])
    if kind == PNG:
        try:
            with Image.open(io.BytesIO(body)) as im:
                if im.format != "PNG":
                    raise ValueError("not PNG")
                if im.size != (width, height) or im.mode != mode:
                    raise DecodeError("fallback image does not match the header")
                im.load()
                return im.copy()
        except DecodeError:
            raise
        except Exception as e:
            raise DecodeError(f"corrupted fallback PNG ({type(e).__name__})") from None
    if kind not in (STORED, LZMA):
        raise DecodeError(f"unknown fallback kind {kind}")
    if len(body) < _PAL.size:
        raise DecodeError("truncated fallback section")
    pmode_raw, pal_len = _PAL.unpack_from(body, 0)
    if _PAL.size + pal_len > len(body) or pal_len > 1024:
        raise DecodeError("corrupted fallback palette")
    pmode = pmode_raw.rstrip(b"\0").decode("ascii", "replace")
    pal = body[_PAL.size:_PAL.size + pal_len]
    data = body[_PAL.size + pal_len:]
    expected = _raw_size(mode, width, height, channels)
    if kind == LZMA:
        try:
            dec = lzma.LZMADecompressor()
            data = dec.decompress(data, max_length=expected + 1)
        except lzma.LZMAError:
            raise DecodeError("corrupted fallback data") from None
    if len(data) != expected:
        raise DecodeError("fallback data has the wrong size")
    if mode in DEEP_MODES:
        return np.frombuffer(data, dtype=">u2").astype(np.uint16).reshape(height, width, channels)
    try:
        im = Image.frombytes(mode, (width, height), data)
        if pal and mode not in ("P", "PA"):
            raise DecodeError("palette stored for a mode without one")
        if pal:
            im.putpalette(pal, pmode)
    except Exception as e:
        raise DecodeError(f"cannot rebuild a {mode} image ({type(e).__name__})") from None
    return im


def _raw_size(mode: str, width: int, height: int, channels: int) -> int:
    if mode in DEEP_MODES:
        return width * height * channels * 2
    try:
        return len(Image.new(mode, (1, 1)).tobytes()) * width * height if mode != "1" else ((width + 7) // 8) * height
    except Exception:
        raise DecodeError(f"unknown image mode {mode!r}") from None
