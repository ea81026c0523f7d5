"""The optional META section: metadata stored verbatim so ``decode`` restores what ``encode`` read.

Kept: the ICC profile, EXIF, XMP, PNG text chunks, and PNG transparency (``tRNS``), which changes what
the pixels mean. Payload: ``count (u32)`` entries of ``key_len (u16) | key (UTF-8) | value_len (u32) |
value``, then ``crc32 (u32)`` of everything before it. Keys: ``icc``, ``exif``, ``xmp``,
``transparency``, ``text:<name>`` (value UTF-8). A transparency value is ``b"i" + u32`` (a colour
index or grey level), ``b"t" + u32 x n`` (an RGB colour) or ``b"b" + bytes`` (per-palette-entry alpha).
"""
from __future__ import annotations

import struct
import zlib

from PIL import Image, PngImagePlugin

from .errors import DecodeError

_ENTRY = struct.Struct("<I")
_KEY = struct.Struct("<H")
_MIN_ENTRY = _KEY.size + _ENTRY.size


def collect(image) -> dict[str, bytes]:
    """Metadata of a PIL image worth keeping (empty for numpy arrays)."""
    if not isinstance(image, Image.Image):
        return {}
    info = image.info
    meta: dict[str, bytes] = {}
    for key, name in (("icc_profile", "icc"), ("exif", "exif"), ("xmp", "xmp")):
        value = info.get(key)
        if isinstance(value, str):
            value = value.encode("utf-8")
        if isinstance(value, (bytes, bytearray)) and value:
            meta[name] = bytes(value)
    if "transparency" in info:
        t = info["transparency"]
        if isinstance(t, (bytes, bytearray)):
            meta["transparency"] = b"b" + bytes(t)
        elif isinstance(t, int):
            meta["transparency"] = b"i" + struct.pack("<I", t)
        elif isinstance(t, tuple) and all(isinstance(v, int) for v in t):
            meta["transparency"] = b"t" + struct.pack(f"<{len(t)}I", *t)
    if image.format == "PNG":
        text = image.text
    else:  # an image tricodec decoded keeps its text chunks as str entries of info (see apply)
        text = {k: v for k, v in info.items() if isinstance(v, str) and k not in ("icc_profile", "exif", "xmp")}
    for k, v in text.items():
        if valid_text_key(k):  # a PNG keyword: only such keys can be written back as a text chunk
            meta["text:" + k] = str(v).encode("utf-8")
    if "transparency" in meta and not _transparency_fits(image.mode, _transparency(meta["transparency"])):
        del meta["transparency"]  # Pillow would refuse to write it back: it never meant anything
    return meta


def valid_text_key(key: str) -> bool:
    """A PNG text keyword: 1-79 Latin-1 characters, no NUL."""
    try:
        return 0 < len(key.encode("latin-1")) <= 79 and "\0" not in key
    except UnicodeEncodeError:
        return False


def _transparency_fits(mode: str, t) -> bool:
    """Does a transparency value of this type make sense (and can it be saved) for this mode?"""
    if mode in ("P", "PA"):
        return (isinstance(t, int) and 0 <= t <= 255) or (isinstance(t, bytes) and len(t) <= 256)
    if mode in ("1", "L", "I", "I;16"):
        return isinstance(t, int) and 0 <= t <= 0xFFFF
    if mode == "RGB":
        return isinstance(t, tuple) and len(t) == 3 and all(0 <= v <= 0xFFFF for v in t)
    return False


def _transparency(raw: bytes):
    kind, body = raw[:1], raw[1:]
    if kind == b"b":
        return body
    if kind == b"i" and len(body) == 4:
        return struct.unpack("<I", body)[0]
    if kind == b"t" and len(body) % 4 == 0 and 0 < len(body) <= 16:
        return struct.unpack(f"<{len(body) // 4}I", body)
    raise DecodeError("corrupted transparency metadata")


def pack(meta: dict[str, bytes]) -> bytes:
    parts = [struct.pack("<I", len(meta))]
    for key, value in meta.items():
        k = key.encode("utf-8")[:0xFFFF]
        parts += [_KEY.pack(len(k)), k, _ENTRY.pack(len(value)), value]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def unpack(payload: memoryview) -> dict[str, bytes]:
    data = bytes(payload)
    if len(data) < 8 or zlib.crc32(data[:-4]) != struct.unpack_from("<I", data, len(data) - 4)[0]:
        raise DecodeError("corrupted metadata section")
    (count,) = struct.unpack_from("<I", data, 0)
    pos, end, meta = 4, len(data) - 4, {}
    if count > (end - pos) // _MIN_ENTRY:
        raise DecodeError("corrupted metadata section")
    for _ in range(count):
        if pos + _KEY.size > end:
            raise DecodeError("corrupted metadata section")
        (n,) = _KEY.unpack_from(data, pos)
        pos += _KEY.size
        if pos + n + 4 > end:
            raise DecodeError("corrupted metadata section")
        key = data[pos:pos + n].decode("utf-8", "replace")
        (length,) = _ENTRY.unpack_from(data, pos + n)
        pos += n + 4
        if pos + length > end:
            raise DecodeError("corrupted metadata section")
        meta[key] = data[pos:pos + length]
        pos += length
    if pos != end:
        raise DecodeError("corrupted metadata section")
    return meta


def apply(image, meta: dict[str, bytes]) -> None:
    """Put metadata back into a decoded PIL image's ``info`` (and ``text`` for PNG text chunks)."""
    if not meta or not isinstance(image, Image.Image):
        return
    for name, key in (("icc", "icc_profile"), ("exif", "exif"), ("xmp", "xmp")):
        if name in meta:
            image.info[key] = meta[name]
    if "transparency" in meta:
        t = _transparency(meta["transparency"])
        if not _transparency_fits(image.mode, t):
            raise DecodeError("corrupted metadata: transparency does not fit the image mode")
        image.info["transparency"] = t
    for key, value in meta.items():
        if key.startswith("text:"):
            if not valid_text_key(key[5:]):
                raise DecodeError("corrupted metadata: invalid text keyword")
            image.info[key[5:]] = value.decode("utf-8", "replace")


def save_kwargs(image, fmt: str) -> dict:
    """Pillow ``save`` arguments that write the image's kept metadata in format ``fmt``."""
    if not isinstance(image, Image.Image):
        return {}
    info, kw = image.info, {}
    if "icc_profile" in info:
        kw["icc_profile"] = info["icc_profile"]
    if "exif" in info and fmt in ("PNG", "TIFF", "JPEG", "WEBP"):
        kw["exif"] = info["exif"]
    if fmt == "PNG":
        if "transparency" in info:
            kw["transparency"] = info["transparency"]
        texts = {k: v for k, v in info.items() if isinstance(v, str) and k not in ("icc_profile", "exif", "xmp")}
        if texts:
            png = PngImagePlugin.PngInfo()
            for k, v in texts.items():
                png.add_itxt(k, v) if not v.isascii() else png.add_text(k, v)
            kw["pnginfo"] = png
    return kw
