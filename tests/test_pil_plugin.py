"""The Pillow plugin, exercised through Pillow's own API (Image.open, img.save, registered_extensions)."""
import io

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import tricodec
from tricodec import pil_plugin

from conftest import FIXTURES
from helpers import photo_like, same_image

RGB = FIXTURES / "photo_rgb_41x34.png"
GRAY = FIXTURES / "photo_gray_37x29.png"


@pytest.fixture(autouse=True, scope="module")
def registered():
    pil_plugin.register()


def _images():
    rgb = Image.open(RGB)
    rgb.load()
    gray = Image.open(GRAY)
    gray.load()
    rgba = Image.fromarray(photo_like(20, 24, 4, seed=1), "RGBA")
    la = rgba.convert("LA")
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 3
    bilevel = gray.convert("1")
    i16 = Image.fromarray((photo_like(11, 7, 1, seed=3).astype(np.uint16) * 257).squeeze())
    cmyk = rgb.convert("CMYK")
    return {"RGB": rgb, "L": gray, "RGBA": rgba, "LA": la, "P": pal, "1": bilevel, "I;16": i16, "CMYK": cmyk}


def test_registered_with_pillow():
    assert Image.registered_extensions()[".tric"] == "TRIC"
    assert "TRIC" in Image.OPEN and "TRIC" in Image.SAVE
    assert Image.MIME["TRIC"] == "image/x-tric"
    pil_plugin.register()  # idempotent
    assert Image.ID.count("TRIC") == 1


@pytest.mark.parametrize("mode", list(_images()))
def test_save_and_open_round_trip(tmp_path, mode):
    img = _images()[mode]
    path = tmp_path / "x.tric"
    img.save(path)
    assert path.read_bytes() == tricodec.encode(img)
    with Image.open(path) as back:
        assert back.format == "TRIC"
        assert (back.mode, back.size) == (img.mode, img.size)
        back.load()
        assert same_image(back, img)
        assert back.get_format_mimetype() == "image/x-tric"
    if mode == "P":
        assert back.info["transparency"] == 3


def test_save_to_stream_with_format(tmp_path):
    img = _images()["RGB"]
    buf = io.BytesIO()
    img.save(buf, format="TRIC")
    assert buf.getvalue() == tricodec.encode(img)
    buf.seek(0)
    assert same_image(Image.open(buf).convert("RGB"), img)


def test_save_device_option(tmp_path):
    img = _images()["L"]
    buf = io.BytesIO()
    img.save(buf, format="TRIC", device="cpu")
    assert buf.getvalue() == tricodec.encode(img, device="cpu")


def test_open_reads_header_only_and_detects_by_content(tmp_path, monkeypatch):
    img = _images()["RGB"]
    path = tmp_path / "no_extension"
    path.write_bytes(tricodec.encode(img))

    def boom(*a, **k):
        raise AssertionError("pixels decoded at open")

    with monkeypatch.context() as m:
        m.setattr(tricodec.codec, "decode_any", boom)
        im = Image.open(path)  # content, not extension, picks the plugin
        assert (im.format, im.mode, im.size) == ("TRIC", "RGB", img.size)
    im.load()
    assert same_image(im, img)


def test_metadata_available_before_load(tmp_path):
    img = _images()["RGB"].copy()
    img.info["icc_profile"] = b"not really an ICC profile"
    path = tmp_path / "icc.tric"
    img.save(path)
    with Image.open(path) as im:
        assert im.info["icc_profile"] == b"not really an ICC profile"
        im.load()
        assert im.info["icc_profile"] == b"not really an ICC profile"


def test_reopened_image_saves_the_same_bytes(tmp_path):
    img = _images()["RGBA"]
    a = tmp_path / "a.tric"
    img.save(a)
    with Image.open(a) as im:
        im.save(tmp_path / "b.tric")
        im.save(tmp_path / "b.png")
    assert (tmp_path / "b.tric").read_bytes() == a.read_bytes()
    assert same_image(Image.open(tmp_path / "b.png"), img)


def test_16bit_colour_opens_but_refuses_to_load(tmp_path):
    arr = (photo_like(9, 12, 3, seed=4).astype(np.uint16) * 257 + 1)
    path = tmp_path / "deep.tric"
    path.write_bytes(tricodec.encode(arr))
    im = Image.open(path)
    assert (im.format, im.mode, im.size) == ("TRIC", "RGB", (12, 9))
    with pytest.raises(OSError, match="16-bit image.*decode_array"):
        im.load()
    with pytest.raises(tricodec.DecodeError):
        im.load()
    Image.open(path).verify()  # the file itself is sound


def _corrupt(data: bytes, pos: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= 0x55
    return bytes(b)


def test_corrupted_pixels_fail_cleanly_on_load(tmp_path):
    data = tricodec.encode(_images()["RGB"])
    path = tmp_path / "bad.tric"
    path.write_bytes(_corrupt(data, len(data) - 7))
    im = Image.open(path)  # the container is intact
    with pytest.raises(OSError) as e:
        im.load()
    assert isinstance(e.value, tricodec.DecodeError)
    with pytest.raises(OSError):
        Image.open(path).verify()


@pytest.mark.parametrize("how", ["truncated", "version", "trailing"])
def test_broken_container_fails_cleanly_on_open(tmp_path, how):
    data = tricodec.encode(_images()["L"])
    bad = {"truncated": data[:len(data) // 2], "version": _corrupt(data, 4), "trailing": data + b"\0"}[how]
    path = tmp_path / "bad.tric"
    path.write_bytes(bad)
    with pytest.raises(OSError, match="tricodec") as e:
        Image.open(path)
    assert isinstance(e.value, tricodec.TricodecError)


def test_not_a_tric_file_with_tric_extension(tmp_path):
    path = tmp_path / "fake.tric"
    path.write_bytes(b"hello, not an image at all")
    with pytest.raises(UnidentifiedImageError):
        Image.open(path)


def test_multi_frame_save_refused_and_nothing_left(tmp_path):
    frames = [Image.new("L", (8, 8), v) for v in (0, 255)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    out = tmp_path / "anim.tric"
    with Image.open(gif) as im:
        with pytest.raises(OSError, match="multi-frame") as e:
            im.save(out)
    assert isinstance(e.value, tricodec.EncodeError)
    assert not out.exists()
    with pytest.raises(OSError, match="one image"):
        frames[0].save(tmp_path / "b.tric", save_all=True, append_images=frames[1:])
    assert not (tmp_path / "b.tric").exists()
