"""The ``.tric`` container, format version 1: one file per image, decodable alone.

Header (48 bytes, little-endian; ``HEADER_SIZE`` is pinned by a test)::

    off size field
      0    4 magic            b"TRIC"
      4    1 version          1
      5    1 flags            bit 0 FALLBACK: pixels are in the FALLBACK section, not model-coded
                              bit 1 FRAMES: a multi-frame image (APNG, multi-page TIFF ...): one FRAMES
                              section holding a complete .tric file per frame (``frames.py``); the
                              header's size and mode are the first frame's, its crc32 covers the section
                              bits 2-7 reserved, must be 0 (a decoder refuses unknown flags)
      6    2 header_len       48 (lets a future version grow the header)
      8    4 width            >= 1
     12    4 height           >= 1
     16    1 channels         bands of the image (1 for L, 3 for RGB, 4 for RGBA, ...)
     17    1 bit_depth        bits per sample (1, 8, 16 or 32)
     18    8 mode             Pillow mode, ASCII, NUL-padded ("RGB", "L", "I;16", ...); "RGB;16" and
                              "RGBA;16" name 16-bit colour images Pillow cannot hold
     26    8 model_name       ASCII, NUL-padded; all NUL for FALLBACK files
     34    8 model_hash       first 8 bytes of the weights' digest (model_id.py); all NUL for FALLBACK files
     42    4 crc32            zlib.crc32 of the decoded content (pixel bytes in Pillow ``tobytes()``
                              order, then for P/PA images the palette mode and bytes), continued over
                              these 48 header bytes with this field zeroed: any change to the pixels,
                              the palette or a header field is caught
     46    1 n_sections
     47    1 reserved         0

Then ``n_sections`` sections, each ``tag (u8) | length (u32) | payload``, in this order:

* model path: ``SIDE`` (side information) then ``LANES`` (the residual lanes), laid out as the model the
  header names says: block-scale models as below, context models as in ``context_model.py``,
  wavefront models (tric-wf1, tric-wf2) as in ``wavefront_model.py`` (``SIDE`` = strip rows
  [+ tric-wf2: its predictor's parameters per plane];
  ``LANES`` = per strip its rANS words, K interleaved states first, then its raw extra-bit words), the
  fused model (tric-wf3, the default) as in ``fused_model.py`` (the same ``LANES``, a longer ``SIDE``);
  model-coded 16-bit images add ``DEEP`` (since 2026-11-30: their depth split, ``deep.py``; decoders
  before that refuse model-coded 16-bit files);
* fallback: ``FALLBACK``;
* optionally, last: ``META`` (ICC profile, EXIF, PNG text ...: see ``metadata.py``);
* multi-frame files (flag FRAMES, since 2026-11-30): ``FRAMES`` alone (``frames.py``). Decoders before
  that refuse them (unknown flag); :func:`unpack` refuses them unless asked for frames.

For block-scale models, a *lane stream* (inside ``SIDE`` and as the whole of ``LANES``) is ``lane_log2 (u8) | counts
(u32 x n_lanes) | words (u16 x sum(counts))``; ``n_lanes`` follows from the symbol count, which
follows from the header, so every length is checked against the bytes present before anything large
is allocated.  The file ends exactly where its last section ends.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from .errors import DecodeError
from .rans_ref import check_lane_table, lane_count

MAGIC = b"TRIC"
VERSION = 1
HEADER_SIZE = 48
_HEADER = struct.Struct("<4sBBHIIBB8s8s8sIBB")
assert _HEADER.size == HEADER_SIZE

FLAG_FALLBACK = 1
FLAG_FRAMES = 2
KNOWN_FLAGS = FLAG_FALLBACK | FLAG_FRAMES

SEC_SIDE = 1
SEC_LANES = 2
SEC_FALLBACK = 3
SEC_META = 4
SEC_FRAMES = 5
SEC_DEEP = 6
_SECTION = struct.Struct("<BI")

LANE_LOG2_MIN, LANE_LOG2_MAX = 6, 16
DEFAULT_MAX_PIXELS = 1 << 27  # ~134 megapixels; the decompression-bomb guard
DEFAULT_MAX_MEMORY = 6 << 30  # bytes a decode may need at its peak
# Peak bytes per sample while decoding: residuals, table ids (int32), planes, output image, copies.
_PEAK_BYTES_PER_SAMPLE = 10
# A 16-bit image: symbols, the depth split's int32 plane, residuals, planes, output and the CRC's copy
# (measured: 10.5 bytes a sample decoding a 3000x4000 RGB;16 photo on the CPU).
_PEAK_BYTES_PER_DEEP_SAMPLE = 14


def decode_memory(header: "Header") -> int:
    """Upper estimate of the memory (bytes) decoding this file needs, computed from the header alone."""
    per_sample = _PEAK_BYTES_PER_DEEP_SAMPLE if header.bit_depth == 16 else _PEAK_BYTES_PER_SAMPLE
    return header.width * header.height * header.channels * max(per_sample, 3 * max(1, header.bit_depth // 8))


@dataclass
class Header:
    width: int
    height: int
    channels: int
    bit_depth: int
    mode: str
    flags: int = 0
    model_name: str = ""
    model_hash: bytes = b"\0" * 8
    crc32: int = 0
    n_sections: int = 0

    @property
    def is_fallback(self) -> bool:
        return bool(self.flags & FLAG_FALLBACK)


def _ascii(s: str, n: int, what: str) -> bytes:
    b = s.encode("ascii")
    if len(b) > n:
        raise ValueError(f"{what} {s!r} longer than {n} bytes")
    return b.ljust(n, b"\0")


def _pack_header(header: Header, n_sections: int, crc: int) -> bytes:
    return _HEADER.pack(MAGIC, VERSION, header.flags, HEADER_SIZE, header.width, header.height,
                        header.channels, header.bit_depth, _ascii(header.mode, 8, "mode"),
                        _ascii(header.model_name, 8, "model name"), header.model_hash, crc, n_sections, 0)


def file_crc(head: bytes, content_crc: int) -> int:
    """The header's crc32 field: ``content_crc`` continued over the header with that field zeroed."""
    return zlib.crc32(bytes(head[:42]) + b"\0\0\0\0" + bytes(head[46:HEADER_SIZE]), content_crc)


def pack(header: Header, sections: list[tuple[int, bytes]], content_crc: int) -> bytes:
    """The file: header (its crc32 computed here from ``content_crc``) then the sections."""
    header.crc32 = file_crc(_pack_header(header, len(sections), 0), content_crc)
    head = _pack_header(header, len(sections), header.crc32)
    parts = [head]
    for tag, payload in sections:
        parts.append(_SECTION.pack(tag, len(payload)))
        parts.append(payload)
    return b"".join(parts)


def _text(raw: bytes, what: str) -> str:
    s = raw.rstrip(b"\0")
    if b"\0" in s or not s.isascii():
        raise DecodeError(f"malformed {what} field in header")
    return s.decode("ascii")


def unpack(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
           max_memory: int = DEFAULT_MAX_MEMORY, frames: bool = False) -> tuple[Header, dict[int, memoryview]]:
    """Parse and validate the header and section table. Raises DecodeError on anything inconsistent, and
    on a multi-frame file unless ``frames`` (``frames.py`` reads those)."""
    data = memoryview(data)
    if len(data) < 4 or bytes(data[:4]) != MAGIC:
        raise DecodeError("not a tricodec file (bad magic)")
    if len(data) < 6:
        raise DecodeError("truncated header")
    version = data[4]
    if version != VERSION:
        raise DecodeError(f"format version {version} is not supported (this tricodec reads version {VERSION})")
    if len(data) < HEADER_SIZE:
        raise DecodeError("truncated header")
    (_, _, flags, header_len, width, height, channels, bit_depth, mode, model_name, model_hash,
     crc, n_sections, reserved) = _HEADER.unpack_from(data, 0)
    if flags & ~KNOWN_FLAGS or reserved != 0 or header_len != HEADER_SIZE or flags == KNOWN_FLAGS:
        raise DecodeError("unknown flags or header layout")
    if flags & FLAG_FRAMES and not frames:
        raise DecodeError("multi-frame file: decode it with tricodec.decode_frames (or tricodec decode)")
    if width < 1 or height < 1 or not 1 <= channels <= 4 or bit_depth not in (1, 8, 16, 32):
        raise DecodeError("invalid image dimensions in header")
    if width * height > max_pixels:
        raise DecodeError(f"image of {width}x{height} exceeds the limit of {max_pixels} pixels")
    header = Header(width=width, height=height, channels=channels, bit_depth=bit_depth,
                    mode=_text(mode, "mode"), flags=flags, model_name=_text(model_name, "model name"),
                    model_hash=bytes(model_hash), crc32=crc, n_sections=n_sections)
    if decode_memory(header) > max_memory:
        raise DecodeError(f"decoding needs ~{decode_memory(header) >> 20} MiB, above the limit of "
                          f"{max_memory >> 20} MiB")
    sections: dict[int, memoryview] = {}
    pos = HEADER_SIZE
    for _ in range(n_sections):
        if pos + _SECTION.size > len(data):
            raise DecodeError("truncated section table")
        tag, length = _SECTION.unpack_from(data, pos)
        pos += _SECTION.size
        if tag not in (SEC_SIDE, SEC_LANES, SEC_FALLBACK, SEC_META, SEC_FRAMES, SEC_DEEP) or tag in sections:
            raise DecodeError(f"unknown or repeated section {tag}")
        if pos + length > len(data):
            raise DecodeError("truncated file: a section runs past the end")
        sections[tag] = data[pos:pos + length]
        pos += length
    if pos != len(data):
        raise DecodeError("trailing bytes after the last section")
    expected = {SEC_FALLBACK} if header.is_fallback else {SEC_SIDE, SEC_LANES}
    if not header.is_fallback and bit_depth == 16:
        expected.add(SEC_DEEP)
    if flags & FLAG_FRAMES:
        if set(sections) != {SEC_FRAMES}:
            raise DecodeError("missing or unexpected sections for this kind of file")
    elif set(sections) - {SEC_META} != expected:
        raise DecodeError("missing or unexpected sections for this kind of file")
    return header, sections


def pack_lanes(lane_log2: int, counts: np.ndarray, words: np.ndarray) -> bytes:
    return (bytes([lane_log2]) + np.asarray(counts, dtype="<u4").tobytes()
            + np.asarray(words, dtype="<u2").tobytes())


def unpack_lanes(payload: memoryview, n_symbols: int) -> tuple[int, np.ndarray, np.ndarray]:
    """-> (lane_size, counts uint32 (n_lanes,), words uint16 (W,)), validated against the payload size."""
    if len(payload) < 1:
        raise DecodeError("empty lane stream")
    lane_log2 = payload[0]
    if not LANE_LOG2_MIN <= lane_log2 <= LANE_LOG2_MAX:
        raise DecodeError(f"lane size 2^{lane_log2} out of range")
    lane_size = 1 << lane_log2
    n_lanes = lane_count(n_symbols, lane_size)
    if 1 + 4 * n_lanes > len(payload):
        raise DecodeError("truncated lane table")
    counts = np.frombuffer(payload, dtype="<u4", count=n_lanes, offset=1).astype(np.uint32)
    rest = len(payload) - 1 - 4 * n_lanes
    if rest % 2:
        raise DecodeError("lane data has an odd number of bytes")
    check_lane_table(counts, rest // 2, n_symbols, lane_size)
    words = np.frombuffer(payload, dtype="<u2", offset=1 + 4 * n_lanes).astype(np.uint16)
    return lane_size, counts, words
