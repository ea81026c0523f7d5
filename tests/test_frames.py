"""Multi-frame images (issue #14 item 2): APNG and multi-page TIFF as frames of one .tric file, through
the API (encode_frames / decode_frames) and the CLI; frame timing, loop, disposal, blending and page
metadata kept; what cannot be written back refused. Every file here is made by the test."""
import importlib.util
import io
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import tricodec
from tricodec import container, frames
from tricodec.cli.main import app

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("tricodec_conformance_frames", HERE.parent / "perf" / "conformance.py")
conf = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = conf
_spec.loader.exec_module(conf)

runner = CliRunner()
RNG = np.random.default_rng(14)


def _rgba(i: int, h: int = 12, w: int = 16) -> Image.Image:
    arr = np.random.default_rng(i).integers(0, 256, (h, w, 4), dtype=np.uint8)
    arr[..., 3] = np.where(arr[..., 3] > 60, 255, arr[..., 3])
    return Image.fromarray(arr)


def _apng(path: Path, **kw) -> Path:
    images = [_rgba(i) for i in range(4)]
    images[0].save(path, format="PNG", save_all=True, append_images=images[1:], **kw)
    return path


def _chunk(typ: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body))


def _hidden_default_apng() -> bytes:
    """An APNG whose default image (IDAT) is not part of the animation: the first fcTL follows IDAT."""
    def rows(arr):
        return zlib.compress(b"".join(b"\0" + r.tobytes() for r in arr))
    w, h = 6, 4
    default = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    f1 = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
    f2 = RNG.integers(0, 256, (2, 3, 3), dtype=np.uint8)
    fctl = lambda seq, fw, fh, x, y, num, den, d, b: _chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, fw, fh, x, y, num, den, d, b))
    return b"".join([b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)),
                     _chunk(b"acTL", struct.pack(">II", 2, 7)), _chunk(b"gAMA", struct.pack(">I", 45455)),
                     _chunk(b"IDAT", rows(default)),
                     fctl(0, w, h, 0, 0, 3, 100, 0, 0), _chunk(b"fdAT", struct.pack(">I", 1) + rows(f1)),
                     fctl(2, 3, 2, 2, 1, 7, 0, 1, 1), _chunk(b"fdAT", struct.pack(">I", 3) + rows(f2)),
                     _chunk(b"IEND", b"")])


def _cli(tmp_path, src: Path, *decode_args) -> tuple:
    packed, out = tmp_path / "packed", tmp_path / "out"
    r = runner.invoke(app, ["encode", str(src), str(packed)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["decode", str(packed), str(out), *decode_args])
    assert r.exit_code == 0, r.output
    (written,) = [p for p in out.rglob("*") if p.is_file()]
    return written, next(packed.rglob("*.tric"))


def test_apng_round_trips_through_api_with_its_timing(tmp_path):
    path = _apng(tmp_path / "a.png", duration=[40, 80, 120, 160], loop=3, disposal=[0, 1, 2, 0], blend=[0, 1, 1, 0])
    with pytest.raises(tricodec.EncodeError, match="encode_frames"):
        tricodec.encode(Image.open(path))            # the single-image API says where frames go
    data = tricodec.encode_frames(Image.open(path))
    with pytest.raises(tricodec.DecodeError, match="decode_frames"):
        tricodec.decode(data)
    got = list(tricodec.decode_frames(data))
    want = frames.read_frames(path)
    assert [f.timing for f in got] == [f.timing for f in want]
    assert [f.timing["duration"] for f in got] == [40, 80, 120, 160]
    assert [f.timing["disposal"] for f in got] == [0, 1, 2, 0] and [f.timing["blend"] for f in got] == [0, 1, 1, 0]
    for g, w in zip(got, want):
        assert g.image.mode == w.image.mode and g.image.tobytes() == w.image.tobytes()
    assert frames.decode_all(data).info == {"num_plays": struct.pack("<I", 3)}


def test_apng_round_trips_through_the_cli(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    path = _apng(src / "a.png", duration=[40, 80, 120, 160], loop=0, disposal=[1, 0, 2, 1], blend=[0, 1, 0, 1])
    out, tric = _cli(tmp_path, src)
    assert out.name == "a.png" and conf.sequence_lost(path.read_bytes(), out.read_bytes()) is None
    assert frames.same_frames(frames.read_frames(out), frames.read_frames(path))   # the raw frames too
    info = runner.invoke(app, ["info", str(tric), "--json"])
    assert info.exit_code == 0 and '"frames": 4' in info.stdout and '"kind": "APNG"' in info.stdout
    r = runner.invoke(app, ["verify", str(tmp_path / "packed"), str(src)])
    assert r.exit_code == 0, r.output


def test_apng_with_a_default_image_outside_the_animation(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "h.png").write_bytes(_hidden_default_apng())
    fr = frames.read_frames(src / "h.png")
    assert [f.timing.get("hidden", False) for f in fr] == [True, False, False]
    assert fr.frames[2].timing == {"duration": 70.0, "delay": (7, 0), "offset": (2, 1), "disposal": 1, "blend": 1}
    out, _ = _cli(tmp_path, src)
    back = frames.read_frames(out)
    assert frames.same_frames(back, fr)                  # hidden default, offsets, delays, gAMA on every frame
    assert back.frames[1].image.info["gamma"] == 0.45455
    assert conf.sequence_lost((src / "h.png").read_bytes(), out.read_bytes()) is None


def test_16bit_apng_keeps_its_depth(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "d.png").write_bytes((HERE / "conformance_fixtures" / "apng_mode_16bit.png").read_bytes())
    fr = frames.read_frames(src / "d.png")
    assert all(isinstance(f.image, np.ndarray) and f.image.dtype == np.uint16 for f in fr)
    out, _ = _cli(tmp_path, src)
    back = frames.read_frames(out)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(back, fr)) and len(back) == len(fr) == 3


def _tiff_pages(path: Path) -> Path:
    pages = [Image.fromarray(RNG.integers(0, 256, (9, 11, 3), dtype=np.uint8)),
             Image.fromarray(RNG.integers(0, 256, (7, 5), dtype=np.uint8)),
             Image.fromarray(RNG.integers(0, 256, (6, 8, 4), dtype=np.uint8), "RGBA").convert("CMYK"),
             Image.fromarray(RNG.integers(0, 65536, (5, 6), dtype=np.uint16))]
    from PIL import TiffImagePlugin
    with TiffImagePlugin.AppendingTiffWriter(open(path, "w+b"), new=True) as tf:
        for i, page in enumerate(pages):   # each page with its own resolution, one with an ICC profile
            buf = io.BytesIO()
            kw = {"icc_profile": b"\0\0\0\x80" + bytes(124)} if i == 2 else {}
            page.save(buf, format="TIFF", dpi=(72 + i, 72 + i), **kw)
            tf.write(buf.getvalue())
            tf.newFrame()
    return path


def test_multipage_tiff_round_trips_with_page_metadata(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    path = _tiff_pages(src / "p.tif")
    fr = frames.read_frames(path)
    assert [f.image.mode for f in fr] == ["RGB", "L", "CMYK", "I;16"]
    back = list(tricodec.decode_frames(tricodec.encode_frames(path)))
    assert [f.image.info.get("dpi") for f in back] == [(72, 72), (73, 73), (74, 74), (75, 75)]
    assert back[2].image.info["icc_profile"] == b"\0\0\0\x80" + bytes(124)
    out, _ = _cli(tmp_path, src)
    assert out.name == "p.tif"
    assert conf.sequence_lost(path.read_bytes(), out.read_bytes()) is None
    assert frames.same_frames(frames.read_frames(out), fr)


def test_what_cannot_be_written_back_is_refused_by_encode(tmp_path):
    """Palette pages of 2 colours (tests/conformance_fixtures/multipage.tiff): Pillow's TIFF writer pads
    a palette to 256 entries. The CLI refuses to encode what its decode could not write back; the API
    keeps the frames."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "pal.tiff").write_bytes((HERE / "conformance_fixtures" / "multipage.tiff").read_bytes())
    r = runner.invoke(app, ["encode", str(src), str(tmp_path / "packed")])
    assert r.exit_code == 1 and "could not write it back" in r.output and "P image" in r.output
    assert not (tmp_path / "packed" / "pal.tiff.tric").exists()
    want = frames.read_frames(src / "pal.tiff")
    back = list(tricodec.decode_frames(tricodec.encode_frames(src / "pal.tiff")))
    assert [f.image.tobytes() for f in back] == [f.image.tobytes() for f in want] and len(back) == 3


def test_frames_decode_only_to_their_own_kind(tmp_path):
    data = tricodec.encode_frames(_apng(tmp_path / "a.png"))
    (tmp_path / "a.png.tric").write_bytes(data)
    r = runner.invoke(app, ["decode", str(tmp_path / "a.png.tric"), str(tmp_path / "o"), "--format", "npy"])
    assert r.exit_code == 1 and "cannot hold its frames" in r.output
    r = runner.invoke(app, ["decode", str(tmp_path / "a.png.tric"), str(tmp_path / "x.tiff")])
    assert r.exit_code == 1 and "cannot hold its frames" in r.output and not (tmp_path / "x.tiff").exists()


def test_single_image_files_are_one_frame():
    image = _rgba(1)
    (frame,) = list(tricodec.decode_frames(tricodec.encode(image)))
    assert frame.image.tobytes() == image.tobytes() and frame.params == {} and frame.timing == {}


def test_corrupt_apng_is_refused():
    data = bytearray(_hidden_default_apng())
    at = data.index(b"fdAT") + 4
    data[at:at + 4] = struct.pack(">I", 9)           # fdAT sequence number out of order
    at -= 8
    n = struct.unpack(">I", data[at:at + 4])[0]
    data[at + 8 + n:at + 12 + n] = struct.pack(">I", zlib.crc32(bytes(data[at + 4:at + 8 + n])))
    with pytest.raises(tricodec.EncodeError, match="fdAT"):
        frames.read_frames(bytes(data))


def test_hostile_frames_files_are_decode_errors(tmp_path):
    data = tricodec.encode_frames(_apng(tmp_path / "a.png"))
    head, payload = data[:container.HEADER_SIZE + 5], data[container.HEADER_SIZE + 5:]

    def rewrap(p: bytes) -> bytes:    # a valid CRC around a changed FRAMES section
        h = container.Header(width=16, height=12, channels=4, bit_depth=8, mode="RGBA", flags=container.FLAG_FRAMES)
        return container.pack(h, [(container.SEC_FRAMES, p)], zlib.crc32(p))

    assert rewrap(payload) == data
    cases = {
        "truncated": data[:-7],
        "bad crc": data[:-1] + bytes([data[-1] ^ 1]),
        "unknown kind": rewrap(b"\x04GIF!" + payload[5:]),
        "count too large": rewrap(payload.replace(struct.pack("<I", 4), struct.pack("<I", 1 << 30), 1)),
        "trailing": rewrap(payload + b"\0"),
        "no frames": rewrap(payload[:payload.index(struct.pack("<I", 4))] + struct.pack("<I", 0)),
        "old flag combination": data[:5] + bytes([3]) + data[6:],
    }
    for what, bad in cases.items():
        with pytest.raises(tricodec.DecodeError):
            list(tricodec.decode_frames(bad))
        assert what


def test_older_decoders_refuse_frames_files_by_their_flag():
    """A decoder from before frames files rejects unknown flags: the FRAMES flag is a new bit."""
    assert container.FLAG_FRAMES & 1 == 0 and container.FLAG_FRAMES not in (0, container.FLAG_FALLBACK)


def test_frames_golden_keeps_decoding_and_the_encoder_still_writes_it():
    """tests/golden/frames/v1_apng_4f.tric (tools/make_golden.py): never regenerate it to make this pass."""
    folder = HERE / "golden" / "frames"
    data = (folder / "v1_apng_4f.tric").read_bytes()
    want = frames.read_frames(folder / "v1_apng_4f.png")
    assert [f.timing["offset"] for f in want] == [(0, 0), (7, 9), (0, 0), (0, 0)]
    assert frames.same_frames(frames.decode_all(data, device="cpu"), want)
    _, kind, _, parts = frames.read_frames_info(data)
    model = tricodec.read_header(bytes(parts[0][1])).model_name
    assert kind == "APNG" and model and tricodec.encode_frames(folder / "v1_apng_4f.png", device="cpu", model=model) == data


def _gif() -> bytes:
    rng = np.random.default_rng(3)
    ims = []
    for i in range(3):   # each frame its own palette (local colour tables), one of another size
        im = Image.fromarray(rng.integers(0, 6 + i, (20 + i, 24), dtype=np.uint8), "P")
        im.putpalette([int(v) for v in rng.integers(0, 256, 3 * (6 + i))])
        ims.append(im)
    buf = io.BytesIO()
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=[70, 80, 90], loop=4,
                disposal=[1, 2, 0], transparency=2, comment=b"made by test_frames")
    return buf.getvalue()


def test_gif_round_trips_byte_for_byte(tmp_path):
    """Raw GIF frames (colour indices, local and global tables, the extension blocks: delays, disposal,
    transparency, loop, comment, verbatim): a GIF Pillow wrote comes back as the same bytes."""
    data = _gif()
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.gif").write_bytes(data)
    fr = frames.read_frames(data)
    assert fr.kind == "GIF" and len(fr) == 3 and all(f.image.mode == "P" for f in fr)
    back = list(tricodec.decode_frames(tricodec.encode_frames(data)))
    assert [f.image.tobytes() for f in back] == [f.image.tobytes() for f in fr]
    out, _ = _cli(tmp_path, src)
    assert out.name == "a.gif" and out.read_bytes() == data
    assert conf.sequence_lost(data, out.read_bytes()) is None


def test_gif_small_interlaced_frame_keeps_its_row_order(tmp_path):
    """Pillow interlaces only frames of 16 pixels and more: a small interlaced frame is re-ordered by
    tricodec before Pillow's LZW coder sees it."""
    data = bytearray(_gif())
    head, parts, _ = frames._gif_parts(bytes(data))
    at = data.index(b"\x2c" + parts[2][1])               # the third frame's image descriptor
    data[at + 9] |= 0x40                                 # declared interlaced: its rows are now read in that order
    small = bytes(data)
    fr = frames.read_frames(small)
    rows = np.asarray(frames.read_frames(_gif()).frames[2].image)
    assert np.array_equal(np.asarray(fr.frames[2].image)[frames._interlace_order(22)], rows)
    buf = io.BytesIO()
    frames.write_frames(frames.decode_all(frames.encode_frames(fr)), buf)
    assert buf.getvalue() == small


def test_gif_that_cannot_be_kept_is_refused():
    data = _gif()
    with pytest.raises(tricodec.EncodeError, match="after its trailer"):
        frames.read_frames(data + b"junk")
    bomb = bytearray(data)
    _, parts, _ = frames._gif_parts(data)
    at = bomb.index(b"\x2c" + parts[1][1])
    bomb[at + 1:at + 5] = struct.pack("<HH", 65535, 65535)   # a frame at the far corner of a 4-gigapixel canvas
    with pytest.raises(tricodec.EncodeError, match="exceeds the limit"):
        frames.read_frames(bytes(bomb))


def test_ico_sizes_are_frames_byte_for_byte(tmp_path):
    """Every size of an ICO (32-bit bitmaps with their AND masks: tests/conformance_fixtures/python.ico)
    is a frame; the icon comes back byte for byte, through the API and the CLI."""
    data = (HERE / "conformance_fixtures" / "python.ico").read_bytes()
    with pytest.raises(tricodec.EncodeError, match="3 sizes"):
        tricodec.encode(Image.open(io.BytesIO(data)))
    fr = frames.read_frames(data)
    assert fr.kind == "ICO" and [f.image.size for f in fr] == [(16, 16), (32, 32), (48, 48)]
    back = list(tricodec.decode_frames(tricodec.encode_frames(data)))
    assert [f.image.tobytes() for f in back] == [f.image.tobytes() for f in fr]
    src = tmp_path / "src"
    src.mkdir()
    (src / "p.ico").write_bytes(data)
    out, _ = _cli(tmp_path, src)
    assert out.name == "p.ico" and out.read_bytes() == data


@pytest.mark.parametrize("bitmap_format", ["png", "bmp"])
def test_ico_of_png_or_bitmap_images_round_trips(tmp_path, bitmap_format):
    sizes = [(16, 16), (24, 24), (32, 32)]
    images = [_rgba(i, *size) for i, size in enumerate(sizes)]
    src = tmp_path / "src"
    src.mkdir()
    images[-1].save(src / "i.ico", sizes=sizes, append_images=images[:-1], bitmap_format=bitmap_format)
    data = (src / "i.ico").read_bytes()
    fr = frames.read_frames(data)
    assert len(fr) == 3 and all(("png" in f.params) == (bitmap_format == "png") for f in fr)
    out, _ = _cli(tmp_path, src)
    assert conf.sequence_lost(data, out.read_bytes()) is None
    assert frames.same_frames(frames.read_frames(out.read_bytes()), fr)
    if bitmap_format == "bmp":
        assert out.read_bytes() == data


def test_ico_palette_bitmaps_keep_their_indices():
    """1-, 4- and 8-bit icon bitmaps: colour indices and palette (BGRX entries) kept, bits packed back."""
    def dib(bits: int, w: int, h: int, idx: np.ndarray) -> bytes:
        colours = 1 << bits
        pal = bytes(np.random.default_rng(bits).integers(0, 256, 4 * colours, dtype=np.uint8))
        packed = np.packbits(((idx[:, :, None] >> np.arange(bits - 1, -1, -1)) & 1).reshape(h, -1).astype(np.uint8), axis=1) \
            if bits < 8 else idx.astype(np.uint8)
        stride = (w * bits + 31) // 32 * 4
        rows = np.zeros((h, stride), np.uint8)
        rows[:, :packed.shape[1]] = packed
        mstride = (w + 31) // 32 * 4
        mask = np.random.default_rng(bits + 1).integers(0, 256, (h, mstride), dtype=np.uint8)
        head = struct.pack("<IiiHHIIiiII", 40, w, 2 * h, 1, bits, 0, 0, 0, 0, 0, 0)
        return head + pal + rows[::-1].tobytes() + mask.tobytes()
    blobs, entries = [], []
    for bits, (w, h) in [(1, (13, 7)), (4, (9, 5)), (8, (6, 6))]:
        idx = np.random.default_rng(w).integers(0, 1 << bits, (h, w))
        blobs.append((dib(bits, w, h, idx), idx, bits, w, h))
    offset = 6 + 16 * len(blobs)
    head = struct.pack("<HHH", 0, 1, len(blobs))
    for blob, _, bits, w, h in blobs:
        head += struct.pack("<BBBBHHII", w, h, 0, 0, 1, bits, len(blob), offset)
        offset += len(blob)
    data = head + b"".join(b[0] for b in blobs)
    fr = frames.read_frames(data)
    for f, (_, idx, bits, w, h) in zip(fr, blobs):
        assert f.image.mode == "P" and np.array_equal(np.asarray(f.image), idx)
    buf = io.BytesIO()
    frames.write_frames(frames.decode_all(frames.encode_frames(fr)), buf)
    assert buf.getvalue() == data


def test_format_detection_does_not_depend_on_the_files_opened_before(tmp_path):
    """Pillow 11+ loads a plugin by suffix on open and tries formats in the order they were loaded: after
    a .tga was opened, a multi-size .ico (its first entry 256x256 with more than 64 KB of data) passes for
    a TGA. tricodec tries the format a file's suffix names first (pixels.open_image), so the icon is read
    as the icon it is, whatever the program opened before."""
    import subprocess
    arr = np.random.default_rng(0).integers(0, 4, (256, 256, 4), dtype=np.uint8)
    arr[..., 3] = 255
    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA").save(buf, format="ICO", sizes=[(256, 256), (16, 16)],
                                      append_images=[Image.new("RGBA", (16, 16), (1, 2, 3, 255))])
    data = bytearray(buf.getvalue())
    entries = sorted((data[6 + 16 * i:22 + 16 * i] for i in range(2)), key=lambda e: -(e[0] or 256))
    for i, e in enumerate(entries):       # the big entry first, planes 1: as many icon writers do
        e[4:6] = b"\x01\x00"
        data[6 + 16 * i:22 + 16 * i] = e
    ico = tmp_path / "big.ico"
    ico.write_bytes(bytes(data))
    tga = HERE / "conformance_fixtures" / "cross_scan_line_truncated.tga"
    code = ("import sys; from PIL import Image; Image.open(sys.argv[1])\n"   # a .tga first
            "import tricodec; from tricodec import frames, pixels\n"
            "fr = frames.read_frames(sys.argv[2])\n"
            "print(pixels.open_image(sys.argv[2]).format, frames.is_multi_frame_file(sys.argv[2]), fr.kind, len(fr))\n")
    out = subprocess.run([sys.executable, "-c", code, str(tga), str(ico)], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["ICO", "True", "ICO", "2"], out.stderr[-2000:]


def _icns(tmp_path) -> bytes:
    """An ICNS made by Pillow (PNG images and a TOC), plus a 16x16 RLE-packed RGB image (kept verbatim),
    its 8-bit mask (a frame) and a chunk of a kind tricodec does not know (kept verbatim)."""
    im = _rgba(5, 64, 64).resize((128, 128))
    im.save(tmp_path / "made.icns", sizes=[(16, 16), (32, 32), (64, 64), (128, 128)])
    data = (tmp_path / "made.icns").read_bytes()
    rng = np.random.default_rng(9)
    mask = bytes(rng.integers(0, 256, 256, dtype=np.uint8))
    rgb = rng.integers(0, 256, (3, 256), dtype=np.uint8)       # 16x16 RGB, Apple's RLE: literal runs of 128
    rle = b"".join(b"\x7f" + bytes(ch[k:k + 128]) for ch in rgb for k in (0, 128))
    chunks = frames._icns_chunks(data) + [(b"is32", rle), (b"s8mk", mask), (b"name", b"hello")]
    chunks = [(t, frames._icns_toc(chunks) if t == b"TOC " else d) for t, d in chunks]   # a TOC that is right
    body = b"".join(t + struct.pack(">I", 8 + len(d)) + d for t, d in chunks)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def test_icns_sizes_masks_and_other_chunks_round_trip(tmp_path):
    data = _icns(tmp_path)
    with pytest.raises(tricodec.EncodeError, match="encode_frames"):
        tricodec.encode(Image.open(io.BytesIO(data)))
    fr = frames.read_frames(data)
    assert fr.kind == "ICNS" and [f.params["type"] for f in fr][-1] == b"s8mk"
    assert fr.frames[-1].image.mode == "L" and fr.info["layout"].endswith(b"is32Vs8mkMnameV")
    src = tmp_path / "src"
    src.mkdir()
    (src / "i.icns").write_bytes(data)
    out, _ = _cli(tmp_path, src)
    back = out.read_bytes()
    assert out.name == "i.icns" and conf.sequence_lost(data, back) is None
    assert frames.same_frames(frames.read_frames(back), fr)
    chunks = frames._icns_chunks(back)
    assert chunks[-1] == (b"name", b"hello") and chunks[-2][0] == b"s8mk"
    assert chunks[0][0] == b"TOC " and chunks[0][1] == frames._icns_toc(chunks)   # rebuilt for the new lengths
