"""16-bit images through the model: the depth split (tricodec/deep.py), its container section and the
round trips through the API on every backend we test."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tricodec
from tricodec import container, deep
from tricodec.backend import CPU
from tricodec.errors import DecodeError
from tricodec.model import DEFAULT_MODEL

from helpers import photo_crop


def deep_photo(h: int, w: int, channels: int, bits: int = 16, seed: int = 0) -> np.ndarray:
    """A photo crop widened to ``bits`` bits: its 8-bit samples on top, sensor-like noise below."""
    rng = np.random.default_rng(seed)
    base = photo_crop(h, w, channels, seed=seed).astype(np.int64).reshape(h, w, channels) << (bits - 8)
    noise = rng.integers(0, 1 << (bits - 8), base.shape) if bits > 8 else 0
    return (base + noise).astype(np.uint16)


def as_input(arr: np.ndarray):
    """What a user passes: an I;16 image for grey, the uint16 array for colour."""
    return Image.fromarray(arr[:, :, 0]) if arr.shape[2] == 1 else arr


def roundtrip(arr: np.ndarray, device: str = "cpu") -> bytes:
    data = tricodec.encode(as_input(arr), device=device)
    back = tricodec.decode_array(data, device=device)
    assert back.dtype == np.uint16 and np.array_equal(back.reshape(arr.shape), arr)
    return data


# ---- the split ----

@pytest.mark.parametrize("value, expected", [(0, (1, 0)), (1, (1, 0)), (4095, (12, 0)), (4095 << 4, (12, 4)),
                                             (65535, (16, 0)), (1 << 15, (1, 15)), (3 << 14, (2, 14))])
def test_depth_of(value, expected):
    planes = np.zeros((2, 3, 4), np.uint16)
    planes[1, 2, 3] = value
    assert deep.depth_of(planes) == expected


@pytest.mark.parametrize("depth, shifts", [(16, (0, 4, 8)), (12, (0, 3, 11)), (9, (0, 1, 8)), (8, (0, 2, 7)),
                                           (1, (0, 0, 0))])
def test_split_join_inverts(depth, shifts):
    rng = np.random.default_rng(depth)
    half = 1 << (depth - 1)
    e = rng.integers(-half, half, (3, 13, 17)).astype(np.int32)
    e[:, 0, :4] = [-half, half - 1, 0, -1] if depth > 1 else [-1, 0, 0, -1]   # the extremes
    sym, body = deep.split((e + half).astype(np.uint16), depth, shifts)
    assert sym.dtype == np.uint8
    s = deep.join(sym, memoryview(body), depth, shifts)
    assert np.array_equal(s.astype(np.int32) - half, e)


def test_split_escapes_only_where_the_symbol_is_clamped():
    e = np.array([[[0, 126, 127, -127, -128, 5000, -5000]]], np.int32)
    sym, body = deep.split((e + (1 << 15)).astype(np.uint16), 16, (0,))
    assert sym.tolist() == [[[128, 254, 255, 1, 0, 255, 0]]]
    assert len(body) == -(-4 * 16 // 8)          # four escapes of 16 bits, no low bits


def test_join_refuses_a_body_of_the_wrong_length():
    e = np.arange(-40, 40, dtype=np.int32).reshape(1, 8, 10) * 300
    sym, body = deep.split((e + (1 << 15)).astype(np.uint16), 16, (3,))
    for bad in (body[:-1], body + b"\0"):
        with pytest.raises(DecodeError):
            deep.join(sym, memoryview(bad), 16, (3,))


def test_shift_choice_follows_the_noise():
    """Noise in the low bits is stored raw, not modelled: more noise, a larger shift."""
    rng = np.random.default_rng(1)
    quiet = rng.laplace(0, 2, (1, 64, 64)).astype(np.int32)
    loud = rng.laplace(0, 600, (1, 64, 64)).astype(np.int32)
    assert deep.choose_shifts((quiet + (1 << 15)).astype(np.uint16), 16) == (0,)
    assert 5 <= deep.choose_shifts((loud + (1 << 15)).astype(np.uint16), 16)[0] <= 10


# ---- through the codec ----

@pytest.mark.parametrize("channels", [1, 3, 4])
def test_deep_photo_is_model_coded_and_smaller_than_png(channels, tmp_path):
    arr = deep_photo(48, 40, channels, bits=12, seed=channels)
    data = roundtrip(arr)
    header, sections = container.unpack(data)
    assert not header.is_fallback and header.bit_depth == 16 and header.model_name == DEFAULT_MODEL
    assert container.SEC_DEEP in sections
    assert deep.unpack_params(sections[container.SEC_DEEP], (channels, 48, 40))[:2] == (12, 0)
    path = tmp_path / "x.png"
    if channels == 1:
        as_input(arr).save(path, optimize=True)
        assert len(data) < path.stat().st_size


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 1), (5, 3), (33, 70)])
@pytest.mark.parametrize("channels", [1, 3])
def test_deep_sizes(shape, channels):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    roundtrip(rng.integers(0, 1 << 16, shape + (channels,)).astype(np.uint16))


@pytest.mark.parametrize("bits, zeros", [(16, 0), (10, 0), (10, 6), (8, 8), (3, 0), (1, 15)])
def test_deep_depths_are_kept(bits, zeros):
    """Data of any significant depth, shifted up in its container or not, comes back exactly, the depth
    coded being the one the data needs."""
    arr = (deep_photo(40, 36, 3, bits=max(bits, 8), seed=bits) >> max(0, 8 - bits)) << zeros
    data = roundtrip(arr)
    header, sections = container.unpack(data)
    if not header.is_fallback:
        depth, k = deep.unpack_params(sections[container.SEC_DEEP], (3, 40, 36))[:2]
        assert (depth, k) == deep.depth_of(arr)


@pytest.mark.parametrize("band_pixels", [deep.BAND_PIXELS, 100])
def test_deep_triton_writes_the_cpu_bytes(band_pixels, monkeypatch):
    """The kernels' path (interpreter here, a GPU where there is one) writes and reads the same bytes,
    with one predictor band or several (3 bands of 7 rows)."""
    monkeypatch.setattr(deep, "BAND_PIXELS", band_pixels)
    arr = deep_photo(21, 19, 3, bits=14, seed=5)
    data = roundtrip(arr, device="cpu")
    assert deep.unpack_params(container.unpack(data)[1][container.SEC_DEEP], (3, 21, 19)).band_rows == \
        (21 if band_pixels > 399 else 7)
    assert tricodec.encode(as_input(arr), device="triton") == data
    assert np.array_equal(tricodec.decode_array(data, device="triton"), arr)


def test_bands_are_predicted_apart_and_decoded_side_by_side(monkeypatch):
    """A 180x144 grey photo in three bands of 48 rows (BAND_PIXELS lowered to 2^13), each predicted as an
    image of its own (its first row without the row above), decoded side by side, exactly; the split
    costs < 0.5% here (at the shipped band size, a band is 2^17 pixels or more)."""
    arr = deep_photo(144, 180, 1, bits=12, seed=8)
    whole = tricodec.encode(as_input(arr), device="cpu")
    monkeypatch.setattr(deep, "BAND_PIXELS", 1 << 13)
    data = roundtrip(arr)
    assert deep.unpack_params(container.unpack(data)[1][container.SEC_DEEP], (1, 144, 180)).band_rows == 48
    assert len(whole) < len(data) < 1.005 * len(whole)


def test_deep_batch_matches_single():
    arrs = [deep_photo(20, 24, c, bits=16, seed=c) for c in (1, 3, 4)]
    datas = tricodec.encode_batch([as_input(a) for a in arrs], device="cpu")
    assert datas == [tricodec.encode(as_input(a), device="cpu") for a in arrs]
    for a, back in zip(arrs, tricodec.decode_batch(datas, output="numpy", device="cpu")):
        assert np.array_equal(back.reshape(a.shape), a)


# ---- damaged files ----

def _rebuild(data: bytes, arr: np.ndarray, change) -> bytes:
    """The file with its sections changed, its CRC still right for ``arr``: only the change is wrong."""
    from tricodec.pixels import content_crc
    header, sections = container.unpack(data)
    secs = {tag: bytes(payload) for tag, payload in sections.items()}
    change(secs)
    return container.pack(header, list(secs.items()), content_crc(arr))


@pytest.mark.parametrize("change", [
    lambda s: s.pop(container.SEC_DEEP),
    lambda s: s.__setitem__(container.SEC_DEEP, s[container.SEC_DEEP][:-1]),
    lambda s: s.__setitem__(container.SEC_DEEP, s[container.SEC_DEEP] + b"\0"),
    lambda s: s.__setitem__(container.SEC_DEEP, bytes([17]) + s[container.SEC_DEEP][1:]),
    lambda s: s.__setitem__(container.SEC_DEEP, bytes([12, 5]) + s[container.SEC_DEEP][2:]),
    lambda s: s.__setitem__(container.SEC_DEEP, s[container.SEC_DEEP][:3] + bytes([16, 0, 0])
                            + s[container.SEC_DEEP][6:]),
    lambda s: s.__setitem__(container.SEC_DEEP, s[container.SEC_DEEP][:2] + bytes([9]) + s[container.SEC_DEEP][3:]),
    lambda s: s.__setitem__(container.SEC_DEEP, s[container.SEC_DEEP][:6] + bytes([7])
                            + s[container.SEC_DEEP][7:]),
    lambda s: s.__setitem__(container.SEC_DEEP, s[container.SEC_DEEP][:21] + bytes(4) + s[container.SEC_DEEP][25:]),
    lambda s: s.__setitem__(container.SEC_DEEP, s[container.SEC_DEEP][:21] + (17).to_bytes(4, "little")
                            + s[container.SEC_DEEP][25:]),
], ids=["missing", "short", "long", "depth 17", "depth + zeros > 16", "shift >= depth", "unknown predictor",
        "unknown blend mode", "no band rows", "band rows > height"])
def test_damaged_depth_section_is_refused(change):
    arr = deep_photo(16, 16, 3, bits=16)
    data = tricodec.encode(arr, device="cpu")
    assert np.array_equal(tricodec.decode_array(_rebuild(data, arr, lambda s: None), device="cpu"), arr)
    with pytest.raises(DecodeError):
        tricodec.decode_array(_rebuild(data, arr, change), device="cpu")


def test_every_flipped_byte_is_caught():
    data = tricodec.encode(as_input(deep_photo(20, 18, 1, bits=12)), device="cpu")
    assert not tricodec.read_header(data).is_fallback
    for i in range(container.HEADER_SIZE, len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x41
        with pytest.raises(DecodeError):
            tricodec.decode_array(bytes(bad), device="cpu")


# ---- golden files: 16-bit files written today keep decoding (never regenerate them to pass) ----

GOLDEN = Path(__file__).resolve().parent / "golden"


def test_deep_goldens_pin_the_split():
    """The grey golden is 12-bit data (shift 4, no escapes); the colour one full 16-bit data with escapes
    in its R and B planes, every plane blended, B referring to (3G + R) / 4."""
    _, grey = container.unpack((GOLDEN / "v1_wf2_gray16_37x29.tric").read_bytes())
    depth, zeros, shifts, params, rows = deep.unpack_params(grey[container.SEC_DEEP], (1, 29, 37))
    assert (depth, zeros, shifts, params.tolist(), rows) == (12, 0, (4,), [[1, -1, 0, -1, 0]], 29)
    header, rgb = container.unpack((GOLDEN / "deep" / "v1_wf2_rgb16_41x34.tric").read_bytes())
    depth, zeros, shifts, params, rows = deep.unpack_params(rgb[container.SEC_DEEP], (3, 34, 41))
    assert (depth, zeros, shifts) == (16, 0, (8, 5, 4))
    assert params.tolist() == [[1, -1, 0, -1, 0], [1, 0, 4, -1, 0], [1, 0, 3, 1, 1]]
    sym = tricodec.model.load_model("tric-wf2").decode_residuals_batch([rgb], [(3, header.height, header.width)], CPU)[0]
    assert [int(((p == 0) | (p == 255)).sum()) > 0 for p in sym] == [False, True, True]


def test_deep_colour_golden_decodes_and_reencodes():
    """(On the CPU: the kernels write the CPU's bytes, test_deep_triton_writes_the_cpu_bytes.)"""
    data = (GOLDEN / "deep" / "v1_wf2_rgb16_41x34.tric").read_bytes()
    expected = np.load(GOLDEN / "deep" / "v1_wf2_rgb16_41x34.npy")
    assert np.array_equal(tricodec.decode_array(data, device="cpu"), expected)
    assert tricodec.encode(expected, device="cpu", model="tric-wf2") == data


@pytest.mark.gpu
@pytest.mark.parametrize("channels, bits", [(1, 12), (3, 16), (4, 14)])
def test_gpu_deep_writes_and_reads_the_cpu_bytes(channels, bits):
    """A 16-bit photo of 420x540 (a crop tiled 3x3: several strips and scan bands) on the GPU: the CPU's
    bytes, both ways, and a batch."""
    arr = np.ascontiguousarray(np.tile(deep_photo(140, 180, channels, bits=bits, seed=bits), (3, 3, 1)))
    data = tricodec.encode(as_input(arr), device="cpu")
    assert tricodec.encode(as_input(arr), device="cuda") == data
    assert np.array_equal(tricodec.decode_array(data, device="cuda").reshape(arr.shape), arr)
    back = tricodec.decode_batch([data, data], device="cuda", output="torch")
    assert all(np.array_equal(t.cpu().numpy().reshape(arr.shape), arr) for t in back)


# ---- through the CLI: 16-bit files of every kind the readers take, model-coded, back at full depth ----

@pytest.mark.parametrize("name, channels", [("g.tiff", 1), ("c.tiff", 3), ("c.ppm", 3), ("g.pgm", 1),
                                            ("c.png", 3), ("g.png", 1), ("a.png", 4)])
def test_cli_codes_16bit_files_with_the_model(tmp_path, name, channels):
    from typer.testing import CliRunner

    from tricodec.cli.main import app
    from tricodec.pixels import decoded_name, read_image, write_image

    arr = deep_photo(40, 44, channels, bits=12, seed=channels)
    src = tmp_path / "in" / name
    src.parent.mkdir()
    if name == "c.tiff":   # tricodec writes no 16-bit colour TIFF; the reader takes it (tifffile)
        import tifffile
        tifffile.imwrite(src, arr, photometric="rgb")
    else:
        write_image(as_input(arr), src)
    assert np.array_equal(np.asarray(read_image(src)).reshape(arr.shape), arr)   # the file holds 16 bits
    runner = CliRunner()
    r = runner.invoke(app, ["encode", str(tmp_path / "in"), str(tmp_path / "packed"), "--verify"])
    assert r.exit_code == 0, r.output
    data = (tmp_path / "packed" / (name + ".tric")).read_bytes()
    header = tricodec.read_header(data)
    assert not header.is_fallback and header.model_name == DEFAULT_MODEL and header.bit_depth == 16
    r = runner.invoke(app, ["decode", str(tmp_path / "packed"), str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    back = read_image(tmp_path / "out" / decoded_name(name + ".tric", header.mode))   # PNG for TIFF/PPM
    assert np.array_equal(np.asarray(back).reshape(arr.shape), arr)


def test_cli_info_tells_the_depth_split(tmp_path):
    import json

    from typer.testing import CliRunner

    from tricodec.cli.main import app

    path = tmp_path / "x.tric"
    path.write_bytes(tricodec.encode(deep_photo(40, 44, 3, bits=12, seed=3) << 2, device="cpu"))
    r = CliRunner().invoke(app, ["info", str(path), "--json"])
    assert r.exit_code == 0, r.output
    split = json.loads(r.output)["depth_split"]
    assert split["bits"] == 12 and split["zero_bits"] == 2 and len(split["shifts"]) == 3
    assert split["predictor_bands"] == 1
