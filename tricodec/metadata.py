"""The optional META section: metadata stored verbatim so ``decode`` restores what ``encode`` read.

Kept: the ICC profile, EXIF, XMP, PNG text chunks, PNG transparency (``tRNS``), which changes what the
pixels mean, resolution (PNG ``pHYs``, TIFF/JPEG dpi) and the PNG colour chunks ``gAMA``, ``cHRM``,
``sRGB``. Payload: ``count (u32)`` entries of ``key_len (u16) | key (UTF-8) | value_len (u32) | value``,
then ``crc32 (u32)`` of everything before it. Keys: ``icc``, ``exif``, ``xmp``, ``transparency``,
``text:<name>`` (value UTF-8), and since 2026-11 ``dpi`` and ``resolution`` (two little-endian float64:
dots per inch, or a ratio without unit), ``gamma`` (u32, the ``gAMA`` value: gamma x 100000),
``chromaticity`` (8 x u32, the ``cHRM`` values) and ``srgb`` (u8, the rendering intent), and since
2026-11-30 ``png:<type>`` (the data of a PNG chunk Pillow does not interpret, kept verbatim: ``sBIT``,
``bKGD``, ``tIME``, ``oFFs``, ``sCAL``, ``pCAL``, ``sTER``, ``cICP``; see ``PNG_CHUNKS``). A
transparency value is ``b"i" + u32`` (a colour index or grey level), ``b"t" + u32 x n`` (an RGB colour)
or ``b"b" + bytes`` (per-palette-entry alpha). A decoder ignores keys it does not know, so adding keys
keeps older files decoding and lets older decoders read newer files.

Metadata is data, never writer options: :func:`save_kwargs` builds the arguments that write the kept
entries, and nothing else of ``info`` reaches Pillow's writers (``pixels.write_image``).

16-bit colour images are numpy arrays, which have no ``info``: :func:`apply` gives them one as a
:class:`DeepArray` (a uint16 ndarray with ``info`` and ``text``, as a PIL image has), and :func:`collect`
reads it back, so 16-bit colour PNGs keep the same entries as 8-bit ones.
"""
from __future__ import annotations

import math
import struct
import zlib

import numpy as np
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


class DeepArray(np.ndarray):
    """A 16-bit grey+alpha or colour image (uint16 (H, W, 2|3|4), modes ``LA;16`` / ``RGB;16`` /
    ``RGBA;16``) with the metadata of its file, held the way a PIL image holds it: ``info`` (Pillow's
    keys: ``icc_profile``, ``exif``, ``gamma``, ``dpi`` ...) and ``text`` (PNG text chunks). Everything
    else is a plain ndarray; ``np.asarray`` gives the plain array."""

    def __array_finalize__(self, obj):
        self.info = dict(getattr(obj, "info", None) or {})
        self.text = dict(getattr(obj, "text", None) or {})

    def __reduce__(self):   # pickling (process pools, Ray) keeps the metadata too
        rebuild, args, state = super().__reduce__()
        return rebuild, args, (state, self.info, self.text)

    def __setstate__(self, state):
        array_state, self.info, self.text = state
        super().__setstate__(array_state)

    @property
    def mode(self) -> str:
        channels = self.shape[2] if self.ndim == 3 else 3
        return {2: "LA;16", 4: "RGBA;16"}.get(channels, "RGB;16")


def _has_info(image) -> bool:
    return isinstance(image, (Image.Image, DeepArray))


def collect(image, mode: str | None = None) -> dict[str, bytes]:
    """Metadata of a PIL image or a :class:`DeepArray` worth keeping (empty for plain numpy arrays).
    ``mode``: the mode the image's samples are kept in, when not its own (a 16-bit file Pillow shows as
    ``RGB`` and tricodec reads as ``RGB;16``)."""
    if not _has_info(image):
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
    if transparency is not None and _transparency_fits(mode or image.mode, _transparency(transparency)):
        meta["transparency"] = transparency  # else Pillow would refuse to write it back: it never meant anything
    meta.update(_collect_resolution(image))
    meta.update(_collect_png_colour(info))
    chunks = info.get("png_chunks")
    if getattr(image, "format", None) == "PNG":
        chunks = source_png_chunks(image, mode or image.mode)
    if isinstance(chunks, dict):
        meta.update({"png:" + cid.decode("latin-1"): bytes(data) for cid, data in chunks.items()
                     if cid in PNG_CHUNKS and _chunk_fits(cid, mode or image.mode, bytes(data))})
    for k, v in texts.items():
        if valid_text_key(k):  # a PNG keyword: only such keys can be written back as a text chunk
            meta["text:" + k] = str(v).encode("utf-8")
    return meta


# PNG chunks Pillow neither interprets nor writes back, kept verbatim (META ``png:<type>``): where each goes
# when written (before PLTE, or before IDAT). Their meaning does not depend on anything tricodec changes
# (bKGD's grey level is scaled with the samples, as Pillow scales 1-4-bit grey to 8 bits).
PNG_CHUNKS = {b"sBIT": "early", b"cICP": "early", b"tIME": "early", b"bKGD": "late", b"oFFs": "late",
              b"sCAL": "late", b"pCAL": "late", b"sTER": "late"}


def source_png_chunks(image, mode: str) -> dict[bytes, bytes]:
    """{type: data} of the PNG_CHUNKS in the PNG file a PIL image was opened from (its path, or its
    seekable file object; the first of each type), fitted to ``mode`` (a bKGD grey level of a 1-4-bit file
    Pillow reads as L scaled as its samples are). Walks the chunk headers, seeking over the data."""
    name, fp, own, found = getattr(image, "filename", ""), None, False, {}
    try:
        if isinstance(name, str) and name:
            fp, own = open(name, "rb"), True
        else:
            fp = getattr(image, "fp", None)
            if fp is None or getattr(fp, "closed", False) or not hasattr(fp, "seek"):
                return {}
        pos = fp.tell()
        try:
            fp.seek(0)
            if fp.read(8) != b"\x89PNG\r\n\x1a\n":
                return {}
            depth = 8
            while True:
                head = fp.read(8)
                if len(head) < 8:
                    break
                length, typ = struct.unpack(">I4s", head)
                if typ == b"IHDR" and length >= 9:
                    depth = fp.read(9)[8]
                    fp.seek(length - 9 + 4, 1)
                elif typ in PNG_CHUNKS and typ not in found:
                    data = fp.read(length)
                    if len(data) < length:
                        break
                    found[typ] = data
                    fp.seek(4, 1)
                elif typ == b"IEND":
                    break
                else:
                    fp.seek(length + 4, 1)
        finally:
            fp.seek(pos)
    except (OSError, ValueError, struct.error, IndexError):
        return {}
    finally:
        if own:
            fp.close()
    if b"bKGD" in found and mode in ("L", "LA") and depth < 8 and len(found[b"bKGD"]) == 2:
        level = struct.unpack(">H", found[b"bKGD"])[0]
        found[b"bKGD"] = struct.pack(">H", level * 255 // ((1 << depth) - 1)) if level < (1 << depth) else b""
    return found


_CHANNELS = {"1": (1, 1), "L": (1, 8), "LA": (2, 8), "P": (3, 8), "RGB": (3, 8), "RGBA": (4, 8),
             "I;16": (1, 16), "I;16B": (1, 16), "LA;16": (2, 16), "RGB;16": (3, 16),
             "RGBA;16": (4, 16)}


def _chunk_fits(cid: bytes, mode: str, data: bytes) -> bool:
    """Does a kept chunk make sense for an image of this mode (sBIT: a byte per channel, PLTE entries for
    palettes, each 1..depth; bKGD: a palette index, a grey level or an RGB colour of the depth)?"""
    layout = _CHANNELS.get(mode)
    if layout is None:
        return False
    channels, depth = layout
    if cid == b"sBIT":
        return len(data) == channels and all(1 <= b <= depth for b in data)
    if cid == b"bKGD":
        if mode == "P":
            return len(data) == 1
        values = struct.unpack(f">{len(data) // 2}H", data) if len(data) in (2, 6) else ()
        return len(values) == (1 if channels <= 2 else 3) and all(v < (1 << depth) for v in values)
    return True


def source_text(image) -> dict:
    """Genuine text chunks of an image: a PNG's tEXt/iTXt/zTXt, or the ``text`` that :func:`apply` gave
    a decoded image. Never other ``info`` entries: for other formats those are the decoder's own notes
    (a TIFF's ``compression``), which must not come back as text or as writer options."""
    if getattr(image, "format", None) == "PNG":
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
    if getattr(image, "format", None) == "TIFF" and 282 not in image.tag_v2:
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
    if mode in ("RGB", "RGB;16"):
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


def apply(image, meta: dict[str, bytes]):
    """Put metadata back into a decoded PIL image's ``info`` the way Pillow's PNG reader gives it, and
    its text chunks into ``image.text`` (also into ``info``, as Pillow does, unless the name is one
    Pillow gives another meaning). Unknown keys are ignored: a newer encoder may add some. Returns the
    image: the same PIL image, or a 16-bit colour array as a :class:`DeepArray` holding the metadata."""
    if not meta:
        return image
    if isinstance(image, np.ndarray) and not isinstance(image, DeepArray):
        image = image.view(DeepArray)
    if not _has_info(image):
        return image
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
    chunks = {}
    for key, value in meta.items():
        cid = key[4:].encode("latin-1", "replace")
        if key.startswith("png:") and cid in PNG_CHUNKS:
            if not _chunk_fits(cid, image.mode, bytes(value)):
                raise DecodeError(f"corrupted metadata: the {key[4:]} chunk does not fit the image mode")
            chunks[cid] = bytes(value)
    if chunks:
        image.info["png_chunks"] = chunks
    return image


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
    if not _has_info(image):
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
    chunks = info.get("png_chunks")
    if isinstance(chunks, dict):
        out.update({"png:" + cid.decode("latin-1"): bytes(v) for cid, v in chunks.items() if cid in PNG_CHUNKS})
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
    if "dpi" in meta and not (fmt == "PNG" and _dpi_only_in_exif(meta)):
        kw["dpi"] = meta["dpi"]
    if fmt == "PNG":
        kw.update(_png_kwargs(meta))
    elif fmt == "TIFF":
        kw.update(_tiff_kwargs(meta))
    else:
        kw.update({k: meta[k] for k in ("exif", "xmp") if k in meta})
    return kw


PHYS_MAX = 0xFFFFFFFF  # pHYs holds dots per metre as u32


def _dots_per_metre(dpi) -> tuple[int, int]:
    return tuple(int(d / 0.0254 + 0.5) for d in dpi)


def _dpi_only_in_exif(meta: dict) -> bool:
    """A dpi too large for PNG's pHYs (Pillow's PNG writer would overflow): fine to leave out when the
    kept EXIF, written verbatim, holds that very resolution (Pillow's JPEG reader derives dpi from the
    EXIF's XResolution and ResolutionUnit when the JFIF header has none); else WriteError."""
    dpi = meta["dpi"]
    if max(_dots_per_metre(dpi)) <= PHYS_MAX:
        return False
    if "exif" in meta and _exif_dpi(meta["exif"]) == tuple(float(d) for d in dpi):
        return True
    raise WriteError(f"PNG cannot hold a resolution of {dpi[0]:g}x{dpi[1]:g} dpi (its pHYs chunk holds at most "
                     f"{PHYS_MAX} dots per metre)")


def _exif_dpi(exif: bytes) -> tuple[float, float] | None:
    """The dpi Pillow's JPEG reader derives from an EXIF block (XResolution, x 2.54 for centimetres)."""
    try:
        ex = Image.Exif()
        ex.load(bytes(exif))
        x = float(ex[0x011A])
        x = x * 2.54 if ex.get(0x0128) == 3 else x
    except Exception:  # Pillow's EXIF parser raises anything on odd blocks; then it holds no usable dpi
        return None
    return (x, x)


def _png_kwargs(meta: dict) -> dict:
    kw = {k: meta[k] for k in ("exif", "transparency") if k in meta}
    png = PngImagePlugin.PngInfo()
    if "srgb" in meta and "icc" in meta:
        raise WriteError("the image has both an ICC profile and an sRGB chunk; Pillow writes only one to PNG")
    for name, cid in (("gamma", b"gAMA"), ("chromaticity", b"cHRM"), ("srgb", b"sRGB")):
        if name in meta:
            png.add(cid, _colour_chunk(name, meta[name]))
    for key, value in meta.items():
        if key.startswith("png:") and PNG_CHUNKS.get(key[4:].encode("latin-1")) == "early":
            png.add(key[4:].encode("latin-1"), value)  # Pillow's writer puts these before PLTE and IDAT
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
    """Chunks Pillow's PNG writer cannot write (it writes pHYs only in dots per metre, from ``dpi``, and
    drops public chunks it does not know, such as bKGD): ``pixels.write_image`` puts them in before the
    first IDAT (after PLTE and tRNS, where bKGD belongs)."""
    meta = kept(image)
    out = [(k[4:].encode("latin-1"), v) for k, v in meta.items()
           if k.startswith("png:") and PNG_CHUNKS.get(k[4:].encode("latin-1")) == "late"]
    if "resolution" in meta and "dpi" not in meta:
        out.append((b"pHYs", _aspect_chunk(meta["resolution"])))
    return out


def _aspect_chunk(ratio) -> bytes:
    """A pHYs chunk without unit: PNG holds the ratio only as whole numbers."""
    x, y = ratio
    if x != int(x) or y != int(y) or not (0 < x < 2 ** 32 and 0 < y < 2 ** 32):
        raise WriteError(f"PNG cannot hold the resolution ratio {x}:{y} (whole numbers only)")
    return struct.pack(">IIB", int(x), int(y), 0)


# EXIF directories a TIFF holds: the Exif and GPS directories hang off its first directory (tags 34665,
# 34853), the Interoperability directory off the Exif one (40965).
EXIF_IFD, GPS_IFD, INTEROP_IFD = 0x8769, 0x8825, 0xA005


def _tiff_kwargs(meta: dict) -> dict:
    kw = {}
    if "resolution" in meta and "dpi" not in meta:
        kw["resolution"], kw["resolution_unit"] = meta["resolution"][0], 1
        kw["y_resolution"] = meta["resolution"][1]
    if "exif" in meta or "xmp" in meta:
        # TIFF has no EXIF block: its tags go into the file's own directory, and XMP is tag 700
        exif = tiff_exif(meta["exif"]) if "exif" in meta else Image.Exif()
        if "xmp" in meta:
            exif[700] = meta["xmp"]
        kw["exif"] = exif
    return kw


def tiff_exif(block: bytes) -> Image.Exif:
    """An EXIF block as the directories a TIFF writes (Pillow writes sub-directories given as dicts), or
    WriteError naming what a TIFF cannot hold: a block that is no TIFF directory, a thumbnail directory
    (IFD1: in a TIFF the next directory is another page) and a MakerNote (its offsets point into the
    block, which a TIFF relocates)."""
    exif = Image.Exif()
    try:
        exif.load(bytes(block))
        ifds = {tag: exif.get_ifd(tag) for tag in (EXIF_IFD, GPS_IFD) if tag in exif}
        if INTEROP_IFD in ifds.get(EXIF_IFD, {}):
            ifds[EXIF_IFD][INTEROP_IFD] = exif.get_ifd(INTEROP_IFD)
        thumbnail = exif.get_ifd(-1)  # Pillow's name for IFD1
    except Exception as e:  # Pillow's EXIF parser raises SyntaxError, struct.error ...
        raise WriteError(f"TIFF cannot hold the image's EXIF: it is no TIFF directory "
                         f"({type(e).__name__}: {e}); write it as PNG") from None
    if thumbnail:
        raise WriteError("TIFF cannot hold the image's EXIF thumbnail (IFD1: in a TIFF the next directory is "
                         "another page)")
    if 0x927C in ifds.get(EXIF_IFD, {}):
        raise WriteError("TIFF cannot hold the image's EXIF MakerNote (its offsets point into the EXIF block, "
                         "which a TIFF relocates)")
    for tag, ifd in ifds.items():
        if not ifd:
            del exif[tag]   # a pointer to nothing: Pillow would write the stale offset
    return exif


def exif_directories(exif: Image.Exif) -> dict:
    """{directory: {tag: value}} of a freshly loaded EXIF (the first directory as 0, then Exif, GPS and
    Interop, pointers left out): what a TIFF written with it must read back."""
    out = {0: {k: v for k, v in exif.items() if k not in (EXIF_IFD, GPS_IFD)}}
    for tag in (EXIF_IFD, GPS_IFD):
        if tag in exif:
            out[tag] = {k: v for k, v in exif.get_ifd(tag).items() if k != INTEROP_IFD}
    if INTEROP_IFD in (exif.get_ifd(EXIF_IFD) if EXIF_IFD in exif else {}):
        out[INTEROP_IFD] = dict(exif.get_ifd(INTEROP_IFD))
    return {k: v for k, v in out.items() if v}


def check_tiff_exif(block: bytes, written: Image.Image) -> None:
    """WriteError unless a TIFF written with the EXIF ``block`` reads back every one of its tags with
    the same value (the TIFF adds its own tags to the first directory: those are not compared)."""
    want = Image.Exif()
    want.load(bytes(block))
    want, got = exif_directories(want), exif_directories(written.getexif())
    for ifd, tags in want.items():
        for tag, value in tags.items():
            if tag not in got.get(ifd, {}) or got[ifd][tag] != value:
                where = "its first directory" if ifd == 0 else f"directory {ifd:#x}"
                raise WriteError(f"TIFF would not keep the image's EXIF tag {tag:#x} of {where} "
                                 f"({value!r:.60} -> {got.get(ifd, {}).get(tag, 'missing')!r:.60})")
