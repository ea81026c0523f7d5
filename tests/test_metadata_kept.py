"""Metadata that used to be lost or that made the CLI fail on a file it had encoded (issue #11, last
classes of the conformance run): 16-bit colour PNG chunks, PNG chunks Pillow does not interpret (sBIT,
bKGD, tIME ...), an EXIF resolution too large for PNG's pHYs, EXIF written into a TIFF. Every file here
is made by the test."""
import io
import struct
import zlib

import numpy as np
import png
import pytest
from PIL import Image
from typer.testing import CliRunner

import tricodec
from tricodec.cli.main import app
from tricodec.errors import WriteError
from tricodec.metadata import DeepArray
from tricodec.pixels import read_image, write_image

runner = CliRunner()
RNG = np.random.default_rng(11)
RGB16 = RNG.integers(0, 65536, (6, 7, 3), dtype=np.uint16)
RGBA16 = RNG.integers(0, 65536, (6, 7, 4), dtype=np.uint16)


def _chunk(typ: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body))


def _png(arr: np.ndarray, colour: int, depth: int, before=(), after=()) -> bytes:
    """A PNG (no filter) with ``before`` chunks ahead of IDAT and ``after`` chunks behind it."""
    h = arr.shape[0]
    raw = arr.astype(">u2" if depth == 16 else np.uint8).reshape(h, -1).view(np.uint8)
    rows = b"".join(b"\0" + r.tobytes() for r in raw)
    return b"".join([b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", arr.shape[1], h, depth, colour, 0, 0, 0))]
                    + [_chunk(t, d) for t, d in before] + [_chunk(b"IDAT", zlib.compress(rows))]
                    + [_chunk(t, d) for t, d in after] + [_chunk(b"IEND", b"")])


def _chunks(data: bytes) -> dict:
    """{type: [data, ...]} of a PNG file."""
    out, pos = {}, 8
    while pos + 8 <= len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        out.setdefault(typ, []).append(data[pos + 8:pos + 8 + n])
        pos += 12 + n
    return out


def _png16_samples(data: bytes) -> np.ndarray:
    w, h, rows, info = png.Reader(bytes=data).read()   # raw samples: no sBIT rescaling
    return np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(h, w, info["planes"])


def _cli_round_trip(tmp_path, name: str, data: bytes) -> bytes:
    src, packed, out = tmp_path / "src", tmp_path / "packed", tmp_path / "out"
    src.mkdir()
    (src / name).write_bytes(data)
    r = runner.invoke(app, ["encode", str(src), str(packed)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["decode", str(packed), str(out)])
    assert r.exit_code == 0, r.output
    (written,) = list(out.iterdir())
    return written.read_bytes()


GAMA = struct.pack(">I", 45455)
CHRM = struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)
PHYS = struct.pack(">IIB", 3780, 3780, 1)
TIME = bytes([7, 234, 11, 30, 0, 20, 0])
EXIF = b"MM\0*\0\0\0\x08\0\x01\x01\x0f\0\x02\0\0\0\x04Cam\0\0\0\0\0"   # IFD0: Make = "Cam"
ICC = b"\0\0\0\x80" + b"not a real profile".ljust(124, b"\0")


@pytest.mark.parametrize("arr", [RGB16, RGBA16], ids=["rgb16", "rgba16"])
def test_16bit_colour_png_keeps_its_chunks_through_api_and_cli(tmp_path, arr):
    """gAMA, cHRM, pHYs, sBIT, bKGD, tIME were dropped silently; tRNS, iCCP, eXIf and text refused."""
    rgb = arr.shape[2] == 3
    before = [(b"iCCP", b"icc\0\0" + zlib.compress(ICC)), (b"gAMA", GAMA), (b"cHRM", CHRM),
              (b"sBIT", bytes([12] * arr.shape[2])), (b"pHYs", PHYS),
              (b"bKGD", struct.pack(">3H", 1, 2, 3)), (b"tIME", TIME), (b"tEXt", b"Title\0sixteen")]
    if rgb:
        before.append((b"tRNS", struct.pack(">3H", *arr[0, 0])))
    after = [(b"eXIf", EXIF), (b"iTXt", b"Late\0\0\0\0\0caf\xc3\xa9")]
    data = _png(arr, 2 if rgb else 6, 16, before, after)
    path = tmp_path / "deep.png"
    path.write_bytes(data)

    # API: the decoded array carries what Pillow's reader says of the file (and the chunks it ignores)
    source = Image.open(path)
    source.load()
    back = tricodec.decode_any(tricodec.encode(Image.open(path), device="cpu"))
    assert isinstance(back, DeepArray) and np.array_equal(back, arr)
    for key in ("icc_profile", "gamma", "chromaticity", "dpi", "transparency", "exif"):
        assert back.info.get(key) == source.info.get(key), key
    assert back.text == source.text == {"Title": "sixteen", "Late": "caf\u00e9"}
    assert back.info["png_chunks"] == {b"sBIT": before[3][1], b"bKGD": before[5][1], b"tIME": TIME}
    assert type(np.asarray(back)) is np.ndarray

    # CLI: the decoded file has every chunk's data, and the samples
    out = _cli_round_trip(tmp_path, "deep.png", data)
    assert np.array_equal(_png16_samples(out), arr)
    got, want = _chunks(out), _chunks(data)
    for typ in (b"gAMA", b"cHRM", b"sBIT", b"pHYs", b"bKGD", b"tIME", b"eXIf", b"tRNS"):
        assert got.get(typ) == want.get(typ), typ
    assert zlib.decompress(got[b"iCCP"][0].split(b"\0", 1)[1][1:]) == ICC
    decoded = Image.open(io.BytesIO(out))
    decoded.load()
    assert decoded.text == source.text


def test_8bit_png_keeps_the_chunks_pillow_ignores(tmp_path):
    """sBIT, bKGD, tIME, oFFs of an 8-bit PNG: Pillow's reader ignores them and its writer drops them."""
    arr = RNG.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    extra = [(b"sBIT", b"\x05\x06\x05"), (b"bKGD", struct.pack(">3H", 10, 20, 30)), (b"tIME", TIME),
             (b"oFFs", struct.pack(">iiB", -3, 4, 0))]
    data = _png(arr, 2, 8, extra)
    out = _cli_round_trip(tmp_path, "p.png", data)
    got = _chunks(out)
    for typ, body in extra:
        assert got.get(typ) == [body], typ
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out))), arr)
    # and the order PNG requires: sBIT before PLTE/IDAT, bKGD before IDAT
    order = list(_chunks(out))
    assert order.index(b"sBIT") < order.index(b"IDAT") and order.index(b"bKGD") < order.index(b"IDAT")


def test_bkgd_of_a_low_bit_grey_png_is_scaled_with_its_samples(tmp_path):
    """Pillow reads 2-bit grey as L scaled to 0..255: the background level (2 of 0..3) is scaled alike."""
    arr = RNG.integers(0, 4, (4, 8), dtype=np.uint8)
    packed = np.packbits(np.unpackbits(arr[:, :, None], axis=2)[:, :, 6:].reshape(4, -1), axis=1)
    rows = b"".join(b"\0" + r.tobytes() for r in packed)
    data = b"".join([b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 4, 2, 0, 0, 0, 0)),
                     _chunk(b"bKGD", struct.pack(">H", 2)), _chunk(b"IDAT", zlib.compress(rows)), _chunk(b"IEND", b"")])
    out = _cli_round_trip(tmp_path, "g2.png", data)
    assert _chunks(out)[b"bKGD"] == [struct.pack(">H", 170)]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out))), arr * 85)


def _jpeg_with_exif(exif: bytes, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (8, 8), (10, 20, 30, 40)[:len(mode)]).save(buf, format="JPEG", exif=exif)
    return buf.getvalue()


def _exif(entries: dict, ifd1: bool = False) -> bytes:
    """An EXIF block (big-endian) with IFD0 ``entries`` ({tag: (type, count, 4-byte value)}) and, with
    ``ifd1``, a thumbnail directory (IFD1) holding one Compression tag."""
    n = len(entries)
    next_ifd = 8 + 2 + 12 * n + 4 if ifd1 else 0
    body = struct.pack(">H", n) + b"".join(struct.pack(">HHI", t, typ, c) + v for t, (typ, c, v) in sorted(entries.items()))
    body += struct.pack(">I", next_ifd)
    if ifd1:
        body += struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0103, 3, 1, 6, 0) + struct.pack(">I", 0)
    return b"Exif\0\0MM\0*\0\0\0\x08" + body


def test_exif_resolution_too_large_for_png_round_trips_through_the_cli(tmp_path):
    """Pillow derives dpi 4294967295 from the EXIF (no JFIF density): its PNG writer overflowed on the
    pHYs chunk, so the CLI could not decode a file it had encoded. The EXIF, written verbatim, holds it."""
    # XResolution as a LONG (Pillow's reader takes it as a number of dots), ResolutionUnit 2 (inch)
    exif = _exif({0x011A: (4, 1, struct.pack(">I", 0xFFFFFFFF)), 0x0128: (3, 1, struct.pack(">HH", 2, 0))})
    data = _jpeg_with_exif(exif)
    source = Image.open(io.BytesIO(data))
    assert source.info["dpi"][0] == 4294967295
    out = Image.open(io.BytesIO(_cli_round_trip(tmp_path, "big.jpg", data)))
    assert out.format == "PNG" and out.info["exif"] == source.info["exif"]
    assert np.array_equal(np.asarray(out), np.asarray(source))
    assert "dpi" not in out.info          # no pHYs: it cannot hold that resolution, the EXIF does


def test_resolution_no_output_can_hold_is_refused_by_encode_not_decode(tmp_path):
    """Without an EXIF holding it, a resolution PNG cannot hold is refused when the CLI encodes (the API
    keeps it): never a .tric file the CLI cannot decode."""
    image = Image.new("RGB", (4, 4), (1, 2, 3))
    image.save(tmp_path / "huge.tif", dpi=(4294967295, 4294967295))
    r = runner.invoke(app, ["encode", str(tmp_path / "huge.tif"), str(tmp_path / "huge.tric")])
    assert r.exit_code == 1 and "could not write it back" in r.output and "dpi" in r.output
    assert not (tmp_path / "huge.tric").exists()
    back = tricodec.decode(tricodec.encode(read_image(tmp_path / "huge.tif")))
    assert back.info["dpi"] == Image.open(tmp_path / "huge.tif").info["dpi"]
    with pytest.raises(WriteError, match="pHYs"):
        write_image(back, io.BytesIO(), ".png")


def test_cmyk_jpeg_exif_thumbnail_is_refused_not_dropped(tmp_path):
    """A CMYK image is written as TIFF, whose writer kept the EXIF's tags but silently dropped its
    thumbnail directory (IFD1): now the CLI refuses to encode what it could not write back."""
    exif = _exif({0x010F: (2, 4, b"Cam\0")}, ifd1=True)
    assert Image.open(io.BytesIO(_jpeg_with_exif(exif, "CMYK"))).getexif().get_ifd(-1)
    (tmp_path / "c.jpg").write_bytes(_jpeg_with_exif(exif, "CMYK"))
    r = runner.invoke(app, ["encode", str(tmp_path / "c.jpg"), str(tmp_path / "c.tric")])
    assert r.exit_code == 1 and "thumbnail" in r.output and not (tmp_path / "c.tric").exists()


def test_cmyk_jpeg_exif_directories_are_kept_in_the_tiff(tmp_path):
    """Without a thumbnail every EXIF tag (first directory, Exif and GPS directories) reads back from
    the TIFF with its value; the writer checks it."""
    ex = Image.Exif()
    ex[0x010F] = "Cam"
    ex[0x0131] = "tricodec test"
    ex.get_ifd(0x8769)[0x9003] = "2026:11:30 00:00:00"
    ex.get_ifd(0x8825)[0x0001] = "N"
    data = _jpeg_with_exif(ex.tobytes(), "CMYK")
    out = Image.open(io.BytesIO(_cli_round_trip(tmp_path, "c.jpg", data)))
    assert out.format == "TIFF" and out.mode == "CMYK"
    got = out.getexif()
    assert got[0x010F] == "Cam" and got[0x0131] == "tricodec test"
    assert got.get_ifd(0x8769)[0x9003] == "2026:11:30 00:00:00" and got.get_ifd(0x8825)[0x0001] == "N"


def test_deep_array_metadata_survives_pickling():
    """Process pools and Ray pickle decoded images: a 16-bit colour array keeps its metadata."""
    import pickle
    data = _png(RGB16, 2, 16, [(b"gAMA", GAMA), (b"tEXt", b"Title\0t")])
    back = tricodec.decode_any(tricodec.encode(Image.open(io.BytesIO(data)), device="cpu"))
    again = pickle.loads(pickle.dumps(back))
    assert isinstance(again, DeepArray) and np.array_equal(again, RGB16)
    assert again.info["gamma"] == 0.45455 and again.text == {"Title": "t"}
