"""Every image round-trips to identical pixels and mode."""

import struct

import numpy as np
import pytest
from PIL import Image

import tricodec
from tricodec import container
from tricodec.fused_model import unpack_side as fused_side
from tricodec.model import load_model
from tricodec.pixels import read_image

from conftest import FIXTURES, SHARED_DATA
from helpers import photo_like, same_image


def _rt(image, **kw):
    data = tricodec.encode(image, device="cpu", **kw)
    return data, tricodec.decode_any(data, device="cpu")


@pytest.mark.parametrize("h,w", [(1, 1), (1, 7), (7, 1), (1, 300), (300, 1), (2, 2), (9, 13), (8, 8),
                                 (17, 33), (64, 64), (129, 67)])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_sizes(h, w, channels):
    arr = photo_like(h, w, channels, seed=h * 1000 + w)
    arr = arr.reshape(h, w, channels)
    image = tricodec.pixels.from_array(arr)
    data, back = _rt(image)
    assert same_image(image, back)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 255])
def test_constant_images_are_tiny(value):
    image = Image.new("RGB", (200, 150), (value, value, 255 - value))
    data, back = _rt(image)
    assert same_image(image, back)
    assert len(data) < 400


def test_random_noise_never_expands_much():
    rng = np.random.default_rng(5)
    arr = rng.integers(0, 256, (120, 97, 3), dtype=np.uint8)
    data, back = _rt(arr)
    assert np.array_equal(np.asarray(back), arr)
    assert len(data) <= arr.size + 64  # stored fallback: raw bytes + header


def test_photo_takes_model_path_and_beats_png():
    image = Image.open(FIXTURES / "photo_rgb_41x34.png")
    data, back = _rt(image)
    assert same_image(image, back)
    assert not tricodec.read_header(data).is_fallback


MODES = ["1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV",
         "I", "F", "I;16", "I;16B", "I;16L"]


@pytest.mark.parametrize("mode", MODES)
def test_every_pillow_mode(mode):
    base = Image.fromarray(photo_like(23, 31, 3, seed=3), "RGB")
    if mode == "P":
        image = base.quantize(40)
    elif mode == "PA":
        image = base.quantize(40).convert("PA")
    elif mode in ("I", "F", "I;16", "I;16B", "I;16L"):
        arr = (photo_like(23, 31, 1, seed=4).reshape(23, 31).astype(np.int32) * 257)
        image = Image.fromarray(arr.astype(np.int32), "I") if mode == "I" else \
            Image.fromarray(arr.astype(np.float32) / 7, "F") if mode == "F" else \
            tricodec.pixels.from_array(arr.astype(np.uint16))
    else:
        image = base.convert(mode)
    if mode in ("I;16B", "I;16L"):
        image = Image.frombytes(mode, image.size, arr.astype(">u2" if mode == "I;16B" else "<u2").tobytes())
    data, back = _rt(image)
    assert back.mode == mode
    assert same_image(image, back)


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_colour_arrays(channels):
    rng = np.random.default_rng(channels)
    arr = (photo_like(19, 21, channels, seed=9).astype(np.uint16) * 257 + rng.integers(0, 200, (19, 21, channels))).astype(np.uint16)
    data, back = _rt(arr)
    assert back.dtype == np.uint16 and np.array_equal(back, arr)
    with pytest.raises(tricodec.DecodeError, match="decode_array"):
        tricodec.decode(data)
    assert np.array_equal(tricodec.decode_array(data), arr)


def test_16bit_png_read_at_full_depth(tmp_path):
    import png

    arr = (np.arange(5 * 6 * 3, dtype=np.uint16).reshape(5, 6, 3) * 1000 + 7).astype(np.uint16)
    path = tmp_path / "deep.png"
    with open(path, "wb") as f:
        png.Writer(width=6, height=5, bitdepth=16, greyscale=False).write(f, arr.reshape(5, 18).tolist())
    image = read_image(path)
    assert isinstance(image, np.ndarray) and np.array_equal(image, arr)
    data, back = _rt(image)
    assert np.array_equal(back, arr)


def test_16bit_ppm_read_at_full_depth_not_truncated(tmp_path):
    path = tmp_path / "deep.ppm"
    arr = (np.arange(4 * 5 * 3).reshape(4, 5, 3) * 1001 + 3).astype(">u2")
    path.write_bytes(b"P6\n5 4\n65535\n" + arr.tobytes())
    image = read_image(path)
    assert isinstance(image, np.ndarray) and image.dtype == np.uint16 and np.array_equal(image, arr)


def test_multiframe_refused(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (8, 8), (80 * i, 0, 0)) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(tricodec.EncodeError, match="multi-frame"):
        read_image(path)


def _shared(folder):
    d = SHARED_DATA / folder
    return sorted(d.glob("*.png")) if d.is_dir() else []


@pytest.mark.parametrize("path", _shared("dev") + _shared("dev_gray"), ids=lambda p: p.name)
def test_shared_photos(path):
    image = read_image(path)
    data, back = _rt(image)
    assert same_image(image, back)
    assert len(data) < 0.85 * len(image.tobytes())
    header, sections = container.unpack(data)
    if header.is_fallback:
        return
    assert lane_overhead(header, sections) < 0.005 * len(data)


def lane_overhead(header, sections) -> int:
    """Bytes a model-coded file spends on its lanes' framing: final rANS states and lengths."""
    if header.model_name.startswith("tric-wf"):  # SIDE = lane_rows [+ params]; LANES = counts (u32 x 3 x n) | words
        lane_rows = struct.unpack("<I", bytes(sections[container.SEC_SIDE][:4]))[0]
        fy = 1
        if load_model(header.model_name).kind == "fused":    # the strips cover the small image of a replicated one
            shape = (header.channels, header.height, header.width)
            _, _, _, (fy, _), _ = fused_side(sections[container.SEC_SIDE], shape)
        small_height = -(-header.height // fy)
        n_lanes = -(-small_height // lane_rows)
        counts = struct.unpack_from(f"<{3 * n_lanes}I", sections[container.SEC_LANES], 0)
        assert 12 * n_lanes + 2 * (sum(counts[0::3]) + sum(counts[1::3])) == len(sections[container.SEC_LANES])
        return 12 * n_lanes + 4 * sum(1 << k for k in counts[2::3])
    return 8 * lane_count(header, sections)  # final state + length per lane


def lane_count(header, sections) -> int:
    """Lanes of a model-coded file, read as its model lays them out (context_model.py, container.py)."""
    side, lanes = sections[container.SEC_SIDE], sections[container.SEC_LANES]
    if header.model_name.startswith("tric-cx"):  # SIDE = lane_rows (u32); LANES = counts (u32 x n_lanes) | words
        lane_rows = struct.unpack("<I", bytes(side))[0]
        n_lanes = -(-header.height // lane_rows)
        counts = struct.unpack_from(f"<{n_lanes}I", lanes, 0)
        assert 4 * n_lanes + 2 * sum(counts) == len(lanes)
        return n_lanes
    # block-scale: LANES = lane_log2 (u8) | counts (u32 x n_lanes) | words, n_lanes from the symbol count
    n_lanes = -(-header.width * header.height * header.channels // (1 << lanes[0]))
    counts = struct.unpack_from(f"<{n_lanes}I", lanes, 1)
    assert 1 + 4 * n_lanes + 2 * sum(counts) == len(lanes)
    return n_lanes


@pytest.mark.parametrize("model", ["tric-cx1", "tric-bs2"])
def test_lane_count_reads_each_layout(model):
    """The lane reader above, on a file made here (the shared photos may be absent): the context model's
    lanes are strips of lane_rows rows (its encoder's lane size shrunk so that a 256x192 photo has 3 of
    them), the block-scale model's lanes 2^lane_log2 symbols (18 here)."""
    import dataclasses

    from tricodec.model import load_model
    m = load_model(model)
    if m.kind == "context":
        m = dataclasses.replace(m, lane_pixels=1 << 14)  # the decoder reads lane_rows from SIDE
    image = Image.open(FIXTURES.parent.parent / "samples" / "kodim05_crop.png")
    data = tricodec.encode(image, device="cpu", model=m)
    header, sections = container.unpack(data)
    assert not header.is_fallback and header.model_name == model
    h, w = image.height, image.width
    expected = -(-h // m.lane_rows(w, h)) if m.kind == "context" else -(-h * w * 3 // (1 << m.lane_log2))
    assert lane_count(header, sections) == expected > 1
    assert same_image(tricodec.decode(data, device="cpu"), image)


def test_shared_photos_present_or_skipped():
    if not _shared("dev"):
        pytest.skip("../shared/data/dev not present")
    assert len(_shared("dev")) >= 1


def test_torch_tensor_input_and_batch():
    torch = pytest.importorskip("torch")
    arr = photo_like(11, 13, 3, seed=2)
    datas = tricodec.encode_batch([torch.from_numpy(arr), arr, Image.fromarray(arr)])
    assert datas[0] == datas[1] == datas[2]
    assert all(np.array_equal(np.asarray(im), arr) for im in tricodec.decode_batch(datas))


def test_batches_code_several_images_at_once_in_order():
    images = [Image.fromarray(photo_like(17 + i, 23 + 2 * i, 3, seed=i)) for i in range(5)]
    one_by_one = [tricodec.encode(im) for im in images]
    assert tricodec.encode_batch(images, workers=3) == one_by_one
    back = tricodec.decode_batch(one_by_one, workers=3)
    assert all(same_image(a, b) for a, b in zip(back, images))
