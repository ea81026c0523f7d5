"""Metadata through the CLI: kept as data (never turned into writer options), restored by the CLI's
writers as the API's decode gives it, and refused with a reason where the output format cannot hold it."""
import io
import json
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin, features
from typer.testing import CliRunner

import tricodec
from tricodec import metadata
from tricodec.cli.main import app

from helpers import same_image

runner = CliRunner()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def _rgb(seed: int = 0, size=(12, 10)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _round_trip(tmp_path, name: str, save) -> tuple:
    """Save a source with ``save(path)``, encode and decode it with the CLI: (source, output, meta keys)."""
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    save(src / name)
    r = runner.invoke(app, ["encode", str(src), str(tmp_path / "packed"), "--include", name])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["decode", str(tmp_path / "packed"), str(tmp_path / "out"), "--include", name + ".tric"])
    assert r.exit_code == 0, r.output
    outs = list((tmp_path / "out").glob(name + "*"))
    assert len(outs) == 1
    info = json.loads(runner.invoke(app, ["info", str(tmp_path / "packed" / (name + ".tric")), "--json"]).stdout)
    return Image.open(src / name), Image.open(outs[0]), set(info["metadata"])


@pytest.mark.skipif(not features.check("libtiff"), reason="writing JPEG-compressed TIFF needs libtiff")
def test_tiff_compression_is_not_taken_for_text_or_a_writer_option(tmp_path):
    cmyk = _rgb().convert("CMYK")
    source, out, keys = _round_trip(tmp_path, "c.tif", lambda p: cmyk.save(p, compression="jpeg"))
    assert same_image(out, source) and out.info["compression"] == "raw"   # was written back as lossy JPEG
    assert not any(k.startswith("text:") for k in keys)
    source, out, keys = _round_trip(tmp_path, "r.tif", lambda p: _rgb().save(p, compression="jpeg"))
    assert out.format == "PNG" and same_image(out, source) and out.text == {}  # no invented text chunk


def _packbits_big_endian_tiff(path, image) -> None:
    """A big-endian TIFF with PackBits compression (Pillow writes big-endian TIFF only uncompressed):
    written raw, then its one strip replaced by a PackBits copy appended at the end."""
    buf = io.BytesIO()
    image.save(buf, format="TIFF")
    raw = bytearray(buf.getvalue())
    assert raw[:2] == b"MM"
    ifd = int.from_bytes(raw[4:8], "big")
    entries = {int.from_bytes(raw[ifd + 2 + 12 * i:ifd + 4 + 12 * i], "big"): ifd + 2 + 12 * i
               for i in range(int.from_bytes(raw[ifd:ifd + 2], "big"))}
    offset = int.from_bytes(raw[entries[273] + 8:entries[273] + 12], "big")
    strip = bytes(raw[offset:offset + len(image.tobytes())])
    packed = b"".join(bytes([len(strip[i:i + 128]) - 1]) + strip[i:i + 128] for i in range(0, len(strip), 128))
    raw[entries[259] + 8:entries[259] + 10] = (32773).to_bytes(2, "big")   # Compression: PackBits
    raw[entries[273] + 8:entries[273] + 12] = len(raw).to_bytes(4, "big")  # StripOffsets
    raw[entries[279] + 8:entries[279] + 12] = len(packed).to_bytes(4, "big")  # StripByteCounts
    path.write_bytes(bytes(raw) + packed)


def test_big_endian_16_bit_tiff_keeps_its_mode_and_samples(tmp_path):
    samples = np.random.default_rng(1).integers(0, 65536, (9, 7), dtype=np.uint16).astype(">u2")
    image = Image.frombytes("I;16B", (7, 9), samples.tobytes())
    source, out, _ = _round_trip(tmp_path, "be.tif", lambda p: _packbits_big_endian_tiff(p, image))
    assert source.mode == "I;16B" and source.info["compression"] == "packbits" and same_image(source, image)
    assert same_image(out, source)


def test_xmp_is_written_back(tmp_path):
    _, out, keys = _round_trip(tmp_path, "x.jpg", lambda p: _rgb().save(p, xmp=XMP, quality=95))
    assert "xmp" in keys and out.format == "PNG" and out.info["xmp"] == XMP
    _, out, _ = _round_trip(tmp_path, "c.jpg", lambda p: _rgb().convert("CMYK").save(p, xmp=XMP, quality=95))
    assert out.format == "TIFF" and out.info["xmp"] == XMP


def test_png_text_named_exif_is_text_and_the_exif_stays_exif(tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "TricCam"
    text = PngImagePlugin.PngInfo()
    text.add_text("exif", "just a note")
    text.add_text("compression", "a note too")
    _, out, keys = _round_trip(tmp_path, "e.png", lambda p: _rgb().save(p, pnginfo=text, exif=exif.tobytes()))
    assert {"exif", "text:exif", "text:compression"} <= keys
    assert out.text == {"exif": "just a note", "compression": "a note too"} and out.getexif()[0x010F] == "TricCam"


def test_tiff_dpi_is_kept_and_none_is_invented(tmp_path):
    cmyk = _rgb().convert("CMYK")
    _, out, _ = _round_trip(tmp_path, "d.tif", lambda p: cmyk.save(p, dpi=(72, 72)))
    assert out.format == "TIFF" and out.info["dpi"] == (72, 72) and out.tag_v2[296] == 2
    _, out, keys = _round_trip(tmp_path, "n.tif", lambda p: _rgb().save(p))
    assert "dpi" not in keys and "dpi" not in out.info    # no pHYs made up from Pillow's 1-dpi default


@pytest.mark.parametrize("phys", [(11811, 11811, 1), (3, 2, 0)])
def test_png_colour_and_resolution_chunks_are_kept(tmp_path, phys):
    chunks = PngImagePlugin.PngInfo()
    chunks.add(b"gAMA", (45455).to_bytes(4, "big"))
    chunks.add(b"cHRM", b"".join(v.to_bytes(4, "big") for v in (31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)))
    chunks.add(b"sRGB", b"\x01")
    phys_chunk = phys[0].to_bytes(4, "big") + phys[1].to_bytes(4, "big") + bytes([phys[2]])

    def save(path):  # Pillow writes pHYs only from dpi: put the chunk in by hand, before IDAT
        buf = io.BytesIO()
        _rgb().save(buf, format="PNG", pnginfo=chunks)
        png = buf.getvalue()
        at = png.index(b"IDAT") - 4
        path.write_bytes(png[:at] + len(phys_chunk).to_bytes(4, "big") + b"pHYs" + phys_chunk
                         + zlib.crc32(b"pHYs" + phys_chunk).to_bytes(4, "big") + png[at:])

    source, out, keys = _round_trip(tmp_path, "g.png", save)
    assert {"gamma", "chromaticity", "srgb"} <= keys
    for key in ("gamma", "chromaticity", "srgb", "dpi", "aspect"):
        assert out.info.get(key) == source.info.get(key), key
    assert "dpi" in source.info or "aspect" in source.info


def test_api_decode_then_encode_keeps_every_entry():
    exif = Image.Exif()
    exif[0x010F] = "TricCam"
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("Title", "caf\u00e9")
    chunks.add_itxt("XML:com.adobe.xmp", XMP.decode())
    chunks.add(b"gAMA", (45455).to_bytes(4, "big"))
    buf = io.BytesIO()
    _rgb().save(buf, format="PNG", pnginfo=chunks, exif=exif.tobytes(), dpi=(300, 300))
    once = tricodec.encode(Image.open(io.BytesIO(buf.getvalue())))
    assert tricodec.encode(tricodec.decode(once)) == once


def test_format_that_cannot_hold_the_metadata_is_refused(tmp_path):
    chunks = PngImagePlugin.PngInfo()
    chunks.add(b"gAMA", (45455).to_bytes(4, "big"))
    chunks.add_text("Title", "t")
    _rgb().save(tmp_path / "g.png", pnginfo=chunks)
    runner.invoke(app, ["encode", str(tmp_path / "g.png"), str(tmp_path / "g.tric")])
    r = runner.invoke(app, ["decode", str(tmp_path / "g.tric"), str(tmp_path / "g.tiff")])
    assert r.exit_code == 1 and "gamma" in r.output and "text:Title" in r.output
    assert not (tmp_path / "g.tiff").exists()


def test_files_with_older_or_newer_metadata_keys_still_decode(tmp_path, monkeypatch):
    """Files written before this change carry a TIFF's "compression" as a text entry; newer files may carry
    keys this version does not know. Both decode, and the CLI writes them."""
    old = {"text:compression": b"jpeg", "xmp": XMP, "text:XML:com.adobe.xmp": XMP, "future:key": b"\x00"}
    monkeypatch.setattr(metadata, "collect", lambda image: dict(old))
    cmyk = _rgb().convert("CMYK")
    (tmp_path / "c.tif.tric").write_bytes(tricodec.encode(cmyk))
    (tmp_path / "r.png.tric").write_bytes(tricodec.encode(_rgb()))
    monkeypatch.undo()
    r = runner.invoke(app, ["decode", str(tmp_path), str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    out = Image.open(tmp_path / "out" / "c.tif")
    assert same_image(out, cmyk) and out.info["compression"] == "raw" and out.info["xmp"] == XMP
    out = Image.open(tmp_path / "out" / "r.png")
    assert same_image(out, _rgb()) and out.info["xmp"] == XMP
