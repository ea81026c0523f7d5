"""The optional META section: metadata stored verbatim so ``decode`` restores what ``encode`` read.

Kept: the ICC profile, EXIF, XMP, PNG text chunks, and PNG transparency (``tRNS``), which changes what
the pixels mean. Payload: ``count (u16)`` entries of ``key_len (u8) | key (ASCII) | value_len (u32) |
value``, then ``crc32 (u32)`` of everything before it. Keys: ``icc``, ``exif``, ``xmp``,
``transparency`` (JSON), ``text:<name>`` (UTF-8).
"""
from __future__ import annotations

import json
import struct
import zlib

from PIL import Image, PngImagePlugin

from .errors import DecodeError

MAX_ENTRIES = 4096
_ENTRY = struct.Struct("<I")


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
        meta["transparency"] = json.dumps(
            {"bytes": t.hex()} if isinstance(t, (bytes, bytearray)) else {"value": t}).encode()
    text = getattr(image, "text", None) if image.format == "PNG" else None
    for k, v in (text or {}).items():
        key = "text:" + k
        if key.isascii() and len(key) < 256:
            meta[key] = str(v).encode("utf-8")
    return meta


def pack(meta: dict[str, bytes]) -> bytes:
    parts = [struct.pack("<H", len(meta))]
    for key, value in meta.items():
        k = key.encode("ascii")
        parts += [bytes([len(k)]), k, _ENTRY.pack(len(value)), value]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def unpack(payload: memoryview) -> dict[str, bytes]:
    data = bytes(payload)
    if len(data) < 6 or zlib.crc32(data[:-4]) != struct.unpack_from("<I", data, len(data) - 4)[0]:
        raise DecodeError("corrupted metadata section")
    (count,) = struct.unpack_from("<H", data, 0)
    if count > MAX_ENTRIES:
        raise DecodeError("corrupted metadata section")
    pos, end, meta = 2, len(data) - 4, {}
    for _ in range(count):
        if pos + 1 > end:
            raise DecodeError("corrupted metadata section")
        n = data[pos]
        pos += 1
        if pos + n + 4 > end:
            raise DecodeError("corrupted metadata section")
        key = data[pos:pos + n].decode("ascii", "replace")
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
        try:
            t = json.loads(meta["transparency"])
            image.info["transparency"] = bytes.fromhex(t["bytes"]) if "bytes" in t else \
                (tuple(t["value"]) if isinstance(t["value"], list) else t["value"])
        except (ValueError, KeyError, TypeError):
            raise DecodeError("corrupted transparency metadata") from None
    for key, value in meta.items():
        if key.startswith("text:"):
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
