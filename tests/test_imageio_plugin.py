"""The imageio plugin, through imageio's own v3 API (imread, imwrite, improps, immeta, imiter)."""
import io
import struct

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

import tricodec
from tricodec import frames, imageio_plugin
from tricodec.errors import DecodeError, EncodeError

from conftest import FIXTURES
from helpers import photo_like

iio = pytest.importorskip("imageio.v3")  # an optional extra; the `test` extra installs it


def _arrays():
    rng = np.random.default_rng(7)
    rgba = photo_like(20, 24, 4, seed=1)
    return {
        "L": photo_like(20, 24, 1, seed=2).squeeze(),
        "LA": np.ascontiguousarray(rgba[:, :, 1::2]),
        "RGB": photo_like(20, 24, 3, seed=3),
        "RGBA": rgba,
        "I;16": rng.integers(0, 65536, (9, 7), dtype=np.uint16),
        "RGB;16": rng.integers(0, 65536, (6, 5, 3), dtype=np.uint16),
        "RGBA;16": rng.integers(0, 65536, (5, 6, 4), dtype=np.uint16),
    }


def test_registered_with_imageio():
    from imageio.config import known_extensions, known_plugins
    assert imageio_plugin.register() and imageio_plugin.register()       # idempotent
    assert next(iter(known_plugins)) == "tricodec"
    assert [f.priority for f in known_extensions[".tric"]] == [["tricodec"]]


@pytest.mark.parametrize("mode", list(_arrays()))
def test_write_read_round_trip_exact(tmp_path, mode):
    array = _arrays()[mode]
    path = tmp_path / "x.tric"
    iio.imwrite(path, array)
    assert path.read_bytes() == tricodec.encode(array)
    assert tricodec.read_header(path.read_bytes()).mode == mode
    back = iio.imread(path)
    assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)
    props = iio.improps(path)
    assert (props.shape, props.dtype, props.is_batch) == (array.shape, array.dtype, False)
    batch = iio.imread(path, index=...)
    assert batch.shape == (1,) + array.shape and np.array_equal(batch[0], array)
    assert iio.improps(path, index=...).shape == (1,) + array.shape
    assert [a.shape for a in iio.imiter(path)] == [array.shape]


def test_properties_match_decode_array_for_fallback_modes(tmp_path):
    rgb = Image.open(FIXTURES / "photo_rgb_41x34.png").convert("RGB")
    for image in (rgb.convert("1"), rgb.convert("P"), rgb.convert("CMYK"), rgb.convert("I"), rgb.convert("F")):
        path = tmp_path / f"{image.mode}.tric"
        path.write_bytes(tricodec.encode(image))
        expected = tricodec.decode_array(path.read_bytes())
        props, got = iio.improps(path), iio.imread(path)
        assert (props.shape, props.dtype) == (expected.shape, expected.dtype) == (got.shape, got.dtype)
        assert np.array_equal(got, expected)


def test_bytes_in_memory_and_any_name(tmp_path):
    array = _arrays()["RGB;16"]                       # Pillow would refuse it: the plugin must be the one
    data = iio.imwrite("<bytes>", array, extension=".tric")
    assert data == tricodec.encode(array)
    for source in (data, tmp_path / "copy"):
        (tmp_path / "copy").write_bytes(data)
        assert np.array_equal(iio.imread(source), array)
    assert np.array_equal(iio.imread(data, extension=".tric", plugin="tricodec"), array)
    with open(tmp_path / "copy", "rb") as f:           # a file object
        assert np.array_equal(iio.imread(f), array)


def test_metadata(tmp_path):
    image = Image.open(FIXTURES / "photo_rgb_41x34.png").convert("RGB")
    image.info["icc_profile"] = b"not really a profile"
    path = tmp_path / "m.tric"
    path.write_bytes(tricodec.encode(image))
    meta = iio.immeta(path)
    assert meta["mode"] == "RGB" and meta["bit_depth"] == 8
    assert meta == {"mode": "RGB", "bit_depth": 8, **tricodec.read_metadata(path.read_bytes())}


def test_errors(tmp_path):
    array = _arrays()["RGB"]
    path = tmp_path / "x.tric"
    iio.imwrite(path, array)
    with pytest.raises(IndexError, match="holds one image: index 1"):
        iio.imread(path, index=1)
    with pytest.raises(EncodeError, match="batch of 2"):
        iio.imwrite(tmp_path / "y.tric", np.stack([array, array]))
    assert not (tmp_path / "y.tric").exists() or (tmp_path / "y.tric").stat().st_size == 0
    with iio.imopen(tmp_path / "z.tric", "w") as f:
        f.write(array)
        with pytest.raises(EncodeError, match="written already"):
            f.write(array)
    assert (tmp_path / "z.tric").read_bytes() == tricodec.encode(array)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40
    (tmp_path / "bad.tric").write_bytes(bytes(data))
    with pytest.raises(DecodeError):
        iio.imread(tmp_path / "bad.tric")
    iio.imwrite(tmp_path / "x.png", array)             # other formats still go to their plugins
    assert np.array_equal(iio.imread(tmp_path / "x.png"), array)
    assert (tmp_path / "x.png").read_bytes()[:4] == b"\x89PNG"


# ---- multi-frame files (tricodec.encode_frames): index, iter, properties, metadata -----------------------

def _frames_of(data: bytes) -> list:
    """The frame files of a multi-frame .tric file, and what each decodes to (the reference)."""
    return [bytes(one) for _, one in frames.read_frames_info(data)[3]]


def _apng_tric(**kw) -> tuple[bytes, list]:
    rng = np.random.default_rng(5)
    images = [Image.fromarray(rng.integers(0, 256, (12, 16, 4), dtype=np.uint8)) for _ in range(4)]
    buf = io.BytesIO()
    images[0].save(buf, format="PNG", save_all=True, append_images=images[1:], **kw)
    raw = [np.asarray(f.image) for f in frames.read_frames(buf.getvalue())]   # the raw frames, not composited
    return tricodec.encode_frames(buf.getvalue()), raw


def test_apng_frames_by_index_iter_and_timing(tmp_path):
    data, raw = _apng_tric(duration=[40, 80, 120, 160], loop=3, disposal=[0, 1, 2, 0], blend=[0, 1, 1, 0])
    path = tmp_path / "anim.png.tric"
    path.write_bytes(data)
    for source in (path, data):
        whole = iio.imread(source)                    # index=None: an animation is read whole (as Pillow does)
        assert whole.shape == (4, 12, 16, 4) and whole.dtype == np.uint8
        assert np.array_equal(whole, np.stack(raw)) and np.array_equal(iio.imread(source, index=...), whole)
        for k in range(4):
            assert np.array_equal(iio.imread(source, index=k), raw[k])
            assert np.array_equal(iio.imread(source, index=np.int64(k)), raw[k])
        assert all(np.array_equal(a, b) for a, b in zip(iio.imiter(source), raw, strict=True))
    props = iio.improps(path)
    assert (props.shape, props.dtype, props.n_images, props.is_batch) == ((4, 12, 16, 4), np.uint8, 4, True)
    assert iio.improps(path, index=...) == props
    one = iio.improps(path, index=2)
    assert (one.shape, one.dtype, one.is_batch) == ((12, 16, 4), np.uint8, False)
    meta = iio.immeta(path)                           # index=None: the file's metadata, as index=...
    assert meta == iio.immeta(path, index=...) == {"mode": "RGBA", "bit_depth": 8, "kind": "APNG", "n_images": 4,
                                                   "loop": 3, "durations": [40.0, 80.0, 120.0, 160.0]}
    frame = iio.immeta(path, index=2)
    assert frame["kind"] == "APNG" and frame["loop"] == 3 and frame["mode"] == "RGBA"
    assert (frame["duration"], frame["disposal"], frame["blend"], frame["offset"]) == (120.0, 2, 1, (0, 0))
    assert [iio.immeta(path, index=k)["disposal"] for k in range(4)] == [0, 1, 2, 0]
    with iio.imopen(path, "r") as f:                  # one plugin instance: the file is checked once
        assert f.read(index=1).shape == (12, 16, 4) and f.properties(index=...).n_images == 4


def test_apng_default_image_outside_the_animation_is_frame_0():
    from test_frames import _hidden_default_apng
    data = tricodec.encode_frames(_hidden_default_apng())
    assert iio.immeta(data, index=0)["hidden"] is True
    assert iio.immeta(data, index=2)["offset"] == (2, 1) and iio.immeta(data, index=2)["duration"] == 70.0
    assert iio.immeta(data)["durations"] == [None, 30.0, 70.0] and iio.immeta(data)["loop"] == 7
    assert [a.shape for a in iio.imiter(data)] == [(4, 6, 3), (4, 6, 3), (2, 3, 3)]
    with pytest.raises(ValueError, match=r"cannot be stacked.*\(4, 6, 3\), \(4, 6, 3\), \(2, 3, 3\).*index=k"):
        iio.imread(data)                              # a sub-frame: the raw frames differ in shape


def test_16bit_frames_at_full_depth(tmp_path):
    """A 16-bit APNG (RGBA;16 frames) and a multi-page TIFF of I;16 pages, each page its own resolution."""
    apng = (FIXTURES.parent / "conformance_fixtures" / "apng_mode_16bit.png").read_bytes()
    data = tricodec.encode_frames(apng)
    want = [f.image for f in frames.read_frames(apng)]
    got = iio.imread(data)
    assert got.dtype == np.uint16 and got.shape == (3, 64, 128, 4) and np.array_equal(got, np.stack(want))
    assert iio.improps(data).dtype == np.uint16 and iio.immeta(data, index=1)["bit_depth"] == 16

    rng = np.random.default_rng(11)
    pages = [rng.integers(0, 65536, (5, 7), dtype=np.uint16) for _ in range(3)]
    buf = io.BytesIO()
    with TiffImagePlugin.AppendingTiffWriter(buf, new=True) as tf:
        for i, page in enumerate(pages):
            one = io.BytesIO()
            Image.fromarray(page).save(one, format="TIFF", dpi=(72 + i, 72 + i))
            tf.write(one.getvalue())
            tf.newFrame()
    path = tmp_path / "pages.tif.tric"
    path.write_bytes(tricodec.encode_frames(buf.getvalue()))
    first = iio.imread(path)                          # index=None: page 0 of a TIFF (as Pillow does)
    assert first.dtype == np.uint16 and np.array_equal(first, pages[0])
    stack = iio.imread(path, index=...)
    assert stack.dtype == np.uint16 and np.array_equal(stack, np.stack(pages))
    assert [a.dtype for a in iio.imiter(path)] == [np.uint16] * 3
    assert np.array_equal(iio.imread(path, index=2), pages[2])
    props = iio.improps(path)
    assert (props.shape, props.dtype, props.is_batch) == ((5, 7), np.uint16, False)
    props = iio.improps(path, index=...)
    assert (props.shape, props.dtype, props.n_images, props.is_batch) == ((3, 5, 7), np.uint16, 3, True)
    for k in range(3):                                # each page's metadata, as a single image's
        meta = iio.immeta(path, index=k)
        frame = _frames_of(path.read_bytes())[k]
        assert meta == {"mode": "I;16", "bit_depth": 16, **tricodec.read_metadata(frame), "kind": "TIFF"}
        assert struct.unpack("<dd", meta["dpi"]) == (72.0 + k, 72.0 + k)
    assert iio.immeta(path) == iio.immeta(path, index=0)
    assert iio.immeta(path, index=...) == {"mode": "I;16", "bit_depth": 16, "kind": "TIFF", "n_images": 3}


def test_tiff_pages_of_other_modes(tmp_path):
    from test_frames import _tiff_pages
    data = tricodec.encode_frames(_tiff_pages(tmp_path / "p.tif"))
    want = [tricodec.decode_array(one) for one in _frames_of(data)]
    assert [a.dtype for a in iio.imiter(data)] == [np.uint8, np.uint8, np.uint8, np.uint16]
    assert all(np.array_equal(a, b) for a, b in zip(iio.imiter(data), want, strict=True))
    assert iio.improps(data, index=3).dtype == np.uint16 and iio.immeta(data, index=2)["mode"] == "CMYK"
    assert iio.immeta(data, index=2)["icc"] == b"\0\0\0\x80" + bytes(124)
    with pytest.raises(ValueError, match="4 frames of this TIFF .tric file cannot be stacked"):
        iio.improps(data, index=...)


def test_ico_sizes_refuse_stacking_and_read_one_by_one(monkeypatch):
    ico = (FIXTURES.parent / "conformance_fixtures" / "python.ico").read_bytes()
    data = tricodec.encode_frames(ico)
    want = [np.asarray(f.image) for f in frames.read_frames(ico)]
    assert np.array_equal(iio.imread(data), want[0])   # index=None: the first size
    assert [a.shape for a in iio.imiter(data)] == [(16, 16, 4), (32, 32, 4), (48, 48, 4)]
    assert all(np.array_equal(iio.imread(data, index=k), want[k]) for k in range(3))
    assert iio.improps(data, index=2).shape == (48, 48, 4)
    with monkeypatch.context() as m:                   # refused from the headers, before any decoding
        m.setattr(tricodec.codec, "decode_batch", lambda *a, **k: pytest.fail("decoded"))
        shapes = r"\(\(16, 16, 4\), \(32, 32, 4\), \(48, 48, 4\)\)"
        with pytest.raises(ValueError, match=r"3 frames of this ICO .tric file cannot be stacked \(index=\.\.\.\): "
                                             r"their shapes or dtypes differ " + shapes):
            iio.imread(data, index=...)
        with pytest.raises(ValueError, match="cannot be stacked"):
            iio.improps(data, index=...)
    assert iio.immeta(data, index=...) == {"mode": "RGBA", "bit_depth": 8, "kind": "ICO", "n_images": 3}
    assert iio.immeta(data, index=1) == {"mode": "RGBA", "bit_depth": 8, "kind": "ICO", "icon_format": "bmp"}


def test_gif_frames_indices_palettes_and_timing():
    from test_frames import _gif
    gif = _gif()
    src = frames.read_frames(gif)
    data = tricodec.encode_frames(gif)
    indices = [np.asarray(f.image) for f in src]
    shapes = [a.shape for a in indices]
    assert [a.shape for a in iio.imiter(data)] == shapes and len(set(shapes)) > 1
    assert all(np.array_equal(iio.imread(data, index=k), indices[k]) for k in range(3))
    with pytest.raises(ValueError, match="3 frames of this GIF .tric file cannot be stacked"):
        iio.imread(data)                              # index=None: an animation whole, but of 3 shapes
    meta = iio.immeta(data)
    assert meta == {"mode": "P", "bit_depth": 8, "kind": "GIF", "n_images": 3, "loop": 4,
                    "durations": [70.0, 80.0, 90.0]}
    for k, f in enumerate(src):
        m = iio.immeta(data, index=k)
        assert (m["mode"], m["kind"], m["loop"], m["duration"]) == ("P", "GIF", 4, [70.0, 80.0, 90.0][k])
        assert m["disposal"] == [1, 2, 0][k] and m["transparency"] == 2
        assert m["offset"] == struct.unpack("<HH", f.params["desc"][:4])      # the image descriptor's position
        table = f.params["lct"] or src.info["head"][13:]
        assert m["palette"].dtype == np.uint8 and m["palette"].tobytes() == table
        rgb = np.asarray(f.image.convert("RGB"))      # the palette gives the frame's colours
        assert np.array_equal(m["palette"][iio.imread(data, index=k)], rgb)
    assert iio.immeta(data, index=0)["comment"] == b"made by test_frames"


def test_frame_index_out_of_range_or_of_another_type(tmp_path):
    data, _ = _apng_tric(duration=50)
    for bad in (4, 100, -1, 1.0, True, "0", slice(0, 2)):
        for call in (iio.imread, iio.improps, iio.immeta):
            with pytest.raises(imageio_plugin.ImageIndexError, match=r"APNG .tric file holds 4 frames: index .* "
                                                                    r"does not exist \(0 to 3, or \.\.\. for all\)"):
                call(data, index=bad)
    err = imageio_plugin.ImageIndexError("x")
    assert isinstance(err, IndexError) and isinstance(err, ValueError)   # Python's, and imageio's API's
    single = tricodec.encode(_arrays()["RGB"])
    for bad in (1, -1):
        with pytest.raises(imageio_plugin.ImageIndexError, match="holds one image"):
            iio.imread(single, index=bad)


def test_single_image_files_read_as_before():
    array = _arrays()["RGBA;16"]
    data = tricodec.encode(array)
    assert np.array_equal(iio.imread(data), array) and np.array_equal(iio.imread(data, index=0), array)
    assert iio.imread(data, index=...).shape == (1,) + array.shape
    props = iio.improps(data)
    assert (props.shape, props.n_images, props.is_batch) == (array.shape, None, False)
    assert iio.improps(data, index=...).n_images == 1
    assert iio.immeta(data) == iio.immeta(data, index=...) == {"mode": "RGBA;16", "bit_depth": 16}
    assert [a.shape for a in iio.imiter(data)] == [array.shape]


def test_corrupt_frames_file_is_a_decode_error():
    data, _ = _apng_tric(duration=50)
    bad = bytearray(data)
    bad[-40] ^= 0x10
    for call in (iio.imread, iio.improps, iio.immeta):
        with pytest.raises(DecodeError):
            call(bytes(bad))


def test_icns_sizes_and_masks_are_frames(tmp_path):
    from test_frames import _icns
    icns = _icns(tmp_path)
    data = tricodec.encode_frames(icns)
    src = frames.read_frames(icns)
    assert iio.immeta(data, index=...)["n_images"] == len(src) > 1
    for k, f in enumerate(src):
        assert iio.immeta(data, index=k)["icns_type"] == f.params["type"].decode()
        assert np.array_equal(iio.imread(data, index=k), np.asarray(f.image))
    assert np.array_equal(iio.imread(data), np.asarray(src.frames[0].image))   # index=None: the first
