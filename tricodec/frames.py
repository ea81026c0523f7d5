"""Multi-frame images (APNG, GIF, multi-page TIFF, ICO/ICNS of several sizes) as the frames of one ``.tric``
file.

Each frame is coded as a complete single-image ``.tric`` file (model or fallback, its own CRC and its own
META: a TIFF page's resolution and ICC profile, an APNG's colour chunks), so a frame decodes alone and
every check of a single image applies to it. What ties them together (the kind of file, the loop count,
each frame's timing, offset, disposal and blending) is kept verbatim, as the file said it.

File: a header (container.py) with flag FRAMES, the first frame's size and mode, then one section
``FRAMES``::

    kind_len (u8) | kind (ASCII: "APNG", "GIF", "TIFF", "ICO" or "ICNS")
    info_len (u32) | info        file parameters, in META's key -> bytes layout (metadata.pack)
    count (u32)
    count x [params_len (u32) | params (metadata.pack) | data_len (u32) | data (a single-image .tric)]

Keys: APNG info ``num_plays`` (u32, 0 = forever); APNG frame params ``fctl`` (the fcTL chunk after its
sequence number: width, height, x and y offset (u32 each), delay numerator and denominator (u16 each),
dispose and blend op (u8 each)) or ``hidden`` (the default image when it is not part of the animation).
GIF info ``head`` (signature, logical screen descriptor and global colour table, verbatim) and ``tail``
(extension blocks after the last frame); GIF frame params ``ext`` (every extension block before the
frame, verbatim: the graphic control extension with delay, disposal and transparent index, the loop,
comments, application data), ``desc`` (the 9-byte image descriptor: position, size, flags) and ``lct``
(its local colour table). ICO info ``type`` (u16: 1 icon, 2 cursor); ICO frame params ``entry`` (the
directory entry's first 8 bytes: width, height, colour count, reserved, planes/hotspot, bit count/hotspot)
and either ``png`` (the image is a PNG file) or ``dib`` (the bitmap header and palette, verbatim),
``mask`` (the AND mask, zlib-deflated) and optionally ``rest`` (bytes after it). ICNS info ``layout``
(per chunk its type and how it is kept: P a PNG frame, M an 8-bit mask frame, T the table of contents,
rebuilt, V verbatim) and ``raw:<i>`` (the data of verbatim chunk i: RLE-packed RGB, JPEG 2000 ...); ICNS
frame params ``type``. TIFF pages have no parameters: each page's metadata is its frame's META.

How frames are read: an APNG is split into its raw frames (each fcTL/fdAT run rebuilt as a PNG of its
own, with the file's PLTE, tRNS and colour chunks), never Pillow's composited canvases, so writing it
back gives the same raw frames and the same composition in any reader; a GIF likewise into the colour
indices of each frame (a P image with the frame's palette; Pillow decodes the frame's LZW data alone),
written back with Pillow's LZW coder between the verbatim blocks (a GIF Pillow wrote comes back byte
for byte); an ICO into its images (a bitmap's XOR pixels as a P, RGB or RGBA image: an icon comes back
byte for byte; a PNG image as a PNG); TIFF pages through Pillow. Writing builds the same kind of file and reads it back: a file that would not
give back every frame, parameter and kept metadata entry exactly is refused (WriteError).

Other multi-frame files (MPO: its frames are JPEGs, no lossless MPO can be written back; FLI,
multi-layer PSD, animated WebP/AVIF) are still refused by ``encode`` with the reason.
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from . import container as fmt
from . import metadata
from .errors import DecodeError, EncodeError, TricodecError, WriteError

KINDS = {"APNG": ".png", "TIFF": ".tiff", "GIF": ".gif", "ICO": ".ico", "ICNS": ".icns"}   # kind -> its suffix
MAX_FRAMES = 1 << 16
MAX_TOTAL_PIXELS_FACTOR = 4   # all frames together: at most this many times ``max_pixels``
_U32 = struct.Struct("<I")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Frame:
    """One frame: its image (a PIL image, or a uint16 array for 16-bit colour, with its own metadata) and
    its parameters as stored (raw bytes; :attr:`timing` gives them as numbers)."""
    image: object
    params: dict = field(default_factory=dict)

    @property
    def timing(self) -> dict:
        """APNG frames: ``duration`` (ms), ``delay`` (numerator, denominator), ``offset`` (x, y),
        ``disposal`` and ``blend`` (the fcTL op codes); ``hidden`` for a default image outside the
        animation. Empty for TIFF pages."""
        if "hidden" in self.params:
            return {"hidden": True}
        if "fctl" not in self.params:
            return {}
        w, h, x, y, num, den, dispose, blend = struct.unpack(">IIIIHHBB", self.params["fctl"])
        return {"duration": 1000.0 * num / (den or 100), "delay": (num, den), "offset": (x, y),
                "disposal": dispose, "blend": blend}


@dataclass
class Frames:
    """A multi-frame image: the kind of file it came from, its file parameters and its frames."""
    kind: str
    frames: list
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self):
        return iter(self.frames)

    @property
    def suffix(self) -> str:
        return KINDS[self.kind]


# ---- reading files ----------------------------------------------------------------------------------

def kind_of(image) -> str | None:
    """The frames kind of a PIL image with several frames that this module keeps, else None."""
    if image.format == "ICO" and len(getattr(getattr(image, "ico", None), "entry", ())) > 1:
        return "ICO"
    if image.format == "ICNS" and len(image.info.get("sizes", ())) > 1:
        return "ICNS"
    if getattr(image, "n_frames", 1) <= 1:
        return None
    if image.format == "PNG" and getattr(image, "is_animated", False):
        return "APNG"
    if image.format == "TIFF":
        return "TIFF"
    if image.format == "GIF":
        return "GIF"
    return None


def is_multi_frame_file(path) -> bool:
    """Does Pillow open ``path`` as an image of several frames that this module keeps (APNG, TIFF)?"""
    import warnings

    from .pixels import open_image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with (open_image(path) if isinstance(path, (str, Path)) else Image.open(path)) as im:
                return kind_of(im) is not None
    except Exception:  # not an image, or a hostile one: the single-image reader reports it
        return False


KIND_HEAD_BYTES = fmt.HEADER_SIZE + 5 + 1 + 8   # what kind_of_head reads: header, FRAMES section head, kind


def kind_of_tric(path) -> str | None:
    """The kind of a multi-frame .tric file (read from its first bytes), or None (a single image, or no
    .tric file: its decode reports that)."""
    try:
        with open(path, "rb") as f:
            head = f.read(KIND_HEAD_BYTES)
    except OSError:
        return None
    return kind_of_head(head)


def kind_of_head(head: bytes) -> str | None:
    """:func:`kind_of_tric` of a file's first ``KIND_HEAD_BYTES`` bytes."""
    if not is_frames(head) or len(head) < fmt.HEADER_SIZE + 6:
        return None
    n = head[fmt.HEADER_SIZE + 5]
    kind = head[fmt.HEADER_SIZE + 6:fmt.HEADER_SIZE + 6 + n].decode("latin-1")
    return kind if kind in KINDS else None


def read_frames(source, max_pixels: int = fmt.DEFAULT_MAX_PIXELS) -> Frames:
    """Frames of a multi-frame file: a path, file bytes or a PIL image opened from a file. EncodeError
    when it is none this module keeps, or cannot be read whole."""
    if isinstance(source, Image.Image):
        from .pixels import _source_bytes
        data = _source_bytes(source)
        if data is None:
            raise EncodeError("multi-frame image: its file cannot be read again (open it from a path or a "
                              "seekable file)")
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data = Path(source).read_bytes()
    try:
        if isinstance(source, (str, Path)):
            from .pixels import open_image
            fmt = open_image(source).format   # the suffix's format first (see pixels.open_image)
            im = Image.open(io.BytesIO(data), formats=[fmt] if fmt else None)
        else:
            im = Image.open(io.BytesIO(data))
        kind = kind_of(im)
    except TricodecError:
        raise
    except Exception as e:  # Pillow raises anything on hostile files
        raise EncodeError(f"cannot read image ({type(e).__name__}: {e})") from None
    if kind is None:
        raise EncodeError(f"not a multi-frame image tricodec keeps ({im.format}, {getattr(im, 'n_frames', 1)} "
                          "frames): APNG, GIF, multi-page TIFF, ICO and ICNS are")
    reader = {"APNG": lambda: _read_apng(data, max_pixels), "GIF": lambda: _read_gif(data, max_pixels),
              "ICO": lambda: _read_ico(data, max_pixels), "ICNS": lambda: _read_icns(data, max_pixels),
              "TIFF": lambda: _read_tiff_pages(im, data, max_pixels)}[kind]
    frames = reader()
    if sum(_pixels(f.image) for f in frames.frames) > MAX_TOTAL_PIXELS_FACTOR * max_pixels:
        raise EncodeError(f"{len(frames)} frames of more than {MAX_TOTAL_PIXELS_FACTOR * max_pixels} pixels in all")
    return frames


def _pixels(image) -> int:
    if isinstance(image, np.ndarray):
        return image.shape[0] * image.shape[1]
    return image.width * image.height


def png_chunks(data: bytes, error=EncodeError) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk of a PNG file, CRCs checked; ``error`` for anything malformed."""
    if data[:8] != PNG_SIGNATURE:
        raise error("not a PNG file")
    out, pos = [], 8
    while pos < len(data):
        if pos + 12 > len(data):
            raise error("truncated PNG chunk")
        n, typ = struct.unpack_from(">I4s", data, pos)
        if n > len(data) - pos - 12:
            raise error("truncated PNG chunk")
        body = data[pos + 8:pos + 8 + n]
        if zlib.crc32(typ + body) != struct.unpack_from(">I", data, pos + 8 + n)[0]:
            raise error(f"corrupt PNG chunk {typ!r} (CRC)")
        out.append((typ, body))
        pos += 12 + n
        if typ == b"IEND":
            break
    if not out or out[0][0] != b"IHDR" or len(out[0][1]) != 13 or out[-1][0] != b"IEND":
        raise error("corrupt PNG (IHDR or IEND missing)")
    return out


def _chunk(typ: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body))


_ANIMATION = (b"IHDR", b"acTL", b"fcTL", b"fdAT", b"IDAT", b"IEND")


def _apng_parts(data: bytes, error=EncodeError):
    """(IHDR body, shared chunks, num_plays, [(fctl or None, [image data])]): the raw frames of an
    APNG; the first entry is the default image (fctl None when it is not part of the animation)."""
    chunks = png_chunks(data, error)
    ihdr = chunks[0][1]
    shared = [(t, b) for t, b in chunks if t not in _ANIMATION]
    actl = [b for t, b in chunks if t == b"acTL"]
    if len(actl) != 1 or len(actl[0]) != 8:
        raise error("corrupt APNG (acTL)")
    num_frames, num_plays = struct.unpack(">II", actl[0])
    default_fctl, idat, anim, seq = None, [], [], 0
    for typ, body in chunks[1:]:
        if typ == b"fcTL":
            if len(body) != 26 or struct.unpack_from(">I", body)[0] != seq:
                raise error("corrupt APNG (fcTL)")
            seq += 1
            if idat:
                anim.append([body[4:], []])
            elif default_fctl is None:
                default_fctl = body[4:]   # before IDAT: the default image is the animation's first frame
            else:
                raise error("corrupt APNG (two fcTL before IDAT)")
        elif typ == b"IDAT":
            if anim:
                raise error("corrupt APNG (IDAT after an fdAT frame)")
            idat.append(body)
        elif typ == b"fdAT":
            if not anim or len(body) < 4 or struct.unpack_from(">I", body)[0] != seq:
                raise error("corrupt APNG (fdAT)")
            seq += 1
            anim[-1][1].append(body[4:])
    frames = [[default_fctl, idat]] + anim
    animated = len(anim) + (default_fctl is not None)
    if animated != num_frames or animated < 1:
        raise error(f"corrupt APNG ({num_frames} frames announced, {animated} found)")
    if any(not parts for _, parts in frames):
        raise error("corrupt APNG (a frame without image data)")
    return ihdr, shared, num_plays, frames


def _frame_png(ihdr: bytes, shared: list, fctl: bytes | None, parts: list) -> bytes:
    """One raw APNG frame as a PNG file of its own: the file's IHDR at the frame's size, its shared chunks."""
    if fctl is not None:
        ihdr = fctl[:8] + ihdr[8:]
    return (PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + b"".join(_chunk(t, b) for t, b in shared)
            + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b""))


def _read_apng(data: bytes, max_pixels: int) -> Frames:
    from .pixels import normalize

    ihdr, shared, num_plays, raw = _apng_parts(data)
    frames = []
    for fctl, parts in raw:
        w, h = struct.unpack(">II", (fctl or ihdr)[:8])
        if w < 1 or h < 1 or w * h > max_pixels:
            raise EncodeError(f"APNG frame of {w}x{h} pixels (limit {max_pixels})")
        try:
            image = normalize(Image.open(io.BytesIO(_frame_png(ihdr, shared, fctl, parts))), max_pixels)
        except TricodecError as e:
            raise EncodeError(f"APNG frame {len(frames)}: {e}") from None
        except Exception as e:
            raise EncodeError(f"APNG frame {len(frames)}: cannot read it ({type(e).__name__}: {e})") from None
        frames.append(Frame(image, {"fctl": fctl} if fctl is not None else {"hidden": b"\x01"}))
    return Frames("APNG", frames, {"num_plays": _U32.pack(num_plays)})


def _gif_subblocks_end(data: bytes, pos: int, error) -> int:
    """The position after a run of GIF data sub-blocks (length byte, data) ending with a zero length."""
    while True:
        if pos >= len(data):
            raise error("truncated GIF (a block runs past the end)")
        n = data[pos]
        pos += 1 + n
        if n == 0:
            return pos


def _gif_table(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _gif_parts(data: bytes, error=EncodeError):
    """(head: signature + screen descriptor + global colour table, [(extensions before the frame, image
    descriptor (9 bytes), local colour table, LZW minimum code size, LZW sub-blocks)], extensions after
    the last frame) of a GIF file, its blocks walked but not decoded."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise error("not a GIF file")
    pos = 13 + _gif_table(data[10])
    head, frames, ext = data[:pos], [], b""
    while True:
        if pos >= len(data):
            raise error("truncated GIF (no trailer)")
        block = data[pos]
        if block == 0x21:
            end = _gif_subblocks_end(data, pos + 2, error)
            ext += data[pos:end]
            pos = end
        elif block == 0x2C:
            if pos + 11 > len(data):
                raise error("truncated GIF image descriptor")
            desc = data[pos + 1:pos + 10]
            pos += 10
            lct = data[pos:pos + _gif_table(desc[8])]
            pos += len(lct)
            mcs = data[pos]
            end = _gif_subblocks_end(data, pos + 1, error)
            frames.append((ext, desc, lct, mcs, data[pos + 1:end]))
            ext, pos = b"", end
        elif block == 0x3B:
            if pos + 1 != len(data):
                raise error(f"GIF with {len(data) - pos - 1} bytes after its trailer (they would be lost)")
            return head, frames, ext
        else:
            raise error(f"corrupt GIF (block {block:#04x})")


_INTERLACE = [(0, 8), (4, 8), (2, 4), (1, 2)]   # (first row, step) of the four GIF interlace passes


def _interlace_order(h: int) -> list[int]:
    return [r for first, step in _INTERLACE for r in range(first, h, step)]


def _gif_frame_image(head: bytes, desc: bytes, lct: bytes, mcs: int, lzw: bytes, max_pixels: int, i: int):
    """One raw GIF frame: its colour indices (decoded by Pillow from a GIF of that frame alone, with a
    made-up colour table so that no palette reads as grey) as a P image with the frame's real palette."""
    x, y, w, h = struct.unpack("<HHHH", desc[:8])
    if w < 1 or h < 1 or (x + w) * (y + h) > max_pixels:   # a viewer's canvas reaches the frame's far corner
        raise EncodeError(f"GIF frame {i} of {w}x{h} pixels at ({x}, {y}) exceeds the limit of {max_pixels} pixels")
    table = lct or head[13:]
    if not table:
        raise EncodeError(f"GIF frame {i} has no colour table")
    n = len(table) // 3
    fake = bytes(b for k in range(n) for b in (k, 255 - k, 7))   # n distinct colours, none grey
    lsd = struct.pack("<HH", w, h) + bytes([0x80 | ((desc[8] & 7) if lct else (head[10] & 7)), 0, 0])
    one = (b"GIF89a" + lsd + fake + b"\x2c" + bytes(4) + desc[4:8] + bytes([desc[8] & 0x40])
           + bytes([mcs]) + lzw + b"\x3b")
    try:
        im = Image.open(io.BytesIO(one))
        im.load()
    except Exception as e:
        raise EncodeError(f"GIF frame {i}: cannot decode it ({type(e).__name__}: {e})") from None
    if im.mode != "P" or im.size != (w, h):
        raise EncodeError(f"GIF frame {i}: read as {im.mode} {im.size}")
    out = Image.frombytes("P", (w, h), im.tobytes())
    out.putpalette(table, "RGB")
    return out


def _read_gif(data: bytes, max_pixels: int) -> Frames:
    head, parts, tail = _gif_parts(data)
    sw, sh = struct.unpack("<HH", head[6:10])
    if sw * sh > max_pixels:   # the canvas every viewer composes the frames on
        raise EncodeError(f"GIF screen of {sw}x{sh} exceeds the limit of {max_pixels} pixels")
    frames = []
    for i, (ext, desc, lct, mcs, lzw) in enumerate(parts):
        image = _gif_frame_image(head, desc, lct, mcs, lzw, max_pixels, i)
        frames.append(Frame(image, {"ext": ext, "desc": desc, "lct": lct}))
    return Frames("GIF", frames, {"head": head, "tail": tail})


def _gif_bytes(frames: Frames) -> bytes:
    """The GIF: its head, then per frame its extensions, descriptor and local colour table verbatim, and
    its indices LZW-coded by Pillow (rows put in interlace order first where the descriptor says so)."""
    out = [frames.info["head"]]
    for i, f in enumerate(frames):
        image, desc = f.image, f.params["desc"]
        if not isinstance(image, Image.Image) or image.mode != "P" or image.size != struct.unpack("<HH", desc[4:8]):
            raise WriteError(f"GIF frame {i} is not a palette image of its descriptor's size")
        idx = np.asarray(image)
        if desc[8] & 0x40:
            idx = idx[_interlace_order(idx.shape[0])]
        plain = Image.fromarray(np.ascontiguousarray(idx), "P")
        plain.putpalette(bytes(range(256)) * 3)
        buf = io.BytesIO()
        plain.save(buf, format="GIF", optimize=False, interlace=False)
        _, (one,), _ = _gif_parts(buf.getvalue(), WriteError)
        out += [f.params["ext"], b"\x2c", desc, f.params["lct"], bytes([one[3]]), one[4]]
    out += [frames.info["tail"], b"\x3b"]
    return b"".join(out)


# ICO: ICONDIR (reserved, type: 1 icon / 2 cursor, count; u16 each) and a 16-byte entry per image
# (width, height, colour count, reserved (u8 each), planes or hotspot x, bit count or hotspot y (u16),
# size, offset (u32)); each image a PNG file or a DIB: BITMAPINFOHEADER (height doubled), palette (BGRX),
# XOR rows bottom up, then the 1-bit AND mask rows; every row padded to 4 bytes.

def _dib_stride(width: int, bits: int) -> int:
    return (width * bits + 31) // 32 * 4


def _read_dib(dib: bytes, i: int):
    """One DIB icon image -> (image, params): the XOR bitmap as a P (1/4/8 bits, its palette), RGB (24)
    or RGBA (32: the fourth byte as alpha) image; the header, palette, zlib-deflated AND mask (as much of
    it as the file has) and any bytes after it, verbatim."""
    if len(dib) < 40:
        raise EncodeError(f"ICO image {i}: truncated bitmap header")
    size, w, h2, planes, bits, comp, _, _, _, used, _ = struct.unpack_from("<IiiHHIIiiII", dib)
    if size != 40 or comp != 0 or bits not in (1, 4, 8, 24, 32) or w < 1 or h2 < 2 or h2 % 2:
        raise EncodeError(f"ICO image {i}: a {bits}-bit bitmap (header {size}, compression {comp}, {w}x{h2}) "
                          "is not supported (1, 4, 8, 24 and 32-bit uncompressed bitmaps, and PNG, are)")
    h = h2 // 2
    colours = (used or 1 << bits) if bits <= 8 else 0
    if colours > 1 << bits:
        raise EncodeError(f"ICO image {i}: {colours} palette entries for {bits} bits")
    pal_end = 40 + 4 * colours
    xor, mask = _dib_stride(w, bits) * h, _dib_stride(w, 1) * h
    if len(dib) < pal_end + xor:   # the AND mask may be short or missing (Pillow writes none for 32 bits)
        raise EncodeError(f"ICO image {i}: truncated bitmap ({len(dib)} bytes, {pal_end + xor} needed)")
    rows = np.frombuffer(dib, np.uint8, xor, pal_end).reshape(h, -1)[::-1]
    if bits == 32:
        image = Image.fromarray(np.ascontiguousarray(rows[:, :4 * w].reshape(h, w, 4)[:, :, [2, 1, 0, 3]]), "RGBA")
    elif bits == 24:
        image = Image.fromarray(np.ascontiguousarray(rows[:, :3 * w].reshape(h, w, 3)[:, :, ::-1]), "RGB")
    else:
        idx = np.unpackbits(rows, axis=1)[:, :w * bits].reshape(h, w, bits) if bits < 8 else rows[:, :w, None]
        idx = (idx.astype(np.uint16) << np.arange(bits - 1, -1, -1, dtype=np.uint16)).sum(axis=2) if bits < 8 \
            else idx[:, :, 0]
        image = Image.fromarray(np.ascontiguousarray(idx.astype(np.uint8)), "P")
        quads = np.frombuffer(dib, np.uint8, 4 * colours, 40).reshape(-1, 4)
        image.putpalette(quads[:, [2, 1, 0]].tobytes(), "RGB")
    params = {"dib": dib[:pal_end], "mask": zlib.compress(dib[pal_end + xor:pal_end + xor + mask], 9)}
    if len(dib) > pal_end + xor + mask:
        params["rest"] = dib[pal_end + xor + mask:]
    return image, params


def _dib_bytes(image, params: dict, i: int) -> bytes:
    """The DIB of an icon image, from its pixels and the verbatim header, palette and mask."""
    head = params["dib"]
    _, w, h2, _, bits = struct.unpack_from("<IiiHH", head)
    h = h2 // 2
    want = {1: "P", 4: "P", 8: "P", 24: "RGB", 32: "RGBA"}[bits]
    if not isinstance(image, Image.Image) or image.mode != want or image.size != (w, h):
        raise WriteError(f"ICO image {i} is not a {want} image of {w}x{h}")
    arr = np.asarray(image)
    stride = _dib_stride(w, bits)
    if bits == 32:
        rows = arr[:, :, [2, 1, 0, 3]].reshape(h, -1)
    elif bits == 24:
        rows = arr[:, :, ::-1].reshape(h, -1)
    elif bits == 8:
        rows = arr
    else:
        if int(arr.max(initial=0)) >= 1 << bits:
            raise WriteError(f"ICO image {i}: an index does not fit {bits} bits")
        b = ((arr[:, :, None] >> np.arange(bits - 1, -1, -1, dtype=np.uint8)) & 1).reshape(h, -1)
        rows = np.packbits(b, axis=1)
    out = np.zeros((h, stride), np.uint8)
    out[:, :rows.shape[1]] = rows
    return head + out[::-1].tobytes() + zlib.decompress(params["mask"]) + params.get("rest", b"")


def _read_ico(data: bytes, max_pixels: int) -> Frames:
    from .pixels import normalize

    if len(data) < 6:
        raise EncodeError("truncated ICO header")
    reserved, kind, count = struct.unpack_from("<HHH", data)
    if reserved != 0 or kind not in (1, 2) or count < 1 or len(data) < 6 + 16 * count:
        raise EncodeError("corrupt ICO header")
    frames = []
    for i in range(count):
        entry = data[6 + 16 * i:22 + 16 * i]
        size, offset = struct.unpack_from("<II", entry, 8)
        if offset + size > len(data) or size < 8:
            raise EncodeError(f"ICO image {i} runs past the end of the file")
        blob = data[offset:offset + size]
        if blob[:8] == PNG_SIGNATURE:
            try:
                image, params = normalize(Image.open(io.BytesIO(blob)), max_pixels), {"png": b"\x01"}
            except TricodecError as e:
                raise EncodeError(f"ICO image {i}: {e}") from None
            except Exception as e:
                raise EncodeError(f"ICO image {i}: cannot read its PNG ({type(e).__name__}: {e})") from None
        else:
            w, h2 = struct.unpack_from("<ii", blob, 4) if len(blob) >= 12 else (0, 0)
            if w * abs(h2) // 2 > max_pixels:
                raise EncodeError(f"ICO image {i} of {w}x{abs(h2) // 2} pixels")
            image, params = _read_dib(blob, i)
        params["entry"] = entry[:8]
        frames.append(Frame(image, params))
    return Frames("ICO", frames, {"type": struct.pack("<H", kind)})


def _ico_bytes(frames: Frames, png_level: int | None) -> bytes:
    blobs = [_frame_file(f.image, ".png", png_level) if "png" in f.params else _dib_bytes(f.image, f.params, i)
             for i, f in enumerate(frames)]
    offset = 6 + 16 * len(frames)
    out = [struct.pack("<HHH", 0, struct.unpack("<H", frames.info["type"])[0], len(frames))]
    for f, blob in zip(frames, blobs):
        out.append(f.params["entry"] + struct.pack("<II", len(blob), offset))
        offset += len(blob)
    return b"".join(out + blobs)


# ICNS: b"icns" | total length (u32 BE) | chunks of type (4 bytes) | length (u32 BE, header included) |
# data. PNG images become frames, 8-bit masks (s8mk, l8mk, h8mk, t8mk: n x n bytes) L frames; every other
# chunk (the TOC, RLE-packed RGB, JPEG 2000, version, name ...) is kept verbatim. The TOC (a list of
# type and length) is rebuilt from the chunks written when it described the source's chunks exactly.
_ICNS_MASKS = {b"s8mk": 16, b"l8mk": 32, b"h8mk": 48, b"t8mk": 128}


def _icns_chunks(data: bytes, error=EncodeError) -> list[tuple[bytes, bytes]]:
    if data[:4] != b"icns" or len(data) < 8 or struct.unpack(">I", data[4:8])[0] != len(data):
        raise error("corrupt ICNS header (its length is not the file's)")
    out, pos = [], 8
    while pos < len(data):
        if pos + 8 > len(data):
            raise error("truncated ICNS chunk")
        typ, n = data[pos:pos + 4], struct.unpack(">I", data[pos + 4:pos + 8])[0]
        if n < 8 or pos + n > len(data):
            raise error(f"corrupt ICNS chunk {typ!r} (length {n})")
        out.append((typ, data[pos + 8:pos + n]))
        pos += n
    return out


def _icns_toc(chunks: list) -> bytes:
    return b"".join(t + struct.pack(">I", len(d) + 8) for t, d in chunks if t != b"TOC ")


def _read_icns(data: bytes, max_pixels: int) -> Frames:
    from .pixels import normalize

    chunks = _icns_chunks(data)
    frames, layout, info = [], b"", {}
    for i, (typ, body) in enumerate(chunks):
        if body[:8] == PNG_SIGNATURE:
            try:
                image = normalize(Image.open(io.BytesIO(body)), max_pixels)
            except TricodecError as e:
                raise EncodeError(f"ICNS {typ.decode('latin-1')!r} image: {e}") from None
            except Exception as e:
                raise EncodeError(f"ICNS {typ.decode('latin-1')!r} image: cannot read its PNG "
                                  f"({type(e).__name__}: {e})") from None
            frames.append(Frame(image, {"type": typ}))
            layout += typ + b"P"
        elif typ in _ICNS_MASKS and len(body) == _ICNS_MASKS[typ] ** 2:
            n = _ICNS_MASKS[typ]
            frames.append(Frame(Image.frombytes("L", (n, n), body), {"type": typ}))
            layout += typ + b"M"
        elif typ == b"TOC " and body == _icns_toc(chunks):
            layout += typ + b"T"
        else:
            info[f"raw:{i}"] = body
            layout += typ + b"V"
    if not frames:
        raise EncodeError("ICNS without a PNG image or a mask: nothing to code")
    info["layout"] = layout
    return Frames("ICNS", frames, info)


def _icns_bytes(frames: Frames, png_level: int | None) -> bytes:
    layout, it, chunks = frames.info["layout"], iter(frames), []
    for i in range(len(layout) // 5):
        typ, how = layout[5 * i:5 * i + 4], layout[5 * i + 4:5 * i + 5]
        if how in (b"P", b"M"):
            f = next(it, None)
            if f is None or f.params.get("type") != typ:
                raise WriteError(f"ICNS chunk {i}: no frame of type {typ!r}")
            if how == b"M":
                if not isinstance(f.image, Image.Image) or f.image.mode != "L" or f.image.size != (_ICNS_MASKS[typ],) * 2:
                    raise WriteError(f"ICNS mask {typ!r} is not an L image of its size")
                body = f.image.tobytes()
            else:
                body = _frame_file(f.image, ".png", png_level)
        elif how == b"T":
            body = None   # filled in below, from the chunks written
        else:
            body = frames.info[f"raw:{i}"]
        chunks.append((typ, body))
    if next(it, None) is not None:
        raise WriteError("ICNS frames left over after its layout")
    toc = _icns_toc([(t, b) for t, b in chunks if b is not None])
    chunks = [(t, toc if b is None else b) for t, b in chunks]
    body = b"".join(t + struct.pack(">I", len(b) + 8) + b for t, b in chunks)
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def _read_tiff_pages(im: Image.Image, data: bytes, max_pixels: int) -> Frames:
    from .pixels import normalize_page

    frames = []
    for i in range(im.n_frames):
        try:
            im.seek(i)
            frames.append(Frame(normalize_page(im, max_pixels)))
        except TricodecError as e:
            raise EncodeError(f"TIFF page {i}: {e}") from None
        except Exception as e:
            raise EncodeError(f"TIFF page {i}: cannot read it ({type(e).__name__}: {e})") from None
    return Frames("TIFF", frames)


# ---- the .tric file ---------------------------------------------------------------------------------

def is_frames(data) -> bool:
    """Is ``data`` (or its first 6 bytes) a multi-frame .tric file?"""
    head = bytes(data[:6])
    return len(head) == 6 and head[:4] == fmt.MAGIC and bool(head[5] & fmt.FLAG_FRAMES)


def encode_frames(source, *, device: str = "auto", model=None, max_pixels: int = fmt.DEFAULT_MAX_PIXELS) -> bytes:
    """Encode a multi-frame image (a :class:`Frames`, a path, file bytes, or a PIL image opened from a
    file) as one ``.tric`` file: each frame coded like :func:`tricodec.encode`."""
    from .codec import encode_batch

    frames = source if isinstance(source, Frames) else read_frames(source, max_pixels)
    if not frames.frames or len(frames) > MAX_FRAMES or frames.kind not in KINDS:
        raise EncodeError(f"cannot encode {len(frames)} frames of kind {frames.kind!r}")
    datas = encode_batch([f.image for f in frames], device=device, model=model, max_pixels=max_pixels)
    kind = frames.kind.encode("ascii")
    parts = [bytes([len(kind)]), kind, _blob(metadata.pack(frames.info)), _U32.pack(len(frames))]
    for f, d in zip(frames, datas):
        parts += [_blob(metadata.pack(f.params)), _blob(d)]
    payload = b"".join(parts)
    first = fmt.unpack(datas[0], max_pixels)[0]
    header = fmt.Header(width=first.width, height=first.height, channels=first.channels,
                        bit_depth=first.bit_depth, mode=first.mode, flags=fmt.FLAG_FRAMES)
    return fmt.pack(header, [(fmt.SEC_FRAMES, payload)], zlib.crc32(payload))


def _blob(b: bytes) -> bytes:
    return _U32.pack(len(b)) + b


def _take(buf: memoryview, pos: int, n: int) -> tuple[memoryview, int]:
    if n > len(buf) - pos:
        raise DecodeError("corrupted frames section (truncated)")
    return buf[pos:pos + n], pos + n


def _take_blob(buf: memoryview, pos: int) -> tuple[memoryview, int]:
    raw, pos = _take(buf, pos, 4)
    return _take(buf, pos, _U32.unpack(raw)[0])


def read_frames_info(data, max_pixels: int = fmt.DEFAULT_MAX_PIXELS) -> tuple[fmt.Header, str, dict, list]:
    """(header, kind, file parameters, [(frame parameters, frame .tric bytes)]) of a multi-frame file,
    everything checked (CRC, lengths, limits) before any frame is decoded."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    header, sections = fmt.unpack(data, max_pixels, frames=True)
    if not header.flags & fmt.FLAG_FRAMES:
        raise DecodeError("not a multi-frame file: decode it with tricodec.decode")
    if header.flags & fmt.FLAG_FALLBACK or header.model_name or any(header.model_hash):
        raise DecodeError("multi-frame file header names a model or a fallback")
    buf = sections[fmt.SEC_FRAMES]
    if fmt.file_crc(data, zlib.crc32(buf)) != header.crc32:
        raise DecodeError("CRC mismatch: the file is corrupted")
    kind_len, pos = _take(buf, 0, 1)
    kind, pos = _take(buf, pos, kind_len[0])
    kind = bytes(kind).decode("latin-1")
    if kind not in KINDS:
        raise DecodeError(f"unknown kind of multi-frame file {kind!r}")
    info, pos = _take_blob(buf, pos)
    info = metadata.unpack(info)
    count, pos = _take(buf, pos, 4)
    count = _U32.unpack(count)[0]
    if not 1 <= count <= MAX_FRAMES or count > (len(buf) - pos) // 8:
        raise DecodeError(f"corrupted frames section ({count} frames)")
    frames, total = [], 0
    for _ in range(count):
        params, pos = _take_blob(buf, pos)
        one, pos = _take_blob(buf, pos)
        h = fmt.unpack(one, max_pixels)[0]   # each frame: a single-image file (a nested frames file is refused)
        total += h.width * h.height
        frames.append((metadata.unpack(params), one))
    if pos != len(buf):
        raise DecodeError("corrupted frames section (trailing bytes)")
    if total > MAX_TOTAL_PIXELS_FACTOR * max_pixels:
        raise DecodeError(f"{count} frames of {total} pixels in all exceed the limit of "
                          f"{MAX_TOTAL_PIXELS_FACTOR * max_pixels}")
    _check_params(kind, info, [p for p, _ in frames])
    return header, kind, info, frames


def _check_params(kind: str, info: dict, params: list) -> None:
    """The stored parameters are the ones this kind has, of the right sizes (a decoder writes them back)."""
    if kind == "APNG":
        if set(info) != {"num_plays"} or len(info["num_plays"]) != 4:
            raise DecodeError("corrupted APNG parameters")
        for i, p in enumerate(params):
            ok = (set(p) == {"fctl"} and len(p["fctl"]) == 22) or (i == 0 and set(p) == {"hidden"})
            if not ok:
                raise DecodeError(f"corrupted APNG frame {i} parameters")
        if all("hidden" in p for p in params):
            raise DecodeError("corrupted APNG parameters (no animation frame)")
    elif kind == "GIF":
        head = info.get("head", b"")
        if set(info) != {"head", "tail"} or head[:6] not in (b"GIF87a", b"GIF89a") or len(head) < 13:
            raise DecodeError("corrupted GIF parameters")
        for i, p in enumerate(params):
            if set(p) != {"ext", "desc", "lct"} or len(p["desc"]) != 9 or len(p["lct"]) != _gif_table(p["desc"][8]):
                raise DecodeError(f"corrupted GIF frame {i} parameters")
    elif kind == "ICO":
        if set(info) != {"type"} or info["type"] not in (b"\x01\x00", b"\x02\x00"):
            raise DecodeError("corrupted ICO parameters")
        for i, p in enumerate(params):
            ok = len(p.get("entry", b"")) == 8 and (set(p) == {"entry", "png"} or (
                {"entry", "dib", "mask"} <= set(p) <= {"entry", "dib", "mask", "rest"} and len(p["dib"]) >= 40
                and struct.unpack_from("<H", p["dib"], 14)[0] in (1, 4, 8, 24, 32)))
            if not ok:
                raise DecodeError(f"corrupted ICO image {i} parameters")
    elif kind == "ICNS":
        layout = info.get("layout", b"")
        if len(layout) % 5 or not layout:
            raise DecodeError("corrupted ICNS parameters")
        items = [(layout[k:k + 4], layout[k + 4:k + 5]) for k in range(0, len(layout), 5)]
        framed = [t for t, how in items if how in (b"P", b"M")]
        raws = {f"raw:{k}" for k, (_, how) in enumerate(items) if how == b"V"}
        if any(how not in b"PMTV" or len(how) != 1 for _, how in items) or set(info) != raws | {"layout"} \
                or [p.get("type") for p in params] != framed or any(set(p) != {"type"} for p in params) \
                or any(t not in _ICNS_MASKS for t, how in items if how == b"M"):
            raise DecodeError("corrupted ICNS parameters")
    elif info or any(params):
        raise DecodeError(f"corrupted {kind} parameters")


def decode_frames(data, *, device: str = "auto", model=None, max_pixels: int = fmt.DEFAULT_MAX_PIXELS):
    """Iterate over the frames of a multi-frame ``.tric`` file: :class:`Frame` objects (``.image``: a PIL
    image or a uint16 array for 16-bit colour, with its metadata; ``.params``, ``.timing``), one decoded
    at a time. The whole file is checked before the first frame is decoded. A single-image file gives
    its one image as one frame."""
    from .codec import decode_any

    if not is_frames(data):
        yield Frame(decode_any(data, device=device, model=model, max_pixels=max_pixels))
        return
    _, _, _, frames = read_frames_info(data, max_pixels)
    for params, one in frames:
        yield Frame(decode_any(one, device=device, model=model, max_pixels=max_pixels), params)


def decode_all(data, *, device: str = "auto", model=None, max_pixels: int = fmt.DEFAULT_MAX_PIXELS) -> Frames:
    """A multi-frame file decoded whole: its :class:`Frames` (what :func:`write_frames` writes)."""
    from .codec import decode_batch

    _, kind, info, frames = read_frames_info(data, max_pixels)
    images = decode_batch([bytes(one) for _, one in frames], device=device, model=model, max_pixels=max_pixels)
    return Frames(kind, [Frame(im, p) for im, (p, _) in zip(images, frames)], info)


# ---- a file that may hold frames: what the CLI and the Ray/URL pipeline code -------------------------

def read_source(path):
    """An input file as the codec takes it: the :class:`Frames` of a multi-frame file this module keeps,
    else one image (``pixels.read_image``: full depth, what cannot be kept whole refused)."""
    from .pixels import read_image

    return read_frames(path) if is_multi_frame_file(path) else read_image(Path(path))


def encode_source(image, *, device: str = "auto", model=None) -> bytes:
    """:func:`encode_frames` of Frames, ``tricodec.encode`` of an image."""
    from .codec import encode

    if isinstance(image, Frames):
        return encode_frames(image, device=device, model=model)
    return encode(image, device=device, model=model)


def decode_source(data, *, device: str = "auto", model=None):
    """The Frames of a multi-frame file (decoded whole), else its one image (``tricodec.decode_any``)."""
    from .codec import decode_any

    if is_frames(data):
        return decode_all(data, device=device, model=model)
    return decode_any(data, device=device, model=model)


def raw_size(image) -> int:
    """Pixel bytes of an image, or of every frame of Frames."""
    from .pixels import pixel_bytes

    if isinstance(image, Frames):
        return sum(len(pixel_bytes(f.image)) for f in image)
    return len(pixel_bytes(image))


def check_output_suffix(frames: Frames, suffix: str) -> None:
    """WriteError unless a file named with ``suffix`` is of the frames' kind (the only format that holds
    them: an APNG goes back to .png/.apng, pages to .tif/.tiff ...)."""
    ext = Image.registered_extensions()
    if ext.get(suffix.lower(), suffix) != ext[frames.suffix]:
        raise WriteError(f"a multi-frame {frames.kind} ({len(frames)} frames) is written back as {frames.kind} "
                         f"({frames.suffix}); {suffix} cannot hold its frames")


# ---- writing files ----------------------------------------------------------------------------------

def write_frames(frames: Frames, path, png_level: int | None = None) -> None:
    """Write frames as a file of their kind (APNG, multi-page TIFF) to a path or a binary file object,
    after checking that it reads back as the same frames, parameters and metadata (WriteError if not)."""
    data = {"APNG": lambda: _apng_bytes(frames, png_level), "TIFF": lambda: _tiff_bytes(frames),
            "GIF": lambda: _gif_bytes(frames), "ICO": lambda: _ico_bytes(frames, png_level),
            "ICNS": lambda: _icns_bytes(frames, png_level)}[frames.kind]()
    differ = frames_differ(frames, read_frames(data, max_pixels=1 << 62))
    if differ:
        raise WriteError(f"the {frames.kind} written would not give back the same {len(frames)} frames ({differ})")
    if isinstance(path, (str, Path)):
        Path(path).write_bytes(data)
    else:
        path.write(data)


def same_frames(a: Frames, b: Frames) -> bool:
    """Same kind, parameters and frames (mode, size, pixels, palette, kept metadata)."""
    return frames_differ(a, b) is None


def frames_differ(a: Frames, b: Frames) -> str | None:
    """What differs between two Frames (None: nothing)."""
    from .pixels import describe, palette, pixel_bytes

    if a.kind != b.kind or a.info != b.info or len(a) != len(b):
        return f"{a.kind} of {len(a)} frames ({a.info}) against {b.kind} of {len(b)} ({b.info})"
    for i, (x, y) in enumerate(zip(a, b)):
        if x.params != y.params:
            return f"frame {i}: parameters {x.timing} against {y.timing}"
        if describe(x.image) != describe(y.image) or palette(x.image) != palette(y.image) \
                or pixel_bytes(x.image) != pixel_bytes(y.image):
            return f"frame {i}: pixels, mode or palette"
        mx, my = metadata.collect(x.image), metadata.collect(y.image)
        if mx != my:
            keys = sorted(k for k in set(mx) | set(my) if mx.get(k) != my.get(k))
            return f"frame {i}: metadata {', '.join(keys)}"
    return None


def _frame_file(image, suffix: str, png_level: int | None) -> bytes:
    from .pixels import write_image

    buf = io.BytesIO()
    write_image(image, buf, suffix, png_level=png_level)
    return buf.getvalue()


def _apng_bytes(frames: Frames, png_level: int | None) -> bytes:
    pngs = [png_chunks(_frame_file(f.image, ".png", png_level), WriteError) for f in frames]
    first = pngs[0]
    head = [(t, b) for t, b in first if t not in (b"IHDR", b"IDAT", b"IEND")]
    for i, chunks in enumerate(pngs):
        if chunks[0][1][8:] != first[0][1][8:]:
            raise WriteError(f"APNG frame {i} has another bit depth or colour type than the first: one APNG "
                             "holds one kind of frame")
        if [(t, b) for t, b in chunks if t not in (b"IHDR", b"IDAT", b"IEND")] != head:
            raise WriteError(f"APNG frame {i} has other metadata or another palette than the first: one APNG "
                             "holds one set")
    plays = frames.info["num_plays"]
    n_anim = sum(1 for f in frames if "fctl" in f.params)
    out = [PNG_SIGNATURE, _chunk(b"IHDR", first[0][1]),
           _chunk(b"acTL", struct.pack(">II", n_anim, _U32.unpack(plays)[0]))]
    out += [_chunk(t, b) for t, b in head]
    seq = 0
    for i, (f, chunks) in enumerate(zip(frames, pngs)):
        idats = [b for t, b in chunks if t == b"IDAT"]
        if "fctl" in f.params:
            fctl = f.params["fctl"]
            if struct.unpack(">II", fctl[:8]) != struct.unpack(">II", chunks[0][1][:8]):
                raise WriteError(f"APNG frame {i}: its size differs from its fcTL")
            out.append(_chunk(b"fcTL", struct.pack(">I", seq) + fctl))
            seq += 1
        for d in idats:
            if i == 0:
                out.append(_chunk(b"IDAT", d))
            else:
                out.append(_chunk(b"fdAT", struct.pack(">I", seq) + d))
                seq += 1
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def _tiff_bytes(frames: Frames) -> bytes:
    from PIL import TiffImagePlugin

    out = io.BytesIO()
    with TiffImagePlugin.AppendingTiffWriter(out, new=True) as tf:
        for f in frames:
            tf.write(_frame_file(f.image, ".tiff", None))
            tf.newFrame()
    return out.getvalue()
