"""Mutation fuzzer for tricodec: the ``.tric`` decoder and the encoder's image-file reader.

A library module, used by ``tests/test_fuzz.py`` (a short seeded run in CI) and ``perf/fuzz_long.py``
(the long run).  The container layout is parsed again here from the format description
(``tricodec/container.py``'s docstring), not with the library's parser, so a broken parser cannot hide
its own bugs; the library is only used to *make* valid inputs (its encoder, its packer for the
PNG-fallback seeds, its side-information coder for the crafted big-header cases).

* Seed corpus: :func:`build_corpus` encodes small images that cover every path of the format (model
  path L/LA/RGB/RGBA with one or several lanes, fallback STORED/LZMA/PNG for noise, P, CMYK, I;16,
  1-bit, 1x1, 16-bit colour arrays, files with a META section).  :func:`build_image_corpus` writes
  small PNG/JPEG/GIF/TIFF/BMP/PPM files for the encoder side.
* Cases: :func:`decode_case` / :func:`encode_case` turn ``(seed, index)`` into one mutated input,
  deterministically (``random.Random`` seeded with a string), with a description of every mutation
  applied; :func:`sweep_cases` is the exhaustive structured part (every section boundary cut, every
  length field set to every extreme, every header swap and section splice between seeds).  Besides
  blind bit flips, insertions, deletions and truncations, the mutators know the format: header fields
  and section/lane lengths set to extremes (0, 1, 2^31-1, 2^32-1, off by one), balanced lane-count
  changes that keep the sums valid, side tables with moved probability mass, sections spliced or
  headers swapped between seeds, META sections rebuilt with a *correct* CRC, FALLBACK palettes and
  embedded PNG chunks changed with their CRCs fixed.  Image files for the encoder get header-field
  extremes per format (PNG IHDR with CRC fixed, JPEG SOF, TIFF IFD, GIF, BMP, PNM) and tEXt floods.
* Oracle: :func:`run_case` decodes with ``tricodec.decode_any(data, device="cpu")`` and classifies:
  ``"ok"`` (decoded; the pixels must hash to the header's CRC and match the header's size and mode,
  and equal the original image when the input is an unmutated seed), ``"DecodeError"``, or a
  failure (any other exception, ``MemoryError`` and other ``TricodecError`` subclasses included;
  or ``header-mismatch``: decoded, but not in the size/mode the header states).  Accepted files that
  decode to another image than their seed (the CRC covers pixel bytes, not the header or a palette)
  are counted as ``ok/altered`` and listed, not failed (``strict_altered`` fails them).
  :func:`run_encode_case` reads the file with ``tricodec.pixels.read_image`` and encodes it: success
  (then the round trip must be exact) or ``EncodeError``; anything else is a failure.  Both then
  write the decoded image as the CLI does (``pixels.write_image``): anything but a TricodecError
  there is a ``write`` failure (a file tricodec accepted or wrote must be writable back out).
* Sandbox: :class:`WorkerPool` runs cases in ``spawn``-ed worker processes, each with
  ``RLIMIT_AS`` (default 3 GiB), a per-case timeout (default 10 s; a hung worker is killed and
  replaced, the case reported as ``hang``), a peak-RSS check (a case that pushes the worker past
  ``rss_limit`` is reported as ``memory``) and crash detection (a worker that dies is ``crash``).
"""
from __future__ import annotations

import io
import os
import random
import re
import resource
import struct
import sys
import tempfile
import time
import traceback
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np
from PIL import Image, PngImagePlugin

from tricodec.container import file_crc
from tricodec.pixels import content_crc

# ============================================================================================
# The container layout, restated from tricodec/container.py's docstring (format version 1)
# ============================================================================================

HEADER_SIZE = 48
SEC_SIDE, SEC_LANES, SEC_FALLBACK, SEC_META, SEC_DEEP = 1, 2, 3, 4, 6
SECTION_NAMES = {SEC_SIDE: "SIDE", SEC_LANES: "LANES", SEC_FALLBACK: "FALLBACK", SEC_META: "META",
                 SEC_DEEP: "DEEP"}
# name -> (offset, size); integer fields are little-endian
HEADER_FIELDS = {
    "magic": (0, 4), "version": (4, 1), "flags": (5, 1), "header_len": (6, 2), "width": (8, 4),
    "height": (12, 4), "channels": (16, 1), "bit_depth": (17, 1), "mode": (18, 8),
    "model_name": (26, 8), "model_hash": (34, 8), "crc32": (42, 4), "n_sections": (46, 1),
    "reserved": (47, 1),
}
INT_HEADER_FIELDS = ["version", "flags", "header_len", "width", "height", "channels", "bit_depth",
                     "crc32", "n_sections", "reserved"]
LANE_LOG2_RANGE = (6, 16)
DEEP_MODES = {"RGB;16": 3, "RGBA;16": 4, "LA;16": 2}
# Every mode name a header might carry, valid Pillow modes and not.
MODE_NAMES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB",
              "HSV", "I", "F", "I;16", "I;16B", "I;16L", "I;16N", "I;16S", "RGB;16", "RGBA;16", "LA;16",
              "BGR;15", "BGR;16", "BGR;24", "RGB;15", "X", "", "rgb", "L\x01", "\x7f"]
MODEL_NAMES = ["", "tric-bs1", "tric-bs2", "tric-cx1", "tric-wf1", "tric-wf2", "tric-wf3", "TRIC-BS1", "x" * 8, "tric-bs",
               "tric-cx", "tric-wf"]


def _block_log2() -> int:
    try:
        from tricodec.model import load_model
        return int(load_model("tric-bs2").block_log2)
    except Exception:  # pragma: no cover - the fuzzer still runs against a broken model loader
        return 3


BLOCK_LOG2 = _block_log2()


@dataclass(frozen=True)
class Section:
    tag: int
    start: int      # offset of the tag byte
    payload: int    # offset of the payload
    length: int     # declared length (may run past the end in a damaged file)

    @property
    def end(self) -> int:
        return self.payload + self.length

    @property
    def name(self) -> str:
        return SECTION_NAMES.get(self.tag, f"tag{self.tag}")


def get_field(data: bytes, name: str) -> int:
    off, size = HEADER_FIELDS[name]
    return int.from_bytes(data[off:off + size], "little")


def put_field(buf: bytearray, name: str, value: int) -> None:
    off, size = HEADER_FIELDS[name]
    buf[off:off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def header_text(data: bytes, name: str) -> str:
    off, size = HEADER_FIELDS[name]
    return bytes(data[off:off + size]).rstrip(b"\0").decode("ascii", "replace")


def sections_of(data: bytes) -> list[Section]:
    """The section table as far as it can be read (tolerant: stops at the first entry that does not fit)."""
    out = []
    if len(data) < HEADER_SIZE:
        return out
    pos = HEADER_SIZE
    for _ in range(data[46]):
        if pos + 5 > len(data):
            break
        tag, length = struct.unpack_from("<BI", data, pos)
        out.append(Section(tag, pos, pos + 5, length))
        if pos + 5 + length > len(data):
            break
        pos += 5 + length
    return out


@dataclass(frozen=True)
class LaneStream:
    section: Section
    log2_off: int      # offset of the lane_log2 byte
    counts_off: int    # offset of counts[0]
    n_lanes: int       # lanes the header implies (clamped to the bytes present)

    @property
    def words_off(self) -> int:
        return self.counts_off + 4 * self.n_lanes


def lane_streams(data: bytes) -> list[LaneStream]:
    """The lane streams of a block-scale model file: the one inside SIDE (after ``k | freq u16 x k``) and
    LANES (context-model files have another layout: none here)."""
    if len(data) < HEADER_SIZE or not data[26:34].startswith(b"tric-bs"):
        return []
    w, h, ch = get_field(data, "width"), get_field(data, "height"), get_field(data, "channels")
    bs = 1 << BLOCK_LOG2
    out = []
    for sec in sections_of(data):
        end = min(sec.end, len(data))
        if sec.tag == SEC_LANES:
            off, n_sym = sec.payload, ch * w * h
        elif sec.tag == SEC_SIDE and sec.payload < end:
            off, n_sym = sec.payload + 1 + 2 * data[sec.payload], ch * (-(-h // bs)) * (-(-w // bs))
        else:
            continue
        if off >= end:
            continue
        lane_log2 = data[off]
        if not LANE_LOG2_RANGE[0] <= lane_log2 <= LANE_LOG2_RANGE[1]:
            continue
        n_lanes = min(-(-n_sym // (1 << lane_log2)), max(0, (end - off - 1) // 4))
        out.append(LaneStream(sec, off, off + 1, n_lanes))
    return out


def boundaries(data: bytes) -> list[int]:
    """Every structural boundary of a file: header fields, section entries, payloads, lane tables."""
    cuts = {0, 4, 5, 6, 8, 12, 16, 18, 26, 34, 42, 46, HEADER_SIZE, len(data)}
    for sec in sections_of(data):
        cuts |= {sec.start, sec.start + 1, sec.payload, sec.end}
        if sec.tag == SEC_SIDE and sec.payload < len(data):
            cuts |= {sec.payload + 1, sec.payload + 1 + 2 * data[sec.payload]}
        if sec.tag == SEC_FALLBACK:
            cuts |= {sec.payload + 1, sec.payload + 5, sec.payload + 9}
    for ls in lane_streams(data):
        cuts |= {ls.log2_off, ls.counts_off, ls.words_off, ls.counts_off + 4 * max(0, ls.n_lanes - 1)}
    return sorted(c for c in cuts if 0 <= c <= len(data))


def _u32(v: int) -> bytes:
    return (v & 0xFFFFFFFF).to_bytes(4, "little")


def int_extremes(size: int, orig: int) -> list[int]:
    """0, 1, 2, 2^31-1, 2^32-1, off-by-one ... for a ``size``-byte unsigned field holding ``orig``."""
    top = (1 << (8 * size)) - 1
    vals = {0, 1, 2, top, top >> 1, (top >> 1) + 1, (orig - 1) & top, (orig + 1) & top,
            (orig * 2) & top, orig >> 1, (orig + 2) & top}
    if size >= 2:
        vals |= {255, 256}
    if size >= 4:
        vals |= {(1 << 16) - 1, 1 << 16, (1 << 16) + 1, 1 << 24, (1 << 31) - 1, (1 << 32) - 1, 1 << 31}
    vals.discard(orig)
    return sorted(vals)


# ============================================================================================
# Seed corpora
# ============================================================================================

def photo_like(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth random field plus noise (the same recipe as tests/helpers.py)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), channels)).astype(np.uint8)
    big = np.asarray(Image.fromarray(small.squeeze(-1) if channels == 1 else small).resize((w, h), Image.BILINEAR))
    noise = rng.integers(-3, 4, big.shape)
    return np.clip(big.astype(int) + noise, 0, 255).astype(np.uint8).reshape(h, w, channels)


def _png_roundtrip(image: Image.Image, **save) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, format="PNG", **save)
    out = Image.open(io.BytesIO(buf.getvalue()))
    out.load()
    return out


def seed_images() -> list[tuple[str, object]]:
    """(name, image) pairs: PIL images of many modes and sizes, and 16-bit colour numpy arrays."""
    rgb = lambda h, w, s: Image.fromarray(photo_like(h, w, 3, s), "RGB")  # noqa: E731
    photo = _photo_crop  # real photo content: the model must win over the PNG fallback on these seeds
    rng = np.random.default_rng(1234)
    flat = np.zeros((30, 40, 3), np.uint8)
    flat[:, :20] = (200, 30, 30)
    flat[10:20] = (10, 200, 10)
    pal = rgb(20, 30, 5).quantize(12)
    pal_t = rgb(16, 18, 6).quantize(8)
    pal_t.info["transparency"] = 3
    meta = rgb(17, 21, 7)
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "fuzz seed")
    info.add_itxt("Comment", "caf\u00e9")
    i16 = (photo_like(15, 21, 1, 8).reshape(15, 21).astype(np.uint16) * 257)
    return [
        ("rgb_photo_41x34", Image.fromarray(photo(34, 41, 1), "RGB")),
        ("rgb_photo_96x80_3lanes", Image.fromarray(photo(80, 96, 2), "RGB")),
        ("l_photo_37x29", Image.fromarray(photo_like(29, 37, 1, 3)[:, :, 0], "L")),
        ("rgba_photo_23x19", Image.fromarray(np.dstack([photo(19, 23, 4), photo_like(19, 23, 1, 4)]), "RGBA")),
        ("la_photo_20x16", Image.fromarray(photo_like(16, 20, 2, 9), "LA")),
        ("rgb_noise_24x16", Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=np.uint8), "RGB")),
        ("rgb_flat_40x30", Image.fromarray(flat, "RGB")),
        ("p_palette_30x20", pal),
        ("p_transparency_18x16", _png_roundtrip(pal_t, transparency=3)),
        ("cmyk_17x13", rgb(13, 17, 10).convert("CMYK")),
        ("i16_21x15", Image.fromarray(i16.astype("<u2"))),
        ("bilevel_33x9", rgb(9, 33, 11).convert("1")),
        ("rgb_1x1", Image.new("RGB", (1, 1), (1, 2, 3))),
        ("l_1x1", Image.new("L", (1, 1), 77)),
        ("rgb_meta_21x17", _png_roundtrip(meta, pnginfo=info, icc_profile=b"fake icc profile" * 3,
                                          exif=b"Exif\0\0MM\0*\0\0\0\x08\0\0")),
        ("rgb16_array_13x11", (np.random.default_rng(12).integers(0, 65536, (11, 13, 3))).astype(np.uint16)),
        ("rgba16_array_7x5", (photo_like(5, 7, 4, 13).astype(np.uint16) * 251)),
        # model-coded 16-bit (the depth split): a photo's samples on top, noise in the 5 bits below
        ("rgb16_photo_24x20", (photo(20, 24, 14).astype(np.uint16) << 5) + rng.integers(0, 32, (20, 24, 3),
                                                                                        dtype=np.uint16)),
        ("i16_photo_22x18", Image.fromarray((photo(18, 22, 15)[:, :, 1].astype("<u2") << 4)
                                            + rng.integers(0, 16, (18, 22), dtype="<u2"))),
        ("la16_photo_20x19", (photo(19, 20, 16)[:, :, 1:].astype(np.uint16) << 6)
         + rng.integers(0, 64, (19, 20, 2), dtype=np.uint16)),
    ]


def _photo_crop(h: int, w: int, seed: int) -> np.ndarray:
    """An h x w RGB crop of a shipped photo (samples/kodim05_crop.png), placed by ``seed``. The synthetic
    ``photo_like`` images are smooth enough that a tuned PNG beats the model on them, and seeds meant for
    the model path must take it."""
    from pathlib import Path
    k = np.asarray(Image.open(Path(__file__).resolve().parents[1] / "samples" / "kodim05_crop.png").convert("RGB"))
    y, x = (seed * 37) % (k.shape[0] - h), (seed * 53) % (k.shape[1] - w)
    return np.ascontiguousarray(k[y:y + h, x:x + w])


def image_digest(image) -> str:
    """Identity of decoded pixels: mode/dtype, size, bytes and palette."""
    import hashlib
    h = hashlib.sha256()
    if isinstance(image, np.ndarray):
        h.update(f"ndarray|{image.dtype.str}|{image.shape}|".encode())
        h.update(np.ascontiguousarray(image).tobytes())
    else:
        h.update(f"{image.mode}|{image.size}|".encode())
        h.update(image.tobytes())
        if image.mode in ("P", "PA"):
            h.update(bytes(image.getpalette() or []))
    return h.hexdigest()


def pixel_bytes(image) -> bytes:
    """What the header's CRC covers: Pillow ``tobytes()``, or big-endian samples of a deep array."""
    if isinstance(image, np.ndarray):
        return image.astype(">u2").tobytes()
    return image.tobytes()


@dataclass(frozen=True, repr=False)
class Seed:
    name: str
    data: bytes
    digest: str     # image_digest of the original image

    def __repr__(self) -> str:
        return f"Seed({self.name}, {len(self.data)} B)"


def _png_fallback_file(image: Image.Image) -> bytes:
    """A valid file whose FALLBACK section holds a PNG (the encoder picks PNG only for some graphics, so
    this seed is packed directly, with the library's own packer and PNG writer)."""
    from tricodec import container, fallback
    from tricodec.pixels import describe
    mode, channels, depth, w, h = describe(image)
    header = container.Header(width=w, height=h, channels=channels, bit_depth=depth, mode=mode,
                              flags=container.FLAG_FALLBACK)
    return container.pack(header, [(container.SEC_FALLBACK, fallback.encode_png(image))], content_crc(image))


WF3_SEEDS = ("rgb_photo_96x80_3lanes", "l_photo_37x29", "rgba_photo_23x19", "i16_21x15")


def build_corpus() -> list[Seed]:
    """Encode every seed image (deterministic: the codec is integer-exact)."""
    import tricodec
    out = []
    for name, image in seed_images():
        digest = image_digest(image)
        out.append(Seed(name, tricodec.encode(image, device="cpu"), digest))
        # The earlier models' SIDE/LANES layouts too (their files must keep decoding).
        out.append(Seed(name + "_bs2", tricodec.encode(image, device="cpu", model="tric-bs2"), digest))
        out.append(Seed(name + "_cx1", tricodec.encode(image, device="cpu", model="tric-cx1"), digest))
        out.append(Seed(name + "_wf1", tricodec.encode(image, device="cpu", model="tric-wf1"), digest))
        if name in WF3_SEEDS:   # the fused model's layout (a few images: each seed multiplies the sweep)
            out.append(Seed(name + "_wf3", tricodec.encode(image, device="cpu", model="tric-wf3"), digest))
    for name, image in [("p_png_fallback_24x20", Image.fromarray(photo_like(20, 24, 3, 31), "RGB").quantize(20)),
                        ("rgba_png_fallback_12x10", Image.fromarray(photo_like(10, 12, 4, 32), "RGBA"))]:
        out.append(Seed(name, _png_fallback_file(image), image_digest(image)))
    return out


def describe_seed(seed: Seed) -> str:
    secs = ",".join(f"{s.name}:{s.length}" for s in sections_of(seed.data))
    return f"{seed.name}: {len(seed.data)} B, mode {header_text(seed.data, 'mode')}, sections {secs}"


# ---- image files for the encoder side ----

def _save(image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png16(arr: np.ndarray, **kw) -> bytes:
    import png
    h, w, c = arr.shape
    buf = io.BytesIO()
    png.Writer(width=w, height=h, bitdepth=16, greyscale=False, alpha=(c == 4), **kw).write(
        buf, arr.reshape(h, w * c).tolist())
    return buf.getvalue()


@dataclass(frozen=True, repr=False)
class ImageSeed:
    name: str
    suffix: str
    data: bytes

    def __repr__(self) -> str:
        return f"ImageSeed({self.name}, {len(self.data)} B)"


def _sgi16(arr: np.ndarray, rle: bool) -> bytes:
    """A 16-bit SGI file: 512-byte header, planes bottom row first; RLE rows as literal runs of <= 100 items."""
    h, w, c = arr.shape
    head = struct.pack(">hBBHHHH", 474, int(rle), 2, 3, w, h, c).ljust(512, b"\0")
    if not rle:
        return head + b"".join(arr[::-1, :, z].astype(">u2").tobytes() for z in range(c))
    rows = []
    for z in range(c):
        for y in range(h):
            row = arr[h - 1 - y, :, z].tolist()
            items = sum(([0x80 | len(row[k:k + 100])] + row[k:k + 100] for k in range(0, w, 100)), []) + [0]
            rows.append(np.array(items, ">u2").tobytes())
    starts = 512 + 8 * len(rows) + np.concatenate([[0], np.cumsum([len(r) for r in rows])[:-1]])
    return head + np.asarray(starts, ">u4").tobytes() + np.asarray([len(r) for r in rows], ">u4").tobytes() \
        + b"".join(rows)


def build_image_corpus() -> list[ImageSeed]:
    """Small valid image files of the formats read_image meets (deterministic bytes)."""
    rgb = Image.fromarray(photo_like(20, 24, 3, 21), "RGB")
    rgba = Image.fromarray(photo_like(14, 16, 4, 22), "RGBA")
    gray = Image.fromarray(photo_like(18, 15, 1, 23)[:, :, 0], "L")
    pal = rgb.quantize(16)
    bw = rgb.convert("1")
    i16 = Image.fromarray((photo_like(12, 13, 1, 24)[:, :, 0].astype(np.uint16) * 257).astype("<u2"))
    f32 = Image.fromarray(photo_like(9, 11, 1, 25)[:, :, 0].astype(np.float32) / 3, "F")
    i32 = Image.fromarray(photo_like(9, 11, 1, 26)[:, :, 0].astype(np.int32) * 1000, "I")
    deep = photo_like(10, 12, 3, 27).astype(np.uint16) * 257
    frame2 = Image.fromarray(photo_like(20, 24, 3, 28), "RGB").quantize(16)
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "fuzz")
    exif = Image.Exif()
    exif[0x010F] = "fuzz camera"   # Make
    exif[0x0112] = 1               # Orientation
    exif = exif.tobytes()
    files = [
        ("rgb", ".png", _save(rgb, "PNG")),
        ("rgb_meta", ".png", _save(rgb, "PNG", pnginfo=info, icc_profile=b"icc" * 10)),
        ("rgba", ".png", _save(rgba, "PNG")),
        ("l", ".png", _save(gray, "PNG")),
        ("la", ".png", _save(gray.convert("LA"), "PNG")),
        ("p", ".png", _save(pal, "PNG")),
        ("p_trns", ".png", _save(pal, "PNG", transparency=2)),
        ("bilevel", ".png", _save(bw, "PNG")),
        ("i16", ".png", _save(i16, "PNG")),
        ("rgb16", ".png", _png16(deep)),
        ("rgba16_interlaced", ".png", _png16(np.concatenate([deep, deep[:, :, :1]], axis=2), interlace=True)),
        ("rgb", ".jpg", _save(rgb, "JPEG", quality=90)),
        ("cmyk_exif", ".jpg", _save(rgb.convert("CMYK"), "JPEG", quality=80, exif=exif)),
        ("rgb_exif", ".jpg", _save(rgb, "JPEG", quality=80, exif=exif)),
        ("cmyk_bad_exif", ".jpg", _save(rgb.convert("CMYK"), "JPEG", quality=80, exif=b"Exif\0\0not a TIFF block")),
        ("l", ".jpg", _save(gray, "JPEG", quality=85)),
        ("cmyk", ".jpg", _save(rgb.convert("CMYK"), "JPEG", quality=80)),
        ("rgb_progressive", ".jpg", _save(rgb, "JPEG", quality=75, progressive=True)),
        ("p", ".gif", _save(pal, "GIF")),
        ("animated", ".gif", _save(pal, "GIF", save_all=True, append_images=[frame2], duration=100)),
        ("rgb", ".tif", _save(rgb, "TIFF")),
        ("rgb_lzw", ".tif", _save(rgb, "TIFF", compression="tiff_lzw")),
        ("l_deflate", ".tif", _save(gray, "TIFF", compression="tiff_adobe_deflate")),
        ("rgba_packbits", ".tif", _save(rgba, "TIFF", compression="packbits")),
        ("cmyk", ".tif", _save(rgb.convert("CMYK"), "TIFF")),
        ("i16", ".tif", _save(i16, "TIFF")),
        ("f32", ".tif", _save(f32, "TIFF")),
        ("i32", ".tif", _save(i32, "TIFF")),
        ("p", ".tif", _save(pal, "TIFF")),
        ("bilevel_g4", ".tif", _save(bw, "TIFF", compression="group4")),
        ("rgb", ".bmp", _save(rgb, "BMP")),
        ("p", ".bmp", _save(pal, "BMP")),
        ("l", ".bmp", _save(gray, "BMP")),
        ("bilevel", ".bmp", _save(bw, "BMP")),
        ("rgba", ".bmp", _save(rgba, "BMP")),
        ("rgb", ".ppm", _save(rgb, "PPM")),
        ("l", ".pgm", _save(gray, "PPM")),
        # 16-bit PNM: read at full depth by tricodec's own parser (Pillow truncates or widens them)
        ("rgb16", ".ppm", b"P6\n# deep\n12 10\n65535\n" + deep.astype(">u2").tobytes()),
        ("l16", ".pgm", b"P5 12 10 65535\n" + deep[:, :, 0].astype(">u2").tobytes()),
        ("rgb16_plain", ".ppm", b"P3\n12 10\n65535\n" + " ".join(map(str, deep.ravel())).encode() + b"\n"),
        # 16-bit SGI: read at full depth by tricodec's own reader (verbatim and RLE)
        ("rgb16", ".sgi", _sgi16(deep, rle=False)),
        ("rgb16_rle", ".sgi", _sgi16(deep, rle=True)),
    ]
    try:  # 16-bit colour TIFF, read at full depth with tifffile (LZW: with imagecodecs)
        import tifffile
        for name, kw in (("rgb16", {}), ("rgb16_lzw", {"compression": "lzw"})):
            buf = io.BytesIO()
            tifffile.imwrite(buf, deep, photometric="rgb", **kw)
            files.append((name, ".tif", buf.getvalue()))
    except Exception:  # pragma: no cover - tifffile/imagecodecs are dependencies, but never stop the corpus
        pass
    return [ImageSeed(f"{n}{s}", s, d) for n, s, d in files]


# ============================================================================================
# Mutators
# ============================================================================================

@dataclass
class Ctx:
    rng: random.Random
    corpus: list          # list[Seed] (decode) or list[ImageSeed] (encode)
    seed_index: int


Mutator = Callable[[bytearray, Ctx], str]  # mutates buf in place, returns a description


# ---- generic byte-level mutators (both sides) ----

INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x7F, 0x80, 0xFE, 0xFF, 0x10, 0x20, 0x40]


def m_bitflip(buf: bytearray, ctx: Ctx) -> str:
    if not buf:
        return "bitflip(empty)"
    n = ctx.rng.choice([1, 1, 1, 2, 3, 4, 8, 16])
    flips = []
    for _ in range(n):
        i, b = ctx.rng.randrange(len(buf)), ctx.rng.randrange(8)
        buf[i] ^= 1 << b
        flips.append(f"{i}.{b}")
    return "bitflip@" + ",".join(flips)


def m_bitflip_head(buf: bytearray, ctx: Ctx) -> str:
    if not buf:
        return "bitflip_head(empty)"
    i, b = ctx.rng.randrange(min(len(buf), 64)), ctx.rng.randrange(8)
    buf[i] ^= 1 << b
    return f"bitflip@{i}.{b}"


def m_byteset(buf: bytearray, ctx: Ctx) -> str:
    if not buf:
        return "byteset(empty)"
    out = []
    for _ in range(ctx.rng.choice([1, 1, 2, 4])):
        i = ctx.rng.randrange(len(buf))
        v = ctx.rng.choice(INTERESTING_BYTES + [ctx.rng.randrange(256)])
        buf[i] = v
        out.append(f"{i}={v:#04x}")
    return "byteset@" + ",".join(out)


def _random_chunk(rng: random.Random) -> bytes:
    n = rng.choice([1, 1, 2, 3, 4, 7, 8, 16, 64])
    kind = rng.randrange(3)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(n))
    if kind == 1:
        return bytes([rng.choice(INTERESTING_BYTES)]) * n
    return b"\xff\xff\xff\x7f"[:n] if n <= 4 else b"\0" * n


def m_insert(buf: bytearray, ctx: Ctx) -> str:
    pos = ctx.rng.randrange(len(buf) + 1)
    chunk = _random_chunk(ctx.rng)
    buf[pos:pos] = chunk
    return f"insert@{pos}:{chunk.hex()}"


def m_delete(buf: bytearray, ctx: Ctx) -> str:
    if not buf:
        return "delete(empty)"
    pos = ctx.rng.randrange(len(buf))
    n = min(ctx.rng.choice([1, 1, 2, 3, 4, 8, 16, 64]), len(buf) - pos)
    del buf[pos:pos + n]
    return f"delete@{pos}+{n}"


def m_truncate_random(buf: bytearray, ctx: Ctx) -> str:
    cut = ctx.rng.randrange(len(buf) + 1)
    del buf[cut:]
    return f"truncate@{cut}"


def m_truncate_early(buf: bytearray, ctx: Ctx) -> str:
    cut = ctx.rng.randrange(min(len(buf), 128) + 1)
    del buf[cut:]
    return f"truncate@{cut}"


def m_duplicate_block(buf: bytearray, ctx: Ctx) -> str:
    if len(buf) < 2:
        return "dup(short)"
    a = ctx.rng.randrange(len(buf))
    n = min(ctx.rng.choice([2, 4, 8, 32, 256]), len(buf) - a)
    dst = ctx.rng.randrange(len(buf) + 1)
    buf[dst:dst] = bytes(buf[a:a + n])
    return f"dup[{a}+{n}]->{dst}"


# ---- .tric-aware mutators ----

def t_truncate_boundary(buf: bytearray, ctx: Ctx) -> str:
    cut = ctx.rng.choice(boundaries(buf)) + ctx.rng.choice([0, 0, 0, -1, 1, -2, 2])
    cut = max(0, min(cut, len(buf)))
    del buf[cut:]
    return f"truncate@{cut}(boundary)"


def t_insert_boundary(buf: bytearray, ctx: Ctx) -> str:
    pos = ctx.rng.choice(boundaries(buf))
    chunk = _random_chunk(ctx.rng)
    buf[pos:pos] = chunk
    return f"insert@{pos}(boundary):{chunk.hex()}"


def t_delete_boundary(buf: bytearray, ctx: Ctx) -> str:
    pos = min(ctx.rng.choice(boundaries(buf)), max(0, len(buf) - 1))
    n = ctx.rng.choice([1, 2, 4, 5])
    del buf[pos:pos + n]
    return f"delete@{pos}+{n}(boundary)"


def t_header_int(buf: bytearray, ctx: Ctx) -> str:
    if len(buf) < HEADER_SIZE:
        return "header(short)"
    name = ctx.rng.choice(INT_HEADER_FIELDS + ["width", "height", "width", "height", "channels"])
    v = ctx.rng.choice(int_extremes(HEADER_FIELDS[name][1], get_field(buf, name)))
    put_field(buf, name, v)
    return f"header.{name}={v}"


def t_header_dims(buf: bytearray, ctx: Ctx) -> str:
    """Width and height together: swap, scale, or keep the product (which a size check cannot see)."""
    if len(buf) < HEADER_SIZE:
        return "dims(short)"
    w, h = get_field(buf, "width"), get_field(buf, "height")
    choice = ctx.rng.randrange(5)
    if choice == 0:
        nw, nh = h, w
    elif choice == 1:
        nw, nh = w * h, 1
    elif choice == 2:
        nw, nh = 1, w * h
    elif choice == 3:
        nw, nh = ctx.rng.choice([(1 << 16, 1 << 11), (1 << 27, 1), (16384, 8192), (11586, 11585), (1 << 14, 1 << 13)])
    else:
        f = ctx.rng.choice([2, 3, 4])
        nw, nh = (w * f, h) if ctx.rng.random() < 0.5 else (w, h * f)
    put_field(buf, "width", nw)
    put_field(buf, "height", nh)
    return f"header.dims={nw}x{nh}"


def t_header_text(buf: bytearray, ctx: Ctx) -> str:
    if len(buf) < HEADER_SIZE:
        return "text(short)"
    name = ctx.rng.choice(["mode", "mode", "mode", "model_name"])
    value = ctx.rng.choice(MODE_NAMES if name == "mode" else MODEL_NAMES)
    off, size = HEADER_FIELDS[name]
    raw = value.encode("latin-1")[:size].ljust(size, b"\0")
    if ctx.rng.random() < 0.15:  # junk after the NUL padding
        raw = raw[:-1] + b"\x01"
    buf[off:off + size] = raw
    if name == "mode" and ctx.rng.random() < 0.5 and value in DEEP_MODES:
        put_field(buf, "channels", DEEP_MODES[value])
    return f"header.{name}={raw!r}"


def t_header_swap(buf: bytearray, ctx: Ctx) -> str:
    if len(buf) < HEADER_SIZE:
        return "swap(short)"
    other = ctx.rng.choice(ctx.corpus)
    what = ctx.rng.choice(list(HEADER_FIELDS) + ["whole", "whole", "dims+mode", "mode+channels+depth"])
    names = {"whole": list(HEADER_FIELDS), "dims+mode": ["width", "height", "mode", "channels", "bit_depth"],
             "mode+channels+depth": ["mode", "channels", "bit_depth", "flags"]}.get(what, [what])
    for n in names:
        off, size = HEADER_FIELDS[n]
        buf[off:off + size] = other.data[off:off + size]
    return f"header.{what}<-{other.name}"


def t_section_length(buf: bytearray, ctx: Ctx) -> str:
    secs = sections_of(buf)
    if not secs:
        return "seclen(none)"
    s = ctx.rng.choice(secs)
    vals = int_extremes(4, s.length) + [len(buf) - s.payload, len(buf) - s.payload + 1]
    v = ctx.rng.choice(vals)
    buf[s.start + 1:s.start + 5] = _u32(v)
    return f"{s.name}.length={v}"


def t_section_tag(buf: bytearray, ctx: Ctx) -> str:
    secs = sections_of(buf)
    if not secs:
        return "sectag(none)"
    s = ctx.rng.choice(secs)
    v = ctx.rng.choice([0, 1, 2, 3, 4, 5, 255])
    buf[s.start] = v
    return f"{s.name}.tag={v}"


def _replace_payload(buf: bytearray, s: Section, payload: bytes, fix_length: bool = True) -> None:
    end = min(s.end, len(buf))
    buf[s.payload:end] = payload
    if fix_length:
        buf[s.start + 1:s.start + 5] = _u32(len(payload))


def t_section_splice(buf: bytearray, ctx: Ctx) -> str:
    secs = sections_of(buf)
    other = ctx.rng.choice(ctx.corpus)
    osecs = [s for s in sections_of(other.data) if s.end <= len(other.data)]
    if not secs or not osecs:
        return "splice(none)"
    mode = ctx.rng.randrange(4)
    if mode == 0:  # replace a section by the same-tag section of another file (fixing the length)
        same = [(a, b) for a in secs for b in osecs if a.tag == b.tag]
        if same:
            a, b = ctx.rng.choice(same)
            _replace_payload(buf, a, other.data[b.payload:b.end])
            return f"splice {a.name}<-{other.name}.{b.name}"
    if mode == 1:  # any section of another file in place of one of ours, tag and all
        a, b = ctx.rng.choice(secs), ctx.rng.choice(osecs)
        end = min(a.end, len(buf))
        buf[a.start:end] = other.data[b.start:b.end]
        return f"splice {a.name}<-{other.name}.{b.name}(with tag)"
    if mode == 2:  # append another file's section, counting it
        b = ctx.rng.choice(osecs)
        buf += other.data[b.start:b.end]
        if len(buf) >= HEADER_SIZE:
            buf[46] = (buf[46] + 1) & 0xFF
        return f"append {other.name}.{b.name}"
    # our header, their body
    n = len(buf)
    del buf[HEADER_SIZE:]
    buf += other.data[HEADER_SIZE:]
    if ctx.rng.random() < 0.5 and n >= HEADER_SIZE:
        buf[46] = other.data[46]
    return f"body<-{other.name}"


def t_section_shuffle(buf: bytearray, ctx: Ctx) -> str:
    secs = [s for s in sections_of(buf) if s.end <= len(buf)]
    if not secs or len(buf) < HEADER_SIZE:
        return "shuffle(none)"
    blobs = [bytes(buf[s.start:s.end]) for s in secs]
    tail = bytes(buf[secs[-1].end:])
    op = ctx.rng.randrange(5)
    fix = ctx.rng.random() < 0.7
    if op == 0:
        i = ctx.rng.randrange(len(blobs))
        del blobs[i]
        desc = f"drop {secs[i].name}"
    elif op == 1:
        i = ctx.rng.randrange(len(blobs))
        blobs.insert(i, blobs[i])
        desc = f"duplicate {secs[i].name}"
    elif op == 2:
        ctx.rng.shuffle(blobs)
        desc = "reorder sections"
    elif op == 3:
        tag = ctx.rng.choice([0, 5, 255, SEC_META, SEC_FALLBACK])
        body = _random_chunk(ctx.rng)
        blobs.append(bytes([tag]) + _u32(len(body)) + body)
        desc = f"append section tag {tag}"
    else:
        blobs.append(bytes([SEC_META]) + _u32(0))
        desc = "append empty META"
    del buf[HEADER_SIZE:]
    buf += b"".join(blobs) + tail
    if fix:
        buf[46] = len(blobs) & 0xFF
    return desc + ("" if fix else " (n_sections unchanged)")


def t_lane_field(buf: bytearray, ctx: Ctx) -> str:
    streams = lane_streams(buf)
    if not streams:
        return "lane(none)"
    ls = ctx.rng.choice(streams)
    lane_size = 1 << buf[ls.log2_off]
    op = ctx.rng.randrange(5)
    if op == 0 or ls.n_lanes == 0:
        v = ctx.rng.choice([0, 1, 5, 6, 7, 12, 13, 14, 15, 16, 17, 32, 255,
                            (buf[ls.log2_off] + 1) & 255, (buf[ls.log2_off] - 1) & 255])
        buf[ls.log2_off] = v
        return f"{ls.section.name}.lane_log2={v}"
    i = ctx.rng.choice([0, ls.n_lanes - 1, ctx.rng.randrange(ls.n_lanes)])
    off = ls.counts_off + 4 * i
    orig = struct.unpack_from("<I", buf, off)[0]
    if op in (1, 2):
        v = ctx.rng.choice(int_extremes(4, orig) + [3, lane_size + 1, lane_size + 2, lane_size + 3])
        buf[off:off + 4] = _u32(v)
        return f"{ls.section.name}.counts[{i}]={v}"
    if op == 3 and ls.n_lanes >= 2:  # move words between two lanes: the sum check still passes
        j = ctx.rng.choice([k for k in range(ls.n_lanes) if k != i])
        d = ctx.rng.choice([1, 2, 3, -1, -2, orig - 2, orig - 1, orig])
        oj = struct.unpack_from("<I", buf, ls.counts_off + 4 * j)[0]
        buf[off:off + 4] = _u32(orig - d)
        buf[ls.counts_off + 4 * j:ls.counts_off + 4 * j + 4] = _u32(oj + d)
        return f"{ls.section.name}.counts[{i}]-={d},counts[{j}]+={d}"
    # grow or shrink one lane's words, counts and section length fixed, so the tables still agree
    words_start = ls.words_off + 2 * sum(struct.unpack_from("<I", buf, ls.counts_off + 4 * k)[0] for k in range(i))
    d = ctx.rng.choice([1, 2, -1, -2])
    if d > 0:
        buf[words_start:words_start] = bytes(ctx.rng.randrange(256) for _ in range(2 * d))
    else:
        del buf[words_start:words_start - 2 * d]
    buf[off:off + 4] = _u32(orig + d)
    s = ls.section
    buf[s.start + 1:s.start + 5] = _u32(s.length + 2 * d)
    return f"{ls.section.name}.lane[{i}] words {d:+d} (lengths fixed)"


def t_blend_params(buf: bytearray, ctx: Ctx) -> str:
    """tric-wf2 / tric-wf3 files: SIDE = lane rows (u32) + (mode, q1, c1, q2, c2) int8 per plane [+ tric-wf3:
    3 x 3 table weights, uint8]: set one byte to an edge value (an unknown mode, a reference to the plane
    itself or a later one, weights 0..4 and beyond; table weights that do not sum to 16)."""
    if header_text(bytes(buf[:HEADER_SIZE]), "model_name") not in ("tric-wf2", "tric-wf3"):
        return "params(not a blend file)"
    secs = {s.tag: s for s in sections_of(buf) if s.end <= len(buf)}
    if SEC_SIDE not in secs or secs[SEC_SIDE].length <= 4:
        return "params(no parameters)"
    side = secs[SEC_SIDE]
    i = ctx.rng.randrange(side.length - 4)
    v = ctx.rng.choice([-128, -2, -1, 0, 1, 2, 3, 4, 5, 8, 15, 16, 17, 127, ctx.rng.randrange(256) - 128])
    buf[side.payload + 4 + i] = v & 0xFF
    return f"SIDE[{4 + i}] = {v}"


def t_strip_table(buf: bytearray, ctx: Ctx) -> str:
    """Wavefront-model files: LANES starts with (rANS words, raw words, log2 K) per strip (u32 each)."""
    if header_text(bytes(buf[:HEADER_SIZE]), "model_name") not in ("tric-wf1", "tric-wf2", "tric-wf3"):
        return "strip(not a wavefront file)"
    secs = {s.tag: s for s in sections_of(buf) if s.end <= len(buf)}
    if SEC_SIDE not in secs or SEC_LANES not in secs or secs[SEC_SIDE].length < 4:
        return "strip(no model sections)"
    h = struct.unpack_from("<I", buf, 12)[0]
    rows = max(1, struct.unpack_from("<I", buf, secs[SEC_SIDE].payload)[0])
    n = -(-h // rows)
    lanes = secs[SEC_LANES]
    if 12 * n > lanes.length:
        return "strip(short table)"
    i, field = ctx.rng.randrange(n), ctx.rng.randrange(3)
    off = lanes.payload + 12 * i + 4 * field
    orig = struct.unpack_from("<I", buf, off)[0]
    if field == 2:
        v = ctx.rng.choice([0, 1, 6, 7, 8, 31, 32, 255, 2 ** 32 - 1, orig + 1, max(0, orig - 1)])
    else:
        v = ctx.rng.choice(int_extremes(4, orig) + [orig + 1, max(0, orig - 1), 0, 1, 2])
    buf[off:off + 4] = _u32(v & 0xFFFFFFFF)
    return f"LANES.strip[{i}].{('rans', 'raw', 'log2k')[field]}={v}"


def t_side_table(buf: bytearray, ctx: Ctx) -> str:
    side = [s for s in sections_of(buf) if s.tag == SEC_SIDE and s.end <= len(buf) and s.length > 0]
    if not side:
        return "side(none)"
    s = side[0]
    k = buf[s.payload]
    op = ctx.rng.randrange(3)
    if op == 0 or k == 0 or s.payload + 1 + 2 * k > len(buf):
        v = ctx.rng.choice([0, 1, 2, 15, 16, 17, 255])
        buf[s.payload] = v
        return f"SIDE.k={v}"
    i = ctx.rng.randrange(k)
    off = s.payload + 1 + 2 * i
    fi = struct.unpack_from("<H", buf, off)[0]
    if op == 1:
        v = ctx.rng.choice([0, 1, 65535, 32768, fi + 1, fi - 1])
        struct.pack_into("<H", buf, off, v & 0xFFFF)
        return f"SIDE.freq[{i}]={v & 0xFFFF}"
    j = ctx.rng.randrange(k)  # move probability mass: the table stays a valid one, the stream no longer fits it
    offj = s.payload + 1 + 2 * j
    fj = struct.unpack_from("<H", buf, offj)[0]
    d = ctx.rng.randrange(0, max(1, fi))
    if i != j and fj + d <= 65535:
        struct.pack_into("<H", buf, off, fi - d)
        struct.pack_into("<H", buf, offj, fj + d)
    return f"SIDE.freq[{i}]-={d},freq[{j}]+={d}"


# ---- META with a correct CRC (reaches metadata.unpack/apply past the checksum) ----

# The META layout of tricodec/metadata.py's docstring: ``count (u32)`` entries of ``key_len (u16) |
# key (UTF-8) | value_len (u32) | value``, then ``crc32 (u32)``; transparency values ``b"i" + u32``,
# ``b"t" + u32 x n`` or ``b"b" + bytes``.  test_fuzz.py checks it against ``metadata.pack``.

def meta_payload(entries: list[tuple[bytes, bytes]], count: int | None = None, len_delta: int = 0) -> bytes:
    parts = [_u32(len(entries) if count is None else count)]
    for k, v in entries:
        parts += [struct.pack("<H", len(k) & 0xFFFF), k, _u32(len(v) + len_delta), v]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def _words(*vals: int) -> bytes:
    return b"".join(_u32(v) for v in vals)


TRANSPARENCY_VALUES = [
    b"i" + _words(0), b"i" + _words(3), b"i" + _words(255), b"i" + _words(256), b"i" + _words(65535),
    b"i" + _words((1 << 31) - 1), b"i" + _words((1 << 32) - 1), b"i", b"i\0\0\0", b"i" + _words(1, 2),
    b"t" + _words(1, 2, 3), b"t" + _words(1, 2, 3, 4), b"t" + _words(1), b"t" + _words(1, 2),
    b"t" + _words(256, 0, 0), b"t" + _words((1 << 32) - 1, 0, 0), b"t" + _words(*range(5)), b"t", b"t\0\0\0\0\0",
    b"b", b"b\0", b"b" + b"\x80" * 3, b"b" + b"\xff" * 256, b"b" + b"\0" * 257, b"b" + b"\0" * 70000,
    b"", b"x", b"\xff" * 5, b"[" * 100000, b'{"value": 3}', b'{"bytes": "00ff"}',
]


def _meta_entry(rng: random.Random) -> tuple[bytes, bytes]:
    kind = rng.randrange(6)
    if kind <= 1:
        return b"transparency", rng.choice(TRANSPARENCY_VALUES)
    if kind == 2:
        return rng.choice([b"icc", b"exif", b"xmp"]), _random_chunk(rng) * rng.choice([1, 100])
    if kind == 3:
        return b"text:" + rng.choice([b"", b"Title", b"\xff\xfe", b"a" * 300, b"caf\xc3\xa9", b"\0"]), rng.choice(
            [b"\xff\xfe\xfd", b"caf\xc3\xa9", b"", b"\0" * 10, b"x" * 100000])
    if kind == 4:
        return rng.choice([b"", b"\xff", b"\0", b"icc\0", b"k" * 255, b"k" * 70000, b"\xed\xa0\x80"]), b"v"
    return b"unknown-key", _random_chunk(rng)


def t_meta(buf: bytearray, ctx: Ctx) -> str:
    if len(buf) < HEADER_SIZE:
        return "meta(short)"
    rng = ctx.rng
    entries = [_meta_entry(rng) for _ in range(rng.choice([1, 1, 2, 3]))]
    count, len_delta = None, 0
    twist = rng.randrange(8)
    if twist == 0:
        count = rng.choice([0, len(entries) + 1, 4096, 4097, 65535, 65536, (1 << 31) - 1, (1 << 32) - 1])
    elif twist == 1:
        len_delta = rng.choice([-1, 1, 1 << 20, -(1 << 8)])
    payload = meta_payload(entries, count, len_delta)
    desc = f"META(crc ok) entries={[(k[:16], v[:24]) for k, v in entries]} count={count} len_delta={len_delta}"
    metas = [s for s in sections_of(buf) if s.tag == SEC_META and s.end <= len(buf)]
    if metas:
        _replace_payload(buf, metas[0], payload)
        return "replace " + desc
    buf += bytes([SEC_META]) + _u32(len(payload)) + payload
    buf[46] = (buf[46] + 1) & 0xFF
    return "append " + desc


# ---- FALLBACK payload fields, and PNG chunks with their CRCs recomputed ----

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes, base: int = 0) -> list[tuple[int, int, bytes]]:
    """(offset of the length field, data length, type) of each chunk, as far as they can be read."""
    out = []
    pos = base + 8
    while pos + 8 <= len(data):
        n = struct.unpack_from(">I", data, pos)[0]
        typ = bytes(data[pos + 4:pos + 8])
        out.append((pos, n, typ))
        if pos + 12 + n > len(data):
            break
        pos += 12 + n
    return out


def _fix_png_crc(buf: bytearray, pos: int) -> None:
    n = struct.unpack_from(">I", buf, pos)[0]
    if pos + 12 + n <= len(buf):
        struct.pack_into(">I", buf, pos + 8 + n, zlib.crc32(bytes(buf[pos + 4:pos + 8 + n])))


def mutate_png(buf: bytearray, base: int, rng: random.Random) -> str:
    """Structured PNG mutation at ``buf[base:]`` (which holds a PNG), chunk CRCs recomputed."""
    chunks = [c for c in png_chunks(buf, base) if c[0] + 12 + c[1] <= len(buf)]
    if not chunks:
        return "png(no chunks)"
    op = rng.randrange(6)
    ihdr = [c for c in chunks if c[2] == b"IHDR"]
    if op <= 1 and ihdr:
        pos = ihdr[0][0]
        fields = {"width": (8, 4), "height": (12, 4), "depth": (16, 1), "colour": (17, 1),
                  "compression": (18, 1), "filter": (19, 1), "interlace": (20, 1)}
        name = rng.choice(list(fields))
        off, size = fields[name]
        orig = int.from_bytes(buf[pos + off:pos + off + size], "big")
        special = {"depth": [0, 1, 2, 4, 8, 16, 3, 255], "colour": [0, 1, 2, 3, 4, 5, 6, 7, 255],
                   "compression": [0, 1, 255], "filter": [0, 1, 255], "interlace": [0, 1, 2, 255]}
        v = rng.choice(special.get(name, []) + int_extremes(size, orig) + [0x7FFFFFFF, 30000, 1 << 16])
        v &= (1 << (8 * size)) - 1
        buf[pos + off:pos + off + size] = v.to_bytes(size, "big")
        _fix_png_crc(buf, pos)
        return f"png.IHDR.{name}={v}"
    pos, n, typ = rng.choice(chunks)
    if op == 2 and n:  # corrupt chunk data, CRC fixed
        i = pos + 8 + rng.randrange(n)
        buf[i] ^= 1 << rng.randrange(8)
        _fix_png_crc(buf, pos)
        return f"png.{typ.decode('latin-1')}[{i - pos - 8}] bitflip (crc fixed)"
    if op == 3 and typ != b"IEND":  # drop a chunk
        del buf[pos:pos + 12 + n]
        return f"png drop {typ.decode('latin-1')}"
    if op == 4:  # duplicate a chunk
        buf[pos:pos] = bytes(buf[pos:pos + 12 + n])
        return f"png duplicate {typ.decode('latin-1')}"
    if n:  # shorten chunk data, length and CRC fixed
        k = rng.randrange(1, n + 1)
        del buf[pos + 8 + n - k:pos + 8 + n]
        struct.pack_into(">I", buf, pos, n - k)
        _fix_png_crc(buf, pos)
        return f"png.{typ.decode('latin-1')} shortened by {k} (crc fixed)"
    return "png(noop)"


PALETTE_MODES = [b"", b"RGB", b"RGBA", b"L", b"LA", b"P", b"CMYK", b"\xff\xff", b"RGBX", b"RGB;L", b"1"]


def t_fallback(buf: bytearray, ctx: Ctx) -> str:
    fb = [s for s in sections_of(buf) if s.tag == SEC_FALLBACK and s.end <= len(buf) and s.length > 0]
    if not fb:
        return "fallback(none)"
    s = fb[0]
    rng = ctx.rng
    kind = buf[s.payload]
    if kind == 1 and rng.random() < 0.7:  # PNG
        sub = bytearray(buf[s.payload + 1:s.end])
        desc = mutate_png(sub, 0, rng)
        _replace_payload(buf, s, bytes([1]) + bytes(sub))
        return "FALLBACK " + desc
    op = rng.randrange(5)
    if op == 0 or kind not in (0, 2) or s.length < 9:
        v = rng.choice([0, 1, 2, 3, 255])
        buf[s.payload] = v
        return f"FALLBACK.kind={v}"
    pal_len_off = s.payload + 5
    pal_len = struct.unpack_from("<I", buf, pal_len_off)[0]
    if op == 1:
        v = rng.choice(int_extremes(4, pal_len) + [1024, 1025, 768, 3])
        buf[pal_len_off:pal_len_off + 4] = _u32(v)
        return f"FALLBACK.pal_len={v}"
    if op == 2:
        v = rng.choice(PALETTE_MODES)
        buf[s.payload + 1:s.payload + 5] = v[:4].ljust(4, b"\0")
        return f"FALLBACK.palette_mode={v!r}"
    if op == 3:  # change the palette's length, keeping the pixels where they were (and the pixel CRC valid)
        d = rng.choice([-3, -1, 1, 3, -pal_len])
        pal_end = s.payload + 9 + pal_len
        if d < 0:
            d = max(d, -pal_len)
            del buf[pal_end + d:pal_end]
        else:
            buf[pal_end:pal_end] = bytes(rng.randrange(256) for _ in range(d))
        buf[pal_len_off:pal_len_off + 4] = _u32(pal_len + d)
        buf[s.start + 1:s.start + 5] = _u32(s.length + d)
        return f"FALLBACK.palette {d:+d} bytes (lengths fixed)"
    # palette bytes changed in place: the pixel CRC does not cover the palette
    if pal_len and s.payload + 9 + pal_len <= len(buf):
        i = s.payload + 9 + rng.randrange(pal_len)
        buf[i] ^= 0xFF
        return f"FALLBACK.palette[{i - s.payload - 9}]^=0xff"
    return "FALLBACK(no palette)"


# ---- crafted: a header within the pixel limit, a *valid* SIDE stream for it, the seed's LANES ----

BIG_DIMS = [(16384, 8192, "RGBA", 4), (11585, 11585, "RGB", 3), (8192, 8192, "L", 1), (4096, 4096, "RGB", 3)]
_SIDE_CACHE: dict = {}


def crafted_side(w: int, h: int, channels: int) -> bytes:
    """A valid SIDE payload (every block on table 0) for a ``w`` x ``h`` model-path image: ``k (u8) |
    freq (u16 x k) | lane stream`` of the all-zero delta symbols, coded with the reference rANS twin
    (``rans_ref``, the specification); a few KB even for 134 megapixels."""
    key = (w, h, channels)
    if key not in _SIDE_CACHE:
        from tricodec import rans_ref, tables
        from tricodec.model import load_model
        m = load_model("tric-bs2")
        bs = 1 << m.block_log2
        n = channels * (-(-h // bs)) * (-(-w // bs))
        k = m.n_tables
        d = np.zeros(n, np.uint8)
        freq = tables.quantize_counts(np.bincount(d, minlength=k))
        counts, words = rans_ref.encode_lanes(d, np.zeros(n, np.int32), tables.freqs_to_cdf(freq)[None],
                                              1 << m.lane_log2)
        _SIDE_CACHE[key] = (bytes([k]) + freq.astype("<u2").tobytes() + bytes([m.lane_log2])
                            + np.asarray(counts, "<u4").tobytes() + np.asarray(words, "<u2").tobytes())
    return _SIDE_CACHE[key]


def t_craft_side(buf: bytearray, ctx: Ctx) -> str:
    """What costs the decoder before the LANES section is checked against the header (heavy cases)."""
    secs = {s.tag: s for s in sections_of(buf) if s.end <= len(buf)}
    if SEC_SIDE not in secs or SEC_LANES not in secs:
        return "craft(no model sections)"
    w, h, mode, ch = ctx.rng.choice(BIG_DIMS)
    try:
        side = crafted_side(w, h, ch)
    except Exception as e:  # the library's coder API moved: skip, do not stop the run
        return f"craft(unavailable: {type(e).__name__})"
    lanes = bytes(buf[secs[SEC_LANES].payload:secs[SEC_LANES].end])
    if ctx.rng.random() < 0.5:
        lanes = bytes([13]) + _u32(2) + b"\0\0\0\0"
    head = bytearray(buf[:HEADER_SIZE])
    put_field(head, "width", w)
    put_field(head, "height", h)
    put_field(head, "channels", ch)
    head[18:26] = mode.encode().ljust(8, b"\0")
    head[46] = 2
    buf[:] = bytes(head) + bytes([SEC_SIDE]) + _u32(len(side)) + side + bytes([SEC_LANES]) + _u32(len(lanes)) + lanes
    return f"crafted {w}x{h} {mode}: valid SIDE ({len(side)} B), LANES of {len(lanes)} B"


DECODE_MUTATORS: list[tuple[Mutator, int]] = [
    (m_bitflip, 14), (m_bitflip_head, 6), (m_byteset, 6), (m_insert, 4), (m_delete, 4),
    (m_truncate_random, 4), (m_duplicate_block, 2), (t_truncate_boundary, 6), (t_insert_boundary, 2),
    (t_delete_boundary, 2), (t_header_int, 8), (t_header_dims, 4), (t_header_text, 5), (t_header_swap, 5),
    (t_section_length, 6), (t_section_tag, 2), (t_section_splice, 6), (t_section_shuffle, 4),
    (t_lane_field, 10), (t_strip_table, 6), (t_blend_params, 4), (t_side_table, 4), (t_meta, 5), (t_fallback, 6),
]


# ---- image-file-aware mutators (encoder side) ----

def _jpeg_fields(data: bytes) -> list[tuple[int, int, str, str]]:
    out, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        seglen = struct.unpack_from(">H", data, pos + 2)[0]
        out.append((pos + 2, 2, ">", f"jpeg.{marker:02x}.len"))
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            out += [(pos + 4, 1, ">", "jpeg.precision"), (pos + 5, 2, ">", "jpeg.height"),
                    (pos + 7, 2, ">", "jpeg.width"), (pos + 9, 1, ">", "jpeg.ncomp")]
            for c in range(min(data[pos + 9] if pos + 9 < len(data) else 0, 4)):
                out += [(pos + 11 + 3 * c, 1, ">", f"jpeg.comp{c}.sampling"),
                        (pos + 12 + 3 * c, 1, ">", f"jpeg.comp{c}.tq")]
        if marker == 0xDA:
            break
        pos += 2 + seglen
    return [f for f in out if f[0] + f[1] <= len(data)]


def _tiff_fields(data: bytes) -> list[tuple[int, int, str, str]]:
    if len(data) < 8 or data[:2] not in (b"II", b"MM"):
        return []
    e = "<" if data[:2] == b"II" else ">"
    out = [(4, 4, e, "tiff.ifd0")]
    ifd = struct.unpack_from(e + "I", data, 4)[0]
    if ifd + 2 > len(data):
        return out
    n = struct.unpack_from(e + "H", data, ifd)[0]
    out.append((ifd, 2, e, "tiff.n_entries"))
    for i in range(n):
        p = ifd + 2 + 12 * i
        if p + 12 > len(data):
            break
        tag, typ = struct.unpack_from(e + "HH", data, p)
        out += [(p + 2, 2, e, f"tiff.{tag}.type"), (p + 4, 4, e, f"tiff.{tag}.count")]
        vsize = 2 if typ == 3 else 4
        out.append((p + 8, vsize, e, f"tiff.{tag}.value"))
    return out


def _gif_fields(data: bytes) -> list[tuple[int, int, str, str]]:
    out = [(6, 2, "<", "gif.width"), (8, 2, "<", "gif.height"), (10, 1, "<", "gif.flags"), (11, 1, "<", "gif.bg")]
    if len(data) < 13:
        return [f for f in out if f[0] + f[1] <= len(data)]
    pos = 13 + (3 * (2 << (data[10] & 7)) if data[10] & 0x80 else 0)
    while pos < len(data) and data[pos] == 0x21:  # skip extensions
        pos += 2
        while pos < len(data) and data[pos]:
            pos += data[pos] + 1
        pos += 1
    if pos < len(data) and data[pos] == 0x2C:
        out += [(pos + 1, 2, "<", "gif.img.left"), (pos + 3, 2, "<", "gif.img.top"),
                (pos + 5, 2, "<", "gif.img.width"), (pos + 7, 2, "<", "gif.img.height"),
                (pos + 9, 1, "<", "gif.img.flags"), (pos + 10, 1, "<", "gif.lzw_min")]
    return [f for f in out if f[0] + f[1] <= len(data)]


_BMP_FIELDS = [(2, 4, "filesize"), (10, 4, "offset"), (14, 4, "hdrsize"), (18, 4, "width"), (22, 4, "height"),
               (26, 2, "planes"), (28, 2, "bpp"), (30, 4, "compression"), (34, 4, "imgsize"), (46, 4, "colors"),
               (50, 4, "important")]


def format_fields(data: bytes, suffix: str) -> list[tuple[int, int, str, str]]:
    """(offset, size, endianness, name) of the integer fields of an image file's header."""
    try:
        if suffix == ".png":
            out = []
            for pos, n, typ in png_chunks(data):
                out.append((pos, 4, ">", f"png.{typ.decode('latin-1')}.length"))
            return out
        if suffix == ".jpg":
            return _jpeg_fields(data)
        if suffix == ".tif":
            return _tiff_fields(data)
        if suffix == ".gif":
            return _gif_fields(data)
        if suffix == ".bmp":
            return [(o, s, "<", f"bmp.{n}") for o, s, n in _BMP_FIELDS if o + s <= len(data)]
    except Exception:
        return []
    return []


def e_field(buf: bytearray, ctx: Ctx, suffix: str) -> str:
    fields = format_fields(bytes(buf), suffix)
    if not fields:
        return m_bitflip_head(buf, ctx)
    off, size, e, name = ctx.rng.choice(fields)
    orig = int.from_bytes(buf[off:off + size], "little" if e == "<" else "big")
    v = ctx.rng.choice(int_extremes(size, orig))
    buf[off:off + size] = v.to_bytes(size, "little" if e == "<" else "big")
    return f"{name}={v}"


def e_png(buf: bytearray, ctx: Ctx, suffix: str) -> str:
    if suffix != ".png":
        return e_field(buf, ctx, suffix)
    return mutate_png(buf, 0, ctx.rng)


def e_pnm(buf: bytearray, ctx: Ctx, suffix: str) -> str:
    if suffix not in (".ppm", ".pgm"):
        return e_field(buf, ctx, suffix)
    head = bytes(buf[:32])
    tokens = head.split(b"\n", 3)
    if len(tokens) < 4:
        return m_bitflip_head(buf, ctx)
    magic, dims, maxval, rest = tokens
    v = ctx.rng.choice([b"0", b"1", b"-1", b"65535", b"65536", b"4294967295", b"99999999999", b"256", b"x"])
    which = ctx.rng.randrange(3)
    if which == 0:
        maxval = v
    elif which == 1:
        dims = v + b" " + dims.split(b" ")[-1]
    else:
        dims = dims.split(b" ")[0] + b" " + v
    new = b"\n".join([magic, dims, maxval, rest])
    buf[:32] = new
    return f"pnm header -> {b' '.join([magic, dims, maxval])!r}"


def _png_chunk(typ: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body))


def e_png_text_flood(buf: bytearray, ctx: Ctx, suffix: str) -> str:
    """A valid PNG with thousands of tEXt chunks (the metadata table counts entries in a u16)."""
    if suffix != ".png" or buf[-12:-8] != b"\0\0\0\0" or buf[-8:-4] != b"IEND":
        return e_field(buf, ctx, suffix)
    n = ctx.rng.choice([4094, 4095, 4096, 4097, 4200, 65535, 65536, 70000])
    chunks = b"".join(_png_chunk(b"tEXt", b"k%d\0v" % i) for i in range(n))
    buf[-12:-12] = chunks
    return f"png + {n} tEXt chunks"


ENCODE_MUTATORS: list[tuple[Callable, int]] = [
    (lambda b, c, s: m_bitflip(b, c), 10), (lambda b, c, s: m_bitflip_head(b, c), 6),
    (lambda b, c, s: m_byteset(b, c), 5), (lambda b, c, s: m_truncate_random(b, c), 8),
    (lambda b, c, s: m_truncate_early(b, c), 4), (lambda b, c, s: m_insert(b, c), 3),
    (lambda b, c, s: m_delete(b, c), 3), (lambda b, c, s: m_duplicate_block(b, c), 1),
    (e_field, 12), (e_png, 6), (e_pnm, 2), (e_png_text_flood, 0.5),
]


def _pick(rng: random.Random, table):
    total = sum(w for _, w in table)
    r = rng.uniform(0, total)
    for f, w in table:
        r -= w
        if r <= 0:
            return f
    return table[-1][0]


def _apply(mutator, buf: bytearray, ctx: Ctx, *args) -> str:
    """Run one mutator; one that trips over an already-mangled layout leaves the buffer unchanged."""
    before = bytes(buf)
    try:
        return mutator(buf, ctx, *args)
    except (IndexError, ValueError, OverflowError, struct.error) as e:
        buf[:] = before
        return f"{getattr(mutator, '__name__', 'mutator')}(skipped: {type(e).__name__})"


def _stack_depth(rng: random.Random) -> int:
    return rng.choices([1, 2, 3, 5], weights=[70, 18, 8, 4])[0]


# ============================================================================================
# Cases
# ============================================================================================

@dataclass(repr=False)
class Case:
    kind: str                  # "decode" | "encode" | "selftest"
    seed: int
    index: int                 # -1 for fixed cases (sweep, unmutated seeds: named by desc, hex printed)
    desc: str
    data: bytes
    suffix: str = ""           # encode cases: the image file's suffix
    expect_digest: str | None = None   # decode cases whose input is an unmutated seed
    origin_digest: str | None = None   # decode cases: the pixels of the seed it was mutated from

    def __repr__(self) -> str:
        return f"Case({self.ident} {self.desc[:120]!r}, {len(self.data)} B)"

    @property
    def ident(self) -> str:
        return f"{self.kind}:{self.seed}:{self.index}" if self.index >= 0 else f"{self.kind}:fixed"


def _rng(kind: str, seed: int, index: int) -> random.Random:
    return random.Random(f"tric-fuzz/{kind}/{seed}/{index}")


# Cases that may legitimately take seconds and GBs in today's decoder (see t_craft_side): the long run
# draws them rarely, the CI run never (test_fuzz.py has one direct regression case instead).
HEAVY_MUTATORS: list[tuple[Mutator, float]] = [(t_craft_side, 0.05)]


def decode_case(corpus: list[Seed], seed: int, index: int, heavy: bool = False) -> Case:
    """The mutated ``.tric`` input number ``index`` of run ``seed`` (deterministic)."""
    rng = _rng("decode", seed, index)
    table = DECODE_MUTATORS + HEAVY_MUTATORS if heavy else DECODE_MUTATORS
    si = rng.randrange(len(corpus))
    base = corpus[si]
    buf = bytearray(base.data)
    descs = []
    if rng.random() >= 0.01:  # 1% of the cases are unmutated seeds (they must decode exactly)
        ctx = Ctx(rng, corpus, si)
        for _ in range(_stack_depth(rng)):
            descs.append(_apply(_pick(rng, table), buf, ctx))
    data = bytes(buf)
    expect = next((s.digest for s in corpus if s.data == data), None)
    return Case("decode", seed, index, f"{base.name} | " + (" ; ".join(descs) or "unmutated"), data,
                expect_digest=expect, origin_digest=base.digest)


def encode_case(images: list[ImageSeed], seed: int, index: int) -> Case:
    """The malformed image file number ``index`` of run ``seed`` (deterministic)."""
    rng = _rng("encode", seed, index)
    si = rng.randrange(len(images))
    base = images[si]
    buf = bytearray(base.data)
    descs = []
    if rng.random() >= 0.03:
        ctx = Ctx(rng, images, si)
        for _ in range(rng.choices([1, 2, 3], weights=[75, 20, 5])[0]):
            descs.append(_apply(_pick(rng, ENCODE_MUTATORS), buf, ctx, base.suffix))
    return Case("encode", seed, index, f"{base.name} | " + (" ; ".join(descs) or "unmutated"), bytes(buf),
                suffix=base.suffix)


def sweep_cases(corpus: list[Seed]) -> Iterator[Case]:
    """The exhaustive structured cases: every boundary cut (and +-1), every integer header field and
    section length at every extreme, lane counts/log2 at extremes, whole-header swaps, same-tag splices."""
    seen = set()

    def case(desc, data, base):
        key = bytes(data)
        if key in seen:
            return None
        seen.add(key)
        expect = next((s.digest for s in corpus if s.data == key), None)
        return Case("decode", 0, -1, f"{base.name} | {desc}", key, expect_digest=expect,
                    origin_digest=base.digest)

    for base in corpus:
        d = base.data
        out = []
        for cut in boundaries(d):
            for c in (cut - 1, cut, cut + 1):
                if 0 <= c < len(d):
                    out.append(case(f"truncate@{c}", d[:c], base))
        for name in INT_HEADER_FIELDS:
            for v in int_extremes(HEADER_FIELDS[name][1], get_field(d, name)):
                buf = bytearray(d)
                put_field(buf, name, v)
                out.append(case(f"header.{name}={v}", buf, base))
        for mode in MODE_NAMES:
            buf = bytearray(d)
            buf[18:26] = mode.encode("latin-1")[:8].ljust(8, b"\0")
            out.append(case(f"header.mode={mode!r}", buf, base))
        for s in sections_of(d):
            for v in int_extremes(4, s.length):
                buf = bytearray(d)
                buf[s.start + 1:s.start + 5] = _u32(v)
                out.append(case(f"{s.name}.length={v}", buf, base))
        for ls in lane_streams(d):
            lane_size = 1 << d[ls.log2_off]
            for v in (0, 5, 6, 7, 12, 14, 16, 17, 255):
                buf = bytearray(d)
                buf[ls.log2_off] = v
                out.append(case(f"{ls.section.name}.lane_log2={v}", buf, base))
            for i in sorted({0, ls.n_lanes - 1}):
                orig = struct.unpack_from("<I", d, ls.counts_off + 4 * i)[0]
                for v in int_extremes(4, orig) + [3, lane_size + 2, lane_size + 3]:
                    buf = bytearray(d)
                    buf[ls.counts_off + 4 * i:ls.counts_off + 4 * i + 4] = _u32(v)
                    out.append(case(f"{ls.section.name}.counts[{i}]={v}", buf, base))
        for other in corpus:
            if other is base:
                continue
            out.append(case(f"header<-{other.name}", other.data[:HEADER_SIZE] + d[HEADER_SIZE:], base))
            for a in sections_of(d):
                for b in sections_of(other.data):
                    if a.tag == b.tag and a.end <= len(d):
                        buf = bytearray(d)
                        _replace_payload(buf, a, other.data[b.payload:b.end])
                        out.append(case(f"splice {a.name}<-{other.name}", buf, base))
        yield from (c for c in out if c is not None)


# ============================================================================================
# Oracles (run in the worker, or in-process for reproduction)
# ============================================================================================

FAILURE = "failure"


@dataclass
class Outcome:
    status: str                    # "ok" | "DecodeError" | "EncodeError" | "failure"
    kind: str = ""                 # failures: exception | crc-mismatch | header-mismatch | wrong-pixels |
                                   # write | roundtrip | hang | crash | memory ; ok: exact | altered
    error: str = ""                # "Type: message"
    traceback: str = ""
    seconds: float = 0.0
    note: str = ""                 # non-failing observations (e.g. header fields the decoder ignored)
    maxrss_mb: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == FAILURE


def _err(e: BaseException) -> str:
    msg = str(e)
    if len(msg) > 300:
        msg = msg[:300] + "..."
    return f"{type(e).__name__}: {msg}"


def _header_notes(data: bytes, image) -> str:
    """Header fields an accepted file contradicts (not failures: the CRC covers pixels only)."""
    notes = []
    ch, depth = get_field(data, "channels"), get_field(data, "bit_depth")
    if isinstance(image, np.ndarray):
        real_ch, real_depth = image.shape[2], 16
    else:
        real_ch = len(image.getbands())
        real_depth = 1 if image.mode == "1" else 16 if image.mode.startswith("I;16") else \
            32 if image.mode in ("I", "F") else 8
    if ch != real_ch:
        notes.append(f"header channels {ch} but image has {real_ch}")
    if depth != real_depth:
        notes.append(f"header bit_depth {depth} but image has {real_depth}")
    if get_field(data, "flags") & 1 and any(data[26:42]):
        notes.append("fallback file with a model name/hash")
    return "; ".join(notes)


def _write_check(image, workdir: str | None) -> Outcome | None:
    """Write the decoded image the way the CLI does (PNG, or TIFF for modes PNG cannot hold): a file the
    decoder accepted must not make the writer raise anything but a TricodecError (e.g. metadata that
    does not fit the mode)."""
    import tricodec
    from tricodec.pixels import DEFAULT_PNG_LEVEL, output_suffix, write_image
    fd, path = tempfile.mkstemp(suffix=output_suffix(image), dir=workdir)
    os.close(fd)
    try:
        write_image(image, path, png_level=DEFAULT_PNG_LEVEL)   # the CLI's default (tricodec's own PNG writer)
        write_image(image, path)                                # Pillow's writer (the API's, and --png-level 4+)
    except tricodec.TricodecError:
        return None
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, KeyboardInterrupt):
            raise
        return Outcome(FAILURE, "write", "writing the decoded image: " + _err(e), traceback.format_exc())
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    return None


def run_case(data: bytes, expect_digest: str | None = None, origin_digest: str | None = None,
             write_check: bool = True, workdir: str | None = None) -> Outcome:
    """Decode one input with ``tricodec.decode_any(data, device="cpu")`` and classify the result; with
    ``write_check``, an accepted file is also written out as the CLI would (see :func:`_write_check`)."""
    import tricodec
    t0 = time.perf_counter()
    try:
        image = tricodec.decode_any(data, device="cpu")
    except tricodec.DecodeError as e:
        return Outcome("DecodeError", error=_err(e), seconds=time.perf_counter() - t0)
    except BaseException as e:  # noqa: BLE001 - everything else is a finding (MemoryError, RecursionError...)
        if isinstance(e, KeyboardInterrupt):
            raise
        return Outcome(FAILURE, "exception", _err(e), traceback.format_exc(), time.perf_counter() - t0)
    dt = time.perf_counter() - t0
    try:
        crc = get_field(data, "crc32")
        w, h, mode = get_field(data, "width"), get_field(data, "height"), header_text(data, "mode")
        if file_crc(data, content_crc(image)) != crc:
            return Outcome(FAILURE, "crc-mismatch", f"decoded content does not hash to the header CRC {crc:#010x}",
                           seconds=dt)
        if isinstance(image, np.ndarray):  # a deep mode names its channel count: RGB;16 3, RGBA;16 4, LA;16 2
            ok = image.dtype == np.uint16 and image.ndim == 3 and image.shape[:2] == (h, w) \
                and mode in DEEP_MODES and image.shape[2] == DEEP_MODES[mode]
            got = f"ndarray {image.dtype} {image.shape}"
        else:
            ok = image.size == (w, h) and image.mode == mode
            got = f"{image.mode} {image.size}"
        if not ok:
            return Outcome(FAILURE, "header-mismatch", f"header says {mode!r} {w}x{h}, decoded {got}", seconds=dt)
        digest = image_digest(image)
        if expect_digest is not None and digest != expect_digest:
            return Outcome(FAILURE, "wrong-pixels", "an unmutated seed decoded to other pixels", seconds=dt)
        if write_check:
            bad = _write_check(image, workdir)
            if bad is not None:
                bad.seconds = dt
                return bad
        altered = origin_digest is not None and digest != origin_digest
        return Outcome("ok", "altered" if altered else "exact", seconds=dt, note=_header_notes(data, image))
    except BaseException as e:  # noqa: BLE001 - a decoded object that cannot be inspected is a finding too
        if isinstance(e, KeyboardInterrupt):
            raise
        return Outcome(FAILURE, "exception", "inspecting the decoded image: " + _err(e), traceback.format_exc(), dt)


def same_pixels(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype \
            and a.shape == b.shape and np.array_equal(a, b)
    if a.mode != b.mode or a.size != b.size or a.tobytes() != b.tobytes():
        return False
    if a.mode in ("P", "PA"):
        return a.getpalette() == b.getpalette()
    return True


# Images the fuzzed files describe beyond this are refused by ``encode(..., max_pixels=...)`` with
# EncodeError, as a user's limit would: a 1.5 KB TIFF can declare 50 megapixels, which Pillow then
# loads as zeros, and encoding that (legitimately) takes seconds, not the milliseconds a case should.
ENCODE_MAX_PIXELS = 1 << 22


def decode_exactly(image):
    """encode + decode_any on the CPU, asserting the pixels come back (test helper)."""
    import tricodec
    back = tricodec.decode_any(tricodec.encode(image, device="cpu"), device="cpu")
    assert same_pixels(image, back)
    return back


def run_encode_case(file_bytes: bytes, suffix: str, workdir: str | None = None,
                    max_pixels: int = ENCODE_MAX_PIXELS) -> Outcome:
    """Write the file, ``read_image`` it, encode it; then the round trip must be exact."""
    import tricodec
    from tricodec.pixels import read_image
    t0 = time.perf_counter()
    fd, path = tempfile.mkstemp(suffix=suffix, dir=workdir)
    stage = "read_image"
    image = None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(file_bytes)
        try:
            image = read_image(path)
            stage = "encode"
            data = tricodec.encode(image, device="cpu", max_pixels=max_pixels)
        except tricodec.EncodeError as e:
            return Outcome("EncodeError", stage, _err(e), seconds=time.perf_counter() - t0)
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, KeyboardInterrupt):
                raise
            return Outcome(FAILURE, "exception", f"in {stage}: " + _err(e), traceback.format_exc(),
                           time.perf_counter() - t0)
        try:
            back = tricodec.decode_any(data, device="cpu")
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, KeyboardInterrupt):
                raise
            return Outcome(FAILURE, "roundtrip", "decoding our own encode: " + _err(e), traceback.format_exc(),
                           time.perf_counter() - t0)
        if not same_pixels(image, back):
            got = f"{back.mode} {back.size}" if not isinstance(back, np.ndarray) else f"ndarray {back.shape}"
            src = f"{image.mode} {image.size}" if not isinstance(image, np.ndarray) else f"ndarray {image.shape}"
            return Outcome(FAILURE, "roundtrip", f"round trip not exact: read {src}, decoded {got}",
                           seconds=time.perf_counter() - t0)
        bad = _write_check(back, workdir)  # encode -> decode -> write, as with the CLI
        if bad is not None:
            bad.seconds = time.perf_counter() - t0
            return bad
        return Outcome("ok", "exact", seconds=time.perf_counter() - t0)
    finally:
        if isinstance(image, Image.Image):
            try:
                image.close()
            except Exception:
                pass
        try:
            os.unlink(path)
        except OSError:
            pass


# ============================================================================================
# Sandboxed execution: spawn-ed workers, RLIMIT_AS, per-case timeout, RSS check, crash detection
# ============================================================================================

def _status_kb(field: str) -> int | None:
    """A ``/proc/self/status`` field in kB (None where there is no /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_peak() -> None:
    """Restart this process's peak RSS at its current RSS (Linux >= 4.0: "5" to clear_refs resets VmHWM),
    so that each case is measured alone, not with the peak of the cases before it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # then VmHWM is the worker's peak since it started: still its own


def _maxrss_mb() -> float:
    """This worker's own peak RSS. Not ``ru_maxrss``: Linux carries that over fork and exec, so a spawned
    worker reported its parent's peak (the test process, ~1 GB on a loaded run) as its own."""
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # no /proc (not Linux)


def _worker_main(conn, mem_limit: int, threads: int, workdir: str, warmup: bytes | None, quiet: bool) -> None:
    if quiet:  # libtiff/libjpeg write warnings straight to fd 2
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    if mem_limit:
        resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    warnings.simplefilter("ignore")
    try:
        import numba
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    except Exception:
        pass
    try:  # compile/load every jitted function before the first timed case
        import tricodec
        tricodec.decode_any(tricodec.encode(Image.fromarray(photo_like(9, 10, 3, 0), "RGB"), device="cpu"),
                            device="cpu")
        if warmup is not None:
            run_case(warmup)
    except Exception:
        pass
    conn.send(("ready", _maxrss_mb()))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        kind, data, extra, origin = msg
        _reset_peak()
        if kind == "decode":
            out = run_case(data, extra, origin, workdir=workdir)
        elif kind == "encode":
            out = run_encode_case(data, extra, workdir)
        elif kind == "frames":
            out = run_frames_case(data, workdir)
        else:
            out = _selftest(extra)
        out.maxrss_mb = _maxrss_mb()
        conn.send(("done", out))


def _selftest(what: str) -> Outcome:
    """Deliberate misbehaviour, to prove the sandbox catches it (tests only)."""
    if what == "hang":
        time.sleep(10_000)
    if what == "crash":
        os._exit(3)
    try:
        if what == "oom":
            b = bytearray(64 << 30)
            return Outcome("ok", note=str(len(b)))
        if what == "rss":
            b = np.ones(1 << 28, dtype=np.uint8)  # 256 MiB touched
            return Outcome("ok", note=str(int(b[-1])))
        raise ValueError(what)
    except BaseException as e:  # noqa: BLE001
        return Outcome(FAILURE, "exception", _err(e), traceback.format_exc())


class _Worker:
    def __init__(self, ctx, args):
        self.parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child,) + args, daemon=True)
        self.proc.start()
        child.close()
        self.ready = False
        self.case = None
        self.deadline = 0.0
        self.started = time.monotonic()
        self.base_rss = 0.0

    def kill(self) -> None:
        try:
            self.proc.kill()  # this worker's own pid
        except Exception:
            pass
        self.proc.join(5)
        try:
            self.parent.close()
        except Exception:
            pass


class WorkerPool:
    """Run cases in ``jobs`` spawn-ed workers, each case bounded in time, address space and RSS."""

    def __init__(self, jobs: int = 2, timeout: float = 10.0, mem_limit: int = 3 << 30,
                 rss_limit_mb: float = 1024.0, threads: int = 1, warmup: bytes | None = None,
                 startup_timeout: float = 300.0, quiet: bool = True):
        import multiprocessing as mp
        self.ctx = mp.get_context("spawn")
        self.jobs = max(1, jobs)
        self.timeout = timeout
        self.rss_limit_mb = rss_limit_mb
        self.startup_timeout = startup_timeout
        self.workdir = tempfile.mkdtemp(prefix="tric-fuzz-")
        self.args = (mem_limit, threads, self.workdir, warmup, quiet)
        self.workers: list[_Worker] = []
        self.restarts = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        for w in self.workers:
            try:
                w.parent.send(None)
            except Exception:
                pass
        for w in self.workers:
            w.proc.join(2)
            if w.proc.is_alive():
                w.kill()
        self.workers = []
        import shutil
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _spawn(self) -> _Worker:
        return _Worker(self.ctx, self.args)

    def run(self, cases: Iterable[Case]) -> Iterator[tuple[Case, Outcome]]:
        from multiprocessing.connection import wait
        it = iter(cases)
        exhausted = False
        while len(self.workers) < self.jobs:
            self.workers.append(self._spawn())
        while True:
            # hand out work
            for w in self.workers:
                if w.ready and w.case is None and not exhausted:
                    try:
                        case = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                    origin = case.origin_digest
                    extra = case.expect_digest if case.kind == "decode" else case.suffix if case.kind == "encode" \
                        else case.desc
                    w.case = case
                    w.deadline = time.monotonic() + self.timeout
                    try:
                        w.parent.send((case.kind, case.data, extra, origin))
                    except (BrokenPipeError, OSError):
                        pass  # noticed below as a crash
            busy = [w for w in self.workers if w.case is not None or not w.ready]
            if exhausted and not any(w.case is not None for w in self.workers):
                return
            now = time.monotonic()
            deadlines = [w.deadline if w.ready else w.started + self.startup_timeout for w in busy]
            ready = wait([w.parent for w in busy], timeout=max(0.0, min(deadlines) - now) if deadlines else None)
            now = time.monotonic()
            for i, w in enumerate(list(self.workers)):
                if w.parent in ready:
                    try:
                        tag, payload = w.parent.recv()
                    except (EOFError, OSError):
                        code = w.proc.exitcode
                        w.proc.join(5)
                        code = w.proc.exitcode if code is None else code
                        if w.case is not None:
                            yield w.case, Outcome(FAILURE, "crash", f"worker died (exit code {code})")
                        elif not w.ready:
                            raise RuntimeError(f"fuzz worker failed to start (exit code {code})")
                        self._replace(i)
                        continue
                    if tag == "ready":
                        w.ready, w.base_rss = True, payload
                        continue
                    out: Outcome = payload
                    case, w.case = w.case, None
                    restart = False
                    if out.maxrss_mb > self.rss_limit_mb:
                        restart = True  # the peak RSS never comes down: start afresh
                        if not out.failed:
                            out = Outcome(FAILURE, "memory", f"peak RSS {out.maxrss_mb:.0f} MB (limit "
                                          f"{self.rss_limit_mb:.0f} MB) after status {out.status}: "
                                          f"{out.error}", seconds=out.seconds, maxrss_mb=out.maxrss_mb)
                    yield case, out
                    if restart:
                        self._replace(i)
                elif w.ready and w.case is not None and now >= w.deadline:
                    case = w.case
                    self._replace(i)
                    yield case, Outcome(FAILURE, "hang", f"no answer within {self.timeout:.0f} s",
                                        seconds=self.timeout)
                elif not w.ready and now >= w.started + self.startup_timeout:
                    raise RuntimeError("fuzz worker did not start in time")

    def _replace(self, i: int) -> None:
        self.workers[i].kill()
        self.workers[i] = self._spawn()
        self.restarts += 1


# ============================================================================================
# Campaigns and summaries
# ============================================================================================

@dataclass
class Summary:
    counts: Counter = field(default_factory=Counter)        # status -> n
    kinds: Counter = field(default_factory=Counter)         # (case kind, status, outcome kind) -> n
    failures: list = field(default_factory=list)            # (Case, Outcome)
    notes: Counter = field(default_factory=Counter)         # note -> n (ok cases with ignored header fields)
    note_examples: dict = field(default_factory=dict)
    altered_examples: list = field(default_factory=list)
    slow: list = field(default_factory=list)                # (seconds, ident, desc) of cases over slow_s
    slow_s: float = 2.0
    cases: int = 0
    wall: float = 0.0

    def add(self, case: Case, out: Outcome) -> None:
        self.cases += 1
        self.counts[out.status] += 1
        self.kinds[(case.kind, out.status, out.kind)] += 1
        if out.failed:
            self.failures.append((case, out))
        if out.note:
            for n in out.note.split("; "):
                self.notes[n] += 1
                self.note_examples.setdefault(n, case.ident + " " + case.desc)
        if out.seconds > self.slow_s and out.kind != "hang":
            self.slow.append((out.seconds, case.ident, case.desc))
        if out.status == "ok" and out.kind == "altered" and len(self.altered_examples) < 20:
            self.altered_examples.append(case.ident + " " + case.desc)

    @property
    def hangs(self) -> int:
        return sum(1 for _, o in self.failures if o.kind == "hang")

    def line(self) -> str:
        return (f"cases={self.cases} ok={self.counts['ok']} DecodeError={self.counts['DecodeError']} "
                f"EncodeError={self.counts['EncodeError']} failures={len(self.failures)} hangs={self.hangs} "
                f"wall={self.wall:.1f}s")

    def failure_groups(self) -> dict[str, list]:
        groups: dict[str, list] = {}
        for case, out in self.failures:
            key = f"{case.kind} {out.kind} {out.error.split(':')[0]} {_where(out.traceback)}"
            key = re.sub(r"\d+", "N", key)
            groups.setdefault(key, []).append((case, out))
        return groups

    def report(self, max_cases: int = 10) -> str:
        lines = [self.line()]
        for k, v in sorted(self.kinds.items()):
            lines.append(f"  {k[0]:7s} {k[1]:12s} {k[2]:16s} {v}")
        if self.slow:
            lines.append(f"{len(self.slow)} cases slower than {self.slow_s:.0f} s (not failures), slowest:")
            for sec, ident, desc in sorted(self.slow, reverse=True)[:5]:
                lines.append(f"  {sec:6.1f} s  {ident} {desc[:160]}")
        if self.counts["ok"] and sum(v for k, v in self.kinds.items() if k[2] == "altered"):
            lines.append("mutated files accepted with other pixels/mode than their seed "
                         "(the CRC covers pixel bytes only), e.g.:")
            for ex in self.altered_examples[:5]:
                lines.append(f"  {ex[:200]}")
        if self.notes:
            lines.append("accepted files whose header contradicts the decoded image (not failures):")
            for n, c in self.notes.most_common(10):
                lines.append(f"  {c:6d} x {n}   e.g. {self.note_examples[n]}")
        groups = self.failure_groups()
        if groups:
            lines.append(f"{len(self.failures)} failures in {len(groups)} groups:")
        shown = 0
        for key, items in groups.items():
            lines.append(f"== {key}: {len(items)} cases")
            for case, out in items[:3]:
                if shown >= max_cases:
                    break
                shown += 1
                lines.append(f"  case {case.ident}: {case.desc}")
                lines.append(f"    -> {out.kind}: {out.error}")
                if len(case.data) <= 512:
                    lines.append(f"    input ({len(case.data)} B, suffix {case.suffix or '.tric'}): {case.data.hex()}")
                if out.traceback:
                    lines.append("    " + "\n    ".join(_short_tb(out.traceback)))
        return "\n".join(lines)


def _frames(tb: str) -> list[str]:
    return [ln.strip() for ln in tb.splitlines() if ln.strip().startswith("File ")]


def _where(tb: str) -> str:
    """The innermost tricodec frame of a traceback (else the innermost frame): the grouping key."""
    frames = _frames(tb)
    ours = [f for f in frames if "/tricodec/" in f or "/kernels/" in f]
    return (ours or frames or [""])[-1]


def _short_tb(tb: str, keep: int = 14) -> list[str]:
    """The traceback from the first tricodec frame on (the fuzzer's own frames dropped)."""
    lines = tb.strip().splitlines()
    start = next((i for i, ln in enumerate(lines) if "/tricodec/" in ln and ln.strip().startswith("File ")), 1)
    body = lines[start:]
    return body if len(body) <= keep else body[:keep - 4] + ["..."] + body[-3:]


def run_campaign(cases: Iterable[Case], jobs: int = 2, timeout: float = 10.0, mem_limit: int = 3 << 30,
                 rss_limit_mb: float = 1024.0, warmup: bytes | None = None,
                 progress: Callable[[Summary], None] | None = None,
                 on_result: Callable[[Case, Outcome], None] | None = None,
                 strict_altered: bool = False) -> Summary:
    """Run cases in a WorkerPool and tally them. ``strict_altered``: a mutated file that decodes to other
    pixels/mode than its seed (the CRC covers pixel bytes only, not the header or a palette) fails too."""
    summary = Summary()
    t0 = time.monotonic()
    with WorkerPool(jobs=jobs, timeout=timeout, mem_limit=mem_limit, rss_limit_mb=rss_limit_mb,
                    warmup=warmup) as pool:
        for case, out in pool.run(cases):
            if strict_altered and out.status == "ok" and out.kind == "altered":
                out = Outcome(FAILURE, "altered", "a mutated file decoded to another image than its seed",
                              seconds=out.seconds, note=out.note, maxrss_mb=out.maxrss_mb)
            summary.add(case, out)
            if on_result is not None:
                on_result(case, out)
            if progress is not None:
                summary.wall = time.monotonic() - t0
                progress(summary)
    summary.wall = time.monotonic() - t0
    return summary


# ============================================================================================
# Multi-frame files (flag FRAMES): the FRAMES section, restated from tricodec/frames.py's docstring
# ============================================================================================
#   kind_len (u8) | kind | info_len (u32) | info | count (u32) |
#   count x [params_len (u32) | params (META layout) | data_len (u32) | data (a single-image .tric)]

FLAG_FRAMES, SEC_FRAMES = 2, 5


def build_frames_corpus() -> list[Seed]:
    """Small multi-frame files: an APNG (4 frames, one partial with an offset, mixed disposal/blend, a
    loop count), a multi-page TIFF (RGB, L and I;16 pages, a resolution on one), a GIF (3 frames, local
    palettes, transparency, a comment), two ICOs of two sizes (32-bit bitmaps; PNG images) and an ICNS."""
    import tricodec
    from tricodec import frames
    out = []
    imgs = [Image.fromarray(photo_like(10, 12, 4, 40 + i), "RGBA") for i in range(4)]
    imgs[2] = Image.fromarray(photo_like(10, 12, 4, 50), "RGBA")
    buf = io.BytesIO()
    imgs[0].save(buf, format="PNG", save_all=True, append_images=imgs[1:], duration=[30, 60, 90, 120], loop=2,
                 disposal=[0, 1, 2, 0], blend=[0, 1, 0, 1])
    out.append(Seed("apng_4f", tricodec.encode_frames(buf.getvalue(), device="cpu"), ""))
    pages = [Image.fromarray(photo_like(9, 11, 3, 60), "RGB"), Image.fromarray(photo_like(7, 5, 1, 61)[:, :, 0], "L"),
             Image.fromarray(photo_like(6, 8, 1, 62)[:, :, 0].astype(np.uint16) * 257)]
    buf = io.BytesIO()
    pages[0].save(buf, format="TIFF", save_all=True, append_images=pages[1:], dpi=(150, 150))
    out.append(Seed("tiff_3p", tricodec.encode_frames(buf.getvalue(), device="cpu"), ""))
    gif = [Image.fromarray(photo_like(8, 10, 3, 70 + i), "RGB").quantize(8 + 4 * i) for i in range(3)]
    buf = io.BytesIO()
    gif[0].save(buf, format="GIF", save_all=True, append_images=gif[1:], duration=[20, 40, 60], loop=0,
                disposal=[2, 1, 0], transparency=1, comment=b"fuzz")
    out.append(Seed("gif_3f", tricodec.encode_frames(buf.getvalue(), device="cpu"), ""))
    icons = [Image.fromarray(photo_like(n, n, 4, 80 + n), "RGBA") for n in (16, 24)]
    for fmt in ("bmp", "png"):
        buf = io.BytesIO()
        icons[1].save(buf, format="ICO", sizes=[(16, 16), (24, 24)], append_images=icons[:1], bitmap_format=fmt)
        out.append(Seed(f"ico_{fmt}", tricodec.encode_frames(buf.getvalue(), device="cpu"), ""))
    buf = io.BytesIO()
    Image.fromarray(photo_like(32, 32, 4, 90), "RGBA").save(buf, format="ICNS", sizes=[(16, 16), (32, 32)])
    out.append(Seed("icns_png", tricodec.encode_frames(buf.getvalue(), device="cpu"), ""))
    assert all(frames.is_frames(s.data) for s in out)
    return out


def frames_layout(data: bytes):
    """(kind, info, [[params, data], ...], count) of a multi-frame file's FRAMES payload (ValueError if
    it does not parse)."""
    pos = HEADER_SIZE + 5
    end = pos + struct.unpack_from("<I", data, HEADER_SIZE + 1)[0]

    def take(n):
        nonlocal pos
        if n < 0 or pos + n > end:
            raise ValueError("short")
        pos += n
        return data[pos - n:pos]

    kind = take(take(1)[0])
    info = take(struct.unpack("<I", take(4))[0])
    count = struct.unpack("<I", take(4))[0]
    frames = []
    for _ in range(min(count, 64)):
        params = take(struct.unpack("<I", take(4))[0])
        frames.append([params, take(struct.unpack("<I", take(4))[0])])
    return kind, info, frames, count


def frames_file(head: bytes, kind: bytes, info: bytes, frames: list, count: int | None = None) -> bytes:
    """A multi-frame file around a (possibly mangled) FRAMES payload, its header CRC made valid."""
    payload = bytes([len(kind) & 0xFF]) + kind + _u32(len(info)) + info + _u32(len(frames) if count is None else count)
    payload += b"".join(_u32(len(p)) + p + _u32(len(d)) + d for p, d in frames)
    h = bytearray(head[:HEADER_SIZE])
    h[46] = 1
    h[42:46] = _u32(file_crc(bytes(h), zlib.crc32(payload)))
    return bytes(h) + bytes([SEC_FRAMES]) + _u32(len(payload)) + payload


def _fctl(rng: random.Random) -> bytes:
    vals = [rng.choice([0, 1, 3, 12, 0x7FFFFFFF, 0xFFFFFFFF]) for _ in range(4)]
    return struct.pack(">IIIIHHBB", *vals, rng.randrange(1 << 16), rng.choice([0, 1, 100, 0xFFFF]),
                       rng.choice([0, 1, 2, 3, 255]), rng.choice([0, 1, 2, 255]))


def frames_mutation(data: bytes, rng: random.Random, corpus: list) -> tuple[bytes, str]:
    """One structured mutation of a multi-frame file (its CRC fixed), or a blind one."""
    kind, info, frames, count = frames_layout(data)
    frames = [list(f) for f in frames]
    what = rng.randrange(11)
    n = len(frames)
    i = rng.randrange(n)
    if what == 0:
        v = rng.choice([0, 1, n - 1, n + 1, 1 << 16, (1 << 16) + 1, 0xFFFFFFFF])
        return frames_file(data, kind, info, frames, v), f"frames.count={v}"
    if what == 1:
        k = rng.choice([b"APNG", b"TIFF", b"GIF", b"MPO", b"", b"\xff\xfe", b"A" * 255, b"apng"])
        return frames_file(data, k, info, frames), f"frames.kind={k[:8]!r}"
    if what == 2:
        desc = struct.pack("<HHHHB", *(rng.choice([0, 1, 8, 65535]) for _ in range(4)), rng.randrange(256))
        entries = rng.choice([[(b"fctl", _fctl(rng))], [(b"hidden", b"\x01")], [(b"fctl", _fctl(rng)[:rng.randrange(22)])],
                              [(b"fctl", _fctl(rng)), (b"x", b"")], [],
                              [(b"ext", bytes(rng.randrange(256) for _ in range(rng.randrange(12)))), (b"desc", desc),
                               (b"lct", bytes(rng.choice([0, 6, 24, 768])))],
                              [(b"entry", bytes(8)), (b"dib", struct.pack("<IiiHH", 40, rng.choice([0, 1, 16, -5]),
                                                                          rng.choice([0, 2, 32, 33]), 1,
                                                                          rng.choice([1, 4, 8, 24, 32, 16]))
                                                      + bytes(rng.choice([26, 90]))),
                               (b"mask", zlib.compress(bytes(rng.randrange(64))))],
                              [(b"entry", bytes(rng.randrange(10))), (b"png", b"\x01")]])
        frames[i][0] = meta_payload(entries)
        return frames_file(data, kind, info, frames), f"frames[{i}].params={[k for k, _ in entries]}"
    if what == 3:
        head = b"GIF89a" + struct.pack("<HH", rng.choice([0, 1, 65535]), rng.choice([0, 1, 65535])) + bytes(
            [rng.randrange(256), 0, 0]) + bytes(rng.choice([0, 6, 768]))
        entries = rng.choice([[(b"num_plays", _u32(rng.randrange(1 << 32)))], [(b"num_plays", b"\0")], [],
                              [(b"loop", b"\0\0\0\0")], [(b"head", head), (b"tail", b"")],
                              [(b"head", head[:rng.randrange(13)]), (b"tail", b"\x21\xfe\x01x\x00")],
                              [(b"type", rng.choice([b"\x01\x00", b"\x02\x00", b"\x03\x00", b""]))],
                              [(b"layout", rng.choice([b"ic07P", b"ic07Pic08P", b"s8mkM", b"TOC T", b"xxxxV", b"ic07",
                                                       b"ic07Pxxxx?"])), (b"raw:0", b"\0" * rng.randrange(3))]])
        return frames_file(data, kind, meta_payload(entries), frames), f"frames.info={[k for k, _ in entries]}"
    if what == 4:
        del frames[i]
        return frames_file(data, kind, info, frames), f"frames: drop {i}"
    if what == 5:
        frames.insert(i, list(frames[rng.randrange(n)]))
        return frames_file(data, kind, info, frames), f"frames: duplicate into {i}"
    if what == 6:
        j = rng.randrange(n)
        frames[i], frames[j] = frames[j], frames[i]
        return frames_file(data, kind, info, frames), f"frames: swap {i},{j}"
    if what == 7:
        other = rng.choice(corpus)
        frames[i][1] = other.data
        return frames_file(data, kind, info, frames), f"frames[{i}].data<-{other.name}"
    if what == 8:
        cut = rng.randrange(len(frames[i][1]) + 1)
        frames[i][1] = frames[i][1][:cut]
        return frames_file(data, kind, info, frames), f"frames[{i}].data truncated@{cut}"
    if what == 9:
        d = bytearray(frames[i][1])
        field = rng.choice(["width", "height", "mode", "channels"])
        if field == "mode":
            d[18:26] = rng.choice([b"RGB", b"RGBA", b"P", b"I;16", b"RGB;16"]).ljust(8, b"\0")
        else:
            put_field(d, field, rng.choice(int_extremes(HEADER_FIELDS[field][1], get_field(bytes(d), field))))
        frames[i][1] = bytes(d)
        return frames_file(data, kind, info, frames), f"frames[{i}].header.{field}"
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        at = rng.randrange(len(buf))
        buf[at] ^= 1 << rng.randrange(8)
    return bytes(buf), "frames: blind bit flips"


def frames_case(corpus: list[Seed], all_seeds: list[Seed], seed: int, index: int) -> Case:
    """Multi-frame case ``index`` of run ``seed``: one to three mutations of a frames seed; frame data
    may come from ``all_seeds`` (single-image files of every kind, or other frames files)."""
    rng = _rng("frames", seed, index)
    base = corpus[rng.randrange(len(corpus))]
    data, descs = base.data, []
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        try:
            data, d = frames_mutation(data, rng, all_seeds)
        except (ValueError, IndexError, struct.error) as e:
            d = f"skipped: {type(e).__name__}"
        descs.append(d)
    return Case("frames", seed, index, f"{base.name} | " + " ; ".join(descs), data)


def run_frames_case(data: bytes, workdir: str | None = None) -> Outcome:
    """Decode a multi-frame input (``frames.decode_all`` and the ``decode_frames`` iterator): a
    DecodeError, or frames that each match their own header, that the iterator gives alike, and that
    ``frames.write_frames`` writes or refuses with a TricodecError. Anything else is a failure."""
    import tricodec
    from tricodec import frames
    t0 = time.perf_counter()
    try:
        fr = frames.decode_all(data, device="cpu")
        one_by_one = list(tricodec.decode_frames(data, device="cpu"))
    except tricodec.DecodeError as e:
        return Outcome("DecodeError", error=_err(e), seconds=time.perf_counter() - t0)
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, KeyboardInterrupt):
            raise
        return Outcome(FAILURE, "exception", _err(e), traceback.format_exc(), time.perf_counter() - t0)
    dt = time.perf_counter() - t0
    if len(one_by_one) != len(fr) or any(image_digest(a.image) != image_digest(b.image) or a.params != b.params
                                         for a, b in zip(fr, one_by_one)):
        return Outcome(FAILURE, "wrong-pixels", "decode_frames and decode_all disagree", seconds=dt)
    fd, path = tempfile.mkstemp(suffix=fr.suffix, dir=workdir)
    os.close(fd)
    try:
        frames.write_frames(fr, path, png_level=1)
    except tricodec.TricodecError:
        pass
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, KeyboardInterrupt):
            raise
        return Outcome(FAILURE, "write", "writing the decoded frames: " + _err(e), traceback.format_exc(), dt)
    finally:
        os.unlink(path)
    return Outcome("ok", "exact", seconds=dt)


if __name__ == "__main__":  # quick look at the corpus
    for s in build_corpus():
        print(describe_seed(s))
    for s in build_image_corpus():
        print(f"{s.name}: {len(s.data)} B")
    sys.exit(0)
