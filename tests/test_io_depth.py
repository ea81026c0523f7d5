"""Reading images without losing bits, frames or sizes (issue #11, items 3, 4 and 6).

Every file here is made by the test: 16-bit PNG (colour, grey+alpha, sBIT, tRNS, APNG), TIFF, PPM/PGM, SGI,
multi-size icons and a hostile PSD. Each is read both ways a user can: ``read_image`` (the CLI's reader) and
``tricodec.encode(Image.open(...))`` (the API), which must agree.
"""
import io
import struct
import zlib

import numpy as np
import png
import pytest
from PIL import Image

import tricodec
from tricodec.pixels import read_image

RNG = np.random.default_rng(11)
RGB16 = RNG.integers(0, 65536, (5, 7, 3)).astype(np.uint16)
RGBA16 = RNG.integers(0, 65536, (5, 7, 4)).astype(np.uint16)
LA16 = np.ascontiguousarray(RGB16[:, :, :2])


def _chunk(typ: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body))


def png16(arr: np.ndarray, greyscale: bool = False, extra: tuple = ()) -> bytes:
    """A 16-bit PNG of ``arr`` (pypng), with ``extra`` (type, body) chunks right after IHDR."""
    h, w, c = arr.shape
    buf = io.BytesIO()
    png.Writer(width=w, height=h, bitdepth=16, greyscale=greyscale, alpha=c in (2, 4)).write(
        buf, arr.reshape(h, w * c).tolist())
    data = buf.getvalue()
    return data[:33] + b"".join(_chunk(t, b) for t, b in extra) + data[33:]


def apng16(arr: np.ndarray, frames: int) -> bytes:
    """A 16-bit colour APNG with ``frames`` identical frames."""
    one = png16(arr)
    idat = next(body for typ, body in _chunks(one) if typ == b"IDAT")
    h, w = arr.shape[:2]

    def fctl(seq):
        return _chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, w, h, 0, 0, 1, 10, 0, 0))
    parts = [one[:33], _chunk(b"acTL", struct.pack(">II", frames, 0)), fctl(0), _chunk(b"IDAT", idat)]
    seq = 1
    for _ in range(frames - 1):
        parts += [fctl(seq), _chunk(b"fdAT", struct.pack(">I", seq + 1) + idat)]
        seq += 2
    return b"".join(parts) + _chunk(b"IEND", b"")


def _chunks(data: bytes):
    pos = 8
    while pos < len(data):
        n, typ = struct.unpack_from(">I4s", data, pos)
        yield typ, data[pos + 8:pos + 8 + n]
        pos += 12 + n


def tiff16(arr: np.ndarray, **kw) -> bytes:
    tifffile = pytest.importorskip("tifffile")
    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kw)
    return buf.getvalue()


def sgi16(arr: np.ndarray, rle: bool = False) -> bytes:
    """A 16-bit SGI image: 512-byte header, planes bottom row first; verbatim, or RLE rows of literal runs
    of at most 100 items (with offset and length tables)."""
    h, w, c = arr.shape
    head = struct.pack(">hBBHHHH", 474, int(rle), 2, 3 if c > 1 else 2, w, h, c).ljust(512, b"\0")
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


def psd_with_negative_layer() -> bytes:
    """A 2x2 RGB PSD whose one layer has a bottom edge above its top: Pillow raises ValueError("negative
    tile size") from ``n_frames``."""
    head = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 2, 2, 8, 3)
    layer = struct.pack(">iiii", 5, 0, 1, 2) + struct.pack(">H", 1) + struct.pack(">HI", 0, 0) \
        + b"8BIMnorm" + bytes([255, 0, 0, 0]) + struct.pack(">I", 0)
    info = struct.pack(">h", 1) + layer
    section = struct.pack(">I", len(info)) + info
    return head + struct.pack(">I", 0) + struct.pack(">I", 0) + struct.pack(">I", len(section)) + section \
        + struct.pack(">H", 0) + bytes(3 * 2 * 2)


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def both_ways(path):
    """(what read_image returns, what the API stores) for one file: the API's pixels come from decoding
    ``tricodec.encode(Image.open(path))`` and from an in-memory copy of the file."""
    read = read_image(path)
    api = tricodec.decode_array(tricodec.encode(Image.open(path), device="cpu"))
    api_bytes = tricodec.decode_array(tricodec.encode(Image.open(io.BytesIO(path.read_bytes())), device="cpu"))
    assert api.dtype == api_bytes.dtype and np.array_equal(api, api_bytes)
    return read, api


def refused_both_ways(path, match: str) -> None:
    with pytest.raises(tricodec.EncodeError, match=match) as e:
        read_image(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(tricodec.EncodeError, match=match):
        tricodec.encode(Image.open(path), device="cpu")
    with pytest.raises(tricodec.EncodeError, match=match):
        tricodec.encode(Image.open(io.BytesIO(path.read_bytes())), device="cpu")


# ---- 16 bits are kept, or the file is refused ----

@pytest.mark.parametrize("name,data,expected", [
    ("rgb16.png", lambda: png16(RGB16), RGB16),
    ("rgba16.png", lambda: png16(RGBA16), RGBA16),
    ("la16.png", lambda: png16(LA16, greyscale=True), LA16),
    ("rgb16.tif", lambda: tiff16(RGB16, photometric="rgb"), RGB16),
    ("rgba16.tif", lambda: tiff16(RGBA16, photometric="rgb", extrasamples=["unassalpha"]), RGBA16),
    ("rgb16_deflate.tif", lambda: tiff16(RGB16, photometric="rgb", compression="zlib"), RGB16),
    ("rgb16_planar.tif", lambda: tiff16(RGB16.transpose(2, 0, 1), photometric="rgb", planarconfig="separate"),
     RGB16),
    ("rgb16.ppm", lambda: b"P6\n# a comment\n7 5\n65535\n" + RGB16.astype(">u2").tobytes(), RGB16),
    ("rgb16_plain.ppm", lambda: b"P3 7 5 65535\n" + " ".join(map(str, RGB16.ravel())).encode(), RGB16),
    ("rgb16.sgi", lambda: sgi16(RGB16), RGB16),
    ("rgba16_rle.sgi", lambda: sgi16(np.tile(RGBA16, (1, 40, 1)), rle=True), np.tile(RGBA16, (1, 40, 1))),
], ids=lambda v: v if isinstance(v, str) else "")
def test_16bit_colour_read_at_full_depth(tmp_path, name, data, expected):
    """Pillow truncates each of these to 8 bits (TIFF and PPM used to be refused, SGI truncated, 16-bit
    grey+alpha PNG refused: it is LA;16 now)."""
    read, api = both_ways(write(tmp_path, name, data()))
    assert isinstance(read, np.ndarray) and read.dtype == np.uint16 and np.array_equal(read, expected)
    assert api.dtype == np.uint16 and np.array_equal(api, expected)
    back = tricodec.decode_array(tricodec.encode(read, device="cpu"))
    assert np.array_equal(back, expected)


def test_16bit_lzw_tiff_read_at_full_depth(tmp_path):
    """LZW is what scanners and raw developers write; tifffile decodes it with imagecodecs."""
    pytest.importorskip("imagecodecs")
    read, api = both_ways(write(tmp_path, "lzw.tif", tiff16(RGB16, photometric="rgb", compression="lzw")))
    assert np.array_equal(read, RGB16) and np.array_equal(api, RGB16)


def test_16bit_png_with_sbit_keeps_its_samples(tmp_path):
    """pypng's asDirect() shifted every sample right to the sBIT depth (12 bits here)."""
    arr = RGB16 & 0xFFF0
    read, api = both_ways(write(tmp_path, "sbit.png", png16(arr, extra=[(b"sBIT", bytes([12, 12, 12]))])))
    assert np.array_equal(read, arr) and np.array_equal(api, arr)


def test_16bit_grey_sgi_is_16bit_grey(tmp_path):
    """Pillow reads it as 8-bit L; tricodec as I;16, every sample kept, verbatim or RLE."""
    grey = RGB16[:, :, :1]
    for rle in (False, True):
        image = read_image(write(tmp_path, f"g{int(rle)}.sgi", sgi16(grey, rle=rle)))
        assert image.mode == "I;16" and np.array_equal(np.asarray(image), grey[:, :, 0])


def test_16bit_pgm_is_16bit_grey(tmp_path):
    """Pillow opens it as 32-bit mode I (another depth); tricodec reads it as I;16, every sample kept."""
    grey = RGB16[:, :, 0]
    path = write(tmp_path, "g16.pgm", b"P5\n7 5\n65535\n" + grey.astype(">u2").tobytes())
    image = read_image(path)
    assert image.mode == "I;16" and np.array_equal(np.asarray(image), grey)
    back = tricodec.decode(tricodec.encode(Image.open(path), device="cpu"))
    assert back.mode == "I;16" and np.array_equal(np.asarray(back), grey)


@pytest.mark.parametrize("name,data,match", [
    ("bad_rle16.sgi", lambda: sgi16(RGB16, rle=True)[:-3], "corrupt SGI"),
    ("cmyk16.tif", lambda: tiff16(RGBA16, photometric="separated"), "16-bit SEPARATED TIFF"),
    ("assoc16.tif", lambda: tiff16(RGBA16, photometric="rgb", extrasamples=["assocalpha"]), "extra samples"),
    ("icc16.tif", lambda: tiff16(RGB16, photometric="rgb", iccprofile=b"\0" * 128), "ICC"),
    ("g12.pgm", lambda: b"P5\n7 5\n4095\n" + (RGB16[:, :, 0] >> 4).astype(">u2").tobytes(), "maxval 4095"),
    ("g15.pgm", lambda: b"P5\n7 5\n15\n" + (RGB16[:, :, 0] >> 12).astype(np.uint8).tobytes(), "maxval 15"),
    ("short16.ppm", lambda: b"P6\n7 5\n65535\n" + RGB16.astype(">u2").tobytes()[:-1], "truncated"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_deep_files_that_cannot_be_kept_are_refused(tmp_path, name, data, match):
    """Each of these used to be converted (grey+alpha to RGBA, tRNS to an alpha channel), truncated to
    8 bits (SGI, CMYK TIFF) or rescaled (PGM maxval), silently; a corrupt one is refused, not guessed."""
    refused_both_ways(write(tmp_path, name, data()), match)


# ---- frames and sizes ----

@pytest.mark.parametrize("name,data,match", [
    ("anim16.png", lambda: apng16(RGB16, 2), "multi-frame image \\(2 frames\\)"),
    ("three.ico", lambda: _pil_bytes(Image.new("RGBA", (64, 64), (1, 2, 3, 4)), "ICO",
                                     sizes=[(16, 16), (32, 32), (64, 64)]), "3 sizes"),
    ("icon.icns", lambda: _pil_bytes(Image.new("RGBA", (128, 128), (1, 2, 3, 4)), "ICNS"), "ICNS icon \\(\\d+ sizes\\)"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_several_frames_or_sizes_are_refused_the_same_way(tmp_path, name, data, match):
    """ICO/ICNS kept only their largest size; a 16-bit APNG kept frame 1 through the CLI."""
    refused_both_ways(write(tmp_path, name, data()), match)


def test_one_size_icon_and_one_frame_apng_are_read(tmp_path):
    path = write(tmp_path, "one.ico", _pil_bytes(Image.new("RGBA", (32, 32), (9, 8, 7, 6)), "ICO", sizes=[(32, 32)]))
    assert read_image(path).size == (32, 32)
    read, api = both_ways(write(tmp_path, "one16.png", apng16(RGB16, 1)))
    assert np.array_equal(read, RGB16) and np.array_equal(api, RGB16)


def _pil_bytes(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


# ---- every Pillow failure is an EncodeError ----

def test_hostile_psd_is_an_encode_error(tmp_path):
    """``normalize`` asked ``n_frames`` outside its guard: ValueError("negative tile size") escaped."""
    data = psd_with_negative_layer()
    with pytest.raises(ValueError, match="negative tile size"):
        Image.open(io.BytesIO(data)).n_frames  # the file does what it should to Pillow
    path = write(tmp_path, "bad.psd", data)
    refused_both_ways(path, "negative tile size")


def test_huge_16bit_ppm_header_is_refused_before_reading(tmp_path):
    """A 40-byte PPM claiming 12000x10000 16-bit pixels (720 MB): refused from its length, nothing read."""
    path = write(tmp_path, "huge.ppm", b"P6\n12000 10000\n65535\n" + b"\0" * 20)
    with pytest.raises(tricodec.EncodeError, match="truncated PNM"):
        read_image(path)


# ---- JPEG 2000: Pillow shifts samples of other precisions to its mode's ----

def _j2k(image: Image.Image) -> bytearray:
    from PIL import features
    if not features.check("jpg_2000"):
        pytest.skip("Pillow without openjpeg")
    return bytearray(_pil_bytes(image, "JPEG2000", no_jp2=True, irreversible=False))


def test_16bit_colour_jpeg2000_is_refused_not_truncated(tmp_path):
    """A colour codestream whose SIZ says 16 bits per component: Pillow opens it as RGB and openjpeg's
    samples are shifted down to 8 bits. (Made from an 8-bit one by raising each component's Ssiz.)"""
    data = _j2k(Image.fromarray(RGB16[:, :, :3].astype(np.uint8)))
    assert data[:4] == b"\xff\x4f\xff\x51" and data[40:42] == b"\0\3"
    data[42:51:3] = bytes([15, 15, 15])
    refused_both_ways(write(tmp_path, "deep.j2k", bytes(data)), "16-bit JPEG2000")


def test_8bit_and_16bit_grey_jpeg2000_are_read(tmp_path):
    rgb = Image.fromarray((RGB16 >> 8).astype(np.uint8))
    grey = Image.fromarray(RGB16[:, :, 0])
    for name, image in (("rgb.j2k", rgb), ("grey16.j2k", grey)):
        path = write(tmp_path, name, bytes(_j2k(image)))
        back = tricodec.decode(tricodec.encode(Image.open(path), device="cpu"))
        assert back.mode == image.mode and np.array_equal(np.asarray(back), np.asarray(image))
        assert np.array_equal(np.asarray(read_image(path)), np.asarray(image))


def test_16bit_image_already_loaded_at_8_bits_is_refused(tmp_path):
    """After load() Pillow holds 8 bits and the pixels may have been edited: re-reading the file could undo
    the edits, so the image is refused (a TIFF keeps its BitsPerSample tag, a PNG file its IHDR);
    convert() says 8 bits on purpose."""
    for name, data in (("deep.png", png16(RGB16)), ("deep.tif", tiff16(RGB16, photometric="rgb"))):
        image = Image.open(write(tmp_path, name, data))
        image.load()
        with pytest.raises(tricodec.EncodeError, match="already loaded it at 8 bits"):
            tricodec.encode(image, device="cpu")
        assert tricodec.read_header(tricodec.encode(image.convert("RGB"), device="cpu")).mode == "RGB"


def test_hostile_16bit_tiff_is_refused_before_allocating(tmp_path):
    """A 1 KB deflate TIFF whose IFD claims 30000x4000 RGB16 (720 MB): tifffile would allocate the array
    before finding the strips missing; the file's size cannot hold that many samples."""
    tifffile = pytest.importorskip("tifffile")
    data = bytearray(tiff16(np.zeros((64, 64, 3), np.uint16), photometric="rgb", compression="zlib"))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        tags = tif.pages[0].tags
        offsets = tags["ImageWidth"].valueoffset, tags["ImageLength"].valueoffset
        kinds = tags["ImageWidth"].dtype, tags["ImageLength"].dtype
    for offset, kind, value in zip(offsets, kinds, (30000, 4000)):
        struct.pack_into("<H" if int(kind) == 3 else "<I", data, offset, value)
    with pytest.raises(tricodec.EncodeError, match="cannot hold 4000x30000x3"):
        read_image(write(tmp_path, "huge.tif", bytes(data)))


def test_grey_alpha_arrays():
    """uint8 (H, W, 2) is LA (it used to be refused); uint16 (H, W, 2) is LA;16 (it was refused too), kept
    whole (tests/test_deep_la.py)."""
    la = (RGB16[:, :, :2] >> 8).astype(np.uint8)
    data = tricodec.encode(la, device="cpu")
    assert tricodec.read_header(data).mode == "LA"
    assert np.array_equal(tricodec.decode_array(data, device="cpu"), la)
    data = tricodec.encode(RGB16[:, :, :2], device="cpu")
    assert tricodec.read_header(data).mode == "LA;16"
    back = tricodec.decode_array(data, device="cpu")
    assert back.dtype == np.uint16 and np.array_equal(back, RGB16[:, :, :2])
