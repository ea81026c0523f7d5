"""The imageio plugin, through imageio's own v3 API (imread, imwrite, improps, immeta, imiter)."""
import numpy as np
import pytest
from PIL import Image

import tricodec
from tricodec import imageio_plugin
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
