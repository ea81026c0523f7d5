"""The optional META section: metadata stored verbatim so ``decode`` restores what ``encode`` read.

Kept: the ICC profile, EXIF, XMP, PNG text chunks, PNG transparency (``tRNS``), which changes what the
pixels mean, resolution (PNG ``pHYs``, TIFF/JPEG dpi) and the PNG colour chunks ``gAMA``, ``cHRM``,
``sRGB``. Payload: ``count (u32)`` entries of ``key_len (u16) | key (UTF-8) | value_len (u32) | value``,
then ``crc32 (u32)`` of everything before it. Keys: ``icc``, ``exif``, ``xmp``, ``transparency``,
``text:<name>`` (value UTF-8), and since 2026-11 ``dpi`` and ``resolution`` (two little-endian float64:
dots per inch, or a ratio without unit), ``gamma`` (u32, the ``gAMA`` value: gamma x 100000),
``chromaticity`` (8 x u32, the ``cHRM`` values) and ``srgb`` (u8, the rendering intent). A
transparency value is ``b"i" + u32`` (a colour index or grey level), ``b"t" + u32 x n`` (an RGB colour)
or ``b"b" + bytes`` (per-palette-entry alpha). A decoder ignores keys it does not know, so adding keys
keeps older files decoding and lets older decoders read newer files.

Metadata is data, never writer options: :func:`save_kwargs` builds the arguments that write the kept
entries, and nothing else of ``info`` reaches Pillow's writers (``pixels.write_image``).
"""
from __future__ import annotations

import math
import struct
import zlib

from PIL import Image, PngImagePlugin

from .errors import DecodeError, WriteError

_ENTRY = struct.Struct("<I")
_KEY = struct.Struct("<H")
_MIN_ENTRY = _KEY.size + _ENTRY.size
_PAIR = struct.Struct("<dd")
_XMP_TEXT = "XML:com.adobe.xmp"   # the PNG iTXt keyword that holds XMP
# Pillow's names for the PNG colour chunks (also their META keys) and their values (u32: x 100000); little-
# endian in META, big-endian in the PNG chunk.
_PNG_COLOUR = (("gamma", "I"), ("chromaticity", "8I"), ("srgb", "B"))
# info keys Pillow's readers and writers give a meaning: a text chunk of that name stays in ``text``
# only, or it would be taken for that meaning (a text "exif" as EXIF, a text "compression" as a codec).
_PILLOW_KEYS = {"icc_profile", "exif", "xmp", "transparency", "dpi", "aspect", "resolution", "gamma",
                "chromaticity", "srgb", "compression", "loop", "duration", "disposal", "blend", "background",
                "interlace", "default_image", "bbox", "progressive", "progression", "quality", "optimize",
                "jfif", "jfif_version", "jfif_unit", "jfif_density", "adobe", "adobe_transform", "comment",
                "extension", "version", "mode"}


def collect(image) -> dict[str, bytes]:
    """Metadata of a PIL image worth keeping (empty for numpy arrays)."""
    if not isinstance(image, Image.Image):
        return {}
    info, texts = image.info, source_text(image)
    meta: dict[str, bytes] = {}
    for key, name in (("icc_profile", "icc"), ("exif", "exif"), ("xmp", "xmp")):
        value = info.get(key)
        if name in ("exif", "xmp") and _is_text_copy(value, texts, name):
            continue  # Pillow's copy of a text chunk (text "exif", iTXt XMP): kept once, as that text
        if isinstance(value, str):
            value = value.encode("utf-8")
        if isinstance(value, (bytes, bytearray)) and value:
            meta[name] = bytes(value)
    transparency = _pack_transparency(info.get("transparency"))
    if transparency is not None and _transparency_fits(image.mode, _transparency(transparency)):
        meta["transparency"] = transparency  # else Pillow would refuse to write it back: it never meant anything
    meta.update(_collect_resolution(image))
    meta.update(_collect_png_colour(info))
    for k, v in texts.items():
        if valid_text_key(k):  # a PNG keyword: only such keys can be written back as a text chunk
            meta["text:" + k] = str(v).encode("utf-8")
    return meta


def source_text(image) -> dict:
    """Genuine text chunks of an image: a PNG's tEXt/iTXt/zTXt, or the ``text`` that :func:`apply` gave
    a decoded image. Never other ``info`` entries: for other formats those are the decoder's own notes
    (a TIFF's ``compression``), which must not come back as text or as writer options."""
    if image.format == "PNG":
        return dict(image.text)
    text = getattr(image, "text", None)
    return dict(text) if isinstance(text, dict) else {}


def _is_text_copy(value, texts: dict, name: str) -> bool:
    """Is ``info[name]`` only Pillow's copy of a text chunk (a PNG text "exif", the iTXt holding XMP)?"""
    text = texts.get(_XMP_TEXT if name == "xmp" else name)
    if text is None or value is None:
        return False
    text = str(text)
    return value == text or value in (text.encode("latin-1", "replace"), text.encode("utf-8"))


def _pack_transparency(t) -> bytes | None:
    if isinstance(t, (bytes, bytearray)):
        return b"b" + bytes(t)
    if isinstance(t, int) and 0 <= t <= 0xFFFFFFFF:
        return b"i" + struct.pack("<I", t)
    if isinstance(t, tuple) and t and all(isinstance(v, int) and 0 <= v <= 0xFFFFFFFF for v in t):
        return b"t" + struct.pack(f"<{len(t)}I", *t)
    return None


def _number_pair(value) -> tuple[float, float] | None:
    """Two finite positive numbers (a dpi or resolution value), or None."""
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return (x, y) if all(math.isfinite(v) and v > 0 for v in (x, y)) else None


def _collect_resolution(image) -> dict[str, bytes]:
    """dpi (PNG pHYs in metres, TIFF/JPEG dpi), else a ratio without unit (PNG aspect, TIFF resolution)."""
    info = image.info
    if image.format == "TIFF" and 282 not in image.tag_v2:
        return {}  # no XResolution tag: Pillow's reader reports 1 dpi, which the file does not say
    dpi = _number_pair(info.get("dpi"))
    if dpi is not None:
        return {"dpi": _PAIR.pack(*dpi)}
    ratio = _number_pair(info.get("resolution", info.get("aspect")))
    return {"resolution": _PAIR.pack(*ratio)} if ratio is not None else {}


def _collect_png_colour(info: dict) -> dict[str, bytes]:
    """gAMA, cHRM and sRGB as Pillow's PNG reader gives them (values / 100000), back to their integers."""
    meta = {}
    for name, layout in _PNG_COLOUR:
        value = info.get(name)
        if value is None:
            continue
        try:
            meta[name] = _pack_colour(name, value, "<")
        except (TypeError, ValueError, struct.error):
            continue  # not the PNG chunk's value (some other reader's key of that name)
    return meta


def _pack_colour(name: str, value, order: str) -> bytes:
    """A gAMA/cHRM/sRGB value as Pillow's PNG reader gives it -> its integers, packed."""
    layout = order + dict(_PNG_COLOUR)[name]
    if name == "srgb":
        return struct.pack(layout, value)
    values = (value,) if name == "gamma" else tuple(value)
    return struct.pack(layout, *(round(v * 100000) for v in values))


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
    """Put metadata back into a decoded PIL image's ``info`` the way Pillow's PNG reader gives it, and
    its text chunks into ``image.text`` (also into ``info``, as Pillow does, unless the name is one
    Pillow gives another meaning). Unknown keys are ignored: a newer encoder may add some."""
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
    for name in ("dpi", "resolution"):
        if name in meta:
            image.info[name] = _unpack_pair(meta[name], name)
    for name, layout in _PNG_COLOUR:
        if name in meta:
            image.info[name] = _unpack_colour(meta[name], name, layout)
    texts = {}
    for key, value in meta.items():
        if key.startswith("text:"):
            if not valid_text_key(key[5:]):
                raise DecodeError("corrupted metadata: invalid text keyword")
            texts[key[5:]] = value.decode("utf-8", "replace")
    if texts:
        image.text = texts
        for k, v in texts.items():
            if k not in _PILLOW_KEYS:
                image.info.setdefault(k, v)
        if _XMP_TEXT in texts and "xmp" not in image.info:
            image.info["xmp"] = texts[_XMP_TEXT].encode("utf-8")  # as Pillow's PNG reader does


def _unpack_pair(raw: bytes, name: str) -> tuple[float, float]:
    pair = _number_pair(_PAIR.unpack(raw)) if len(raw) == _PAIR.size else None
    if pair is None:
        raise DecodeError(f"corrupted metadata: bad {name} value")
    return pair


def _unpack_colour(raw: bytes, name: str, layout: str):
    if len(raw) != struct.calcsize("<" + layout):
        raise DecodeError(f"corrupted metadata: bad {name} value")
    values = struct.unpack("<" + layout, raw)
    if name == "srgb":
        return values[0]
    scaled = tuple(v / 100000.0 for v in values)
    return scaled[0] if name == "gamma" else scaled


# What each output format can hold, besides pixels; PNG holds every kept entry.
_HOLDS = {"TIFF": {"icc", "exif", "xmp", "dpi", "resolution"}, "JPEG": {"icc", "exif", "xmp", "dpi"},
          "WEBP": {"icc", "exif", "xmp"}}
# Text that files written before 2026-11 may carry from non-PNG sources: Pillow's decoder notes taken
# for text then (a TIFF's "compression"). Not the image's metadata: not refused when a format cannot hold it.
_LEGACY_DECODER_TEXT = {"compression"}


def kept(image) -> dict:
    """The kept metadata of a decoded image as META names -> value (Pillow's types): what a writer must
    write, or refuse to."""
    if not isinstance(image, Image.Image):
        return {}
    info, out = image.info, {}
    for key, name in (("icc_profile", "icc"), ("exif", "exif"), ("xmp", "xmp"), ("transparency", "transparency"),
                      ("dpi", "dpi"), ("resolution", "resolution"), ("gamma", "gamma"),
                      ("chromaticity", "chromaticity"), ("srgb", "srgb")):
        if info.get(key) is not None and not (key == "resolution" and "dpi" in info):
            out[name] = info[key]
    texts = source_text(image)
    if "xmp" in out and _is_text_copy(out["xmp"], texts, "xmp"):
        del texts[_XMP_TEXT]  # one XMP, written as each format holds it (in PNG: that same iTXt chunk)
    for k, v in texts.items():
        out["text:" + k] = str(v)
    return out


def save_kwargs(image, fmt: str) -> dict:
    """Pillow ``save`` arguments that write the image's kept metadata in format ``fmt``. Raises
    WriteError naming what ``fmt`` cannot hold: nothing is dropped silently."""
    meta = kept(image)
    if not meta:
        return {}
    if fmt != "PNG":
        lost = [k for k in meta if k not in _HOLDS.get(fmt, ()) and k[5:] not in _LEGACY_DECODER_TEXT]
        if lost:
            raise WriteError(f"{fmt} cannot hold the image's {', '.join(sorted(lost))}: write it as PNG")
    kw = {}
    if "icc" in meta:
        kw["icc_profile"] = meta["icc"]
    if "dpi" in meta:
        kw["dpi"] = meta["dpi"]
    if fmt == "PNG":
        kw.update(_png_kwargs(meta))
    elif fmt == "TIFF":
        kw.update(_tiff_kwargs(meta))
    else:
        kw.update({k: meta[k] for k in ("exif", "xmp") if k in meta})
    return kw


def _png_kwargs(meta: dict) -> dict:
    kw = {k: meta[k] for k in ("exif", "transparency") if k in meta}
    png = PngImagePlugin.PngInfo()
    if "srgb" in meta and "icc" in meta:
        raise WriteError("the image has both an ICC profile and an sRGB chunk; Pillow writes only one to PNG")
    for name, cid in (("gamma", b"gAMA"), ("chromaticity", b"cHRM"), ("srgb", b"sRGB")):
        if name in meta:
            png.add(cid, _colour_chunk(name, meta[name]))
    if "xmp" in meta:
        png.add_itxt(_XMP_TEXT, meta["xmp"])
    for k, v in meta.items():
        if k.startswith("text:"):
            png.add_text(k[5:], v) if v.isascii() else png.add_itxt(k[5:], v)
    if png.chunks:
        kw["pnginfo"] = png
    return kw


def _colour_chunk(name: str, value) -> bytes:
    try:
        return _pack_colour(name, value, ">")
    except (TypeError, ValueError, struct.error):
        raise WriteError(f"cannot write the image's {name} value {value!r} to PNG") from None


def png_extra_chunks(image) -> list[tuple[bytes, bytes]]:
    """Chunks Pillow's PNG writer cannot write (it writes pHYs only in dots per metre, from ``dpi``):
    ``pixels.write_image`` puts them in before the first IDAT."""
    meta = kept(image)
    if "resolution" in meta and "dpi" not in meta:
        return [(b"pHYs", _aspect_chunk(meta["resolution"]))]
    return []


def _aspect_chunk(ratio) -> bytes:
    """A pHYs chunk without unit: PNG holds the ratio only as whole numbers."""
    x, y = ratio
    if x != int(x) or y != int(y) or not (0 < x < 2 ** 32 and 0 < y < 2 ** 32):
        raise WriteError(f"PNG cannot hold the resolution ratio {x}:{y} (whole numbers only)")
    return struct.pack(">IIB", int(x), int(y), 0)


def _tiff_kwargs(meta: dict) -> dict:
    kw = {}
    if "resolution" in meta and "dpi" not in meta:
        kw["resolution"], kw["resolution_unit"] = meta["resolution"][0], 1
        kw["y_resolution"] = meta["resolution"][1]
    if "exif" in meta or "xmp" in meta:
        # TIFF has no EXIF block: its tags go into the file's own directory, and XMP is tag 700
        exif = Image.Exif()
        if "exif" in meta:
            try:
                exif.load(meta["exif"])
            except Exception as e:  # Pillow's EXIF parser raises SyntaxError, struct.error ...
                raise WriteError(f"TIFF cannot hold the image's EXIF: it is no TIFF directory "
                                 f"({type(e).__name__}: {e}); write it as PNG") from None
        if "xmp" in meta:
            exif[700] = meta["xmp"]
        kw["exif"] = exif
    return kw
