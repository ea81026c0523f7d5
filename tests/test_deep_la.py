"""16-bit grey+alpha (pseudo-mode ``LA;16``: a uint16 (H, W, 2) array, as Pillow has no such mode) end to
end: read from a 16-bit grey+alpha PNG (path, ``Image.open``, the CLI), taken as an array or a torch tensor,
model-coded through the depth split (grey, then alpha alone) or kept by the fallback, decoded to a uint16
array (never a PIL image), written back as a 16-bit grey+alpha PNG (or NPY) with its metadata; what a
format cannot hold is refused with a one-line reason."""
import io
import struct
import zlib

import numpy as np
import png
import pytest
from PIL import Image
from typer.testing import CliRunner

import tricodec
from tricodec import container, deep
from tricodec.cli.main import app
from tricodec.errors import DecodeError, WriteError
from tricodec.model import DEFAULT_MODEL
from tricodec.pixels import read_image, write_image

from test_deep import deep_photo
from test_io_depth import png16

runner = CliRunner()


def la_photo(h: int, w: int, bits: int = 16, seed: int = 0) -> np.ndarray:
    """A 16-bit grey+alpha photo: ``deep_photo``'s RGBA crop (alpha: its blue) without red and blue."""
    return np.ascontiguousarray(deep_photo(h, w, 4, bits, seed=seed)[:, :, [1, 3]])


NOISE = np.random.default_rng(7).integers(0, 1 << 16, (5, 7, 2)).astype(np.uint16)


def png_samples(data: bytes) -> tuple[dict, np.ndarray]:
    """(pypng's info, the raw samples (H, W, planes)) of a PNG file: an independent reading at full depth."""
    w, h, rows, info = png.Reader(bytes=data).read()
    return info, np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(h, w, info["planes"])


def chunk_types(data: bytes) -> list[bytes]:
    out, pos = [], 8
    while pos < len(data):
        n, typ = struct.unpack_from(">I4s", data, pos)
        out.append(typ)
        pos += 12 + n
    return out


# ---- the API ----

@pytest.mark.parametrize("arr", [la_photo(30, 26, bits=12, seed=1), NOISE, NOISE[:1, :1]], ids=["photo", "noise", "1x1"])
def test_array_round_trip(arr):
    data = tricodec.encode(arr, device="cpu")
    header = tricodec.read_header(data)
    assert (header.mode, header.channels, header.bit_depth) == ("LA;16", 2, 16)
    back = tricodec.decode_array(data, device="cpu")
    assert back.dtype == np.uint16 and back.shape == arr.shape and np.array_equal(back, arr)
    assert tricodec.decode_any(data, device="cpu").shape == arr.shape


def test_torch_tensor_round_trip():
    torch = pytest.importorskip("torch")
    arr = la_photo(20, 22, bits=16, seed=2)
    tensor = torch.from_numpy(arr.astype(np.int32)).to(torch.uint16)
    data = tricodec.encode(tensor, device="cpu")
    assert data == tricodec.encode(arr, device="cpu")
    assert np.array_equal(tricodec.decode_array(data, device="cpu"), arr)


def test_photo_is_model_coded_and_smaller_than_png(tmp_path):
    """The depth split codes it (grey, then alpha alone), well under a 16-bit PNG of the same samples."""
    arr = la_photo(48, 40, bits=12, seed=3)
    data = tricodec.encode(arr, device="cpu")
    header, sections = container.unpack(data)
    assert not header.is_fallback and header.model_name == DEFAULT_MODEL and container.SEC_DEEP in sections
    depth, zeros, shifts, params, _ = deep.unpack_params(sections[container.SEC_DEEP], (2, 48, 40))
    assert (depth, zeros) == (12, 0) and len(shifts) == 2
    assert params[1, 1] == -1 and params[1, 3] == -1       # alpha refers to no other plane
    assert len(data) < len(png16(arr, greyscale=True))
    assert np.array_equal(tricodec.decode_array(data, device="cpu"), arr)


def test_noise_and_tiny_images_go_to_the_fallback():
    for arr in (NOISE, NOISE[:2, :3]):
        data = tricodec.encode(arr, device="cpu")
        header, sections = container.unpack(data)
        assert header.is_fallback and header.mode == "LA;16" and container.SEC_FALLBACK in sections
        assert np.array_equal(tricodec.decode_array(data, device="cpu"), arr)


def test_batch_matches_single_and_gives_numpy_and_torch():
    arrs = [la_photo(24, 20, bits=16, seed=4), NOISE]
    datas = tricodec.encode_batch(arrs, device="cpu")
    assert datas == [tricodec.encode(a, device="cpu") for a in arrs]
    for a, back in zip(arrs, tricodec.decode_batch(datas, output="numpy", device="cpu")):
        assert back.dtype == np.uint16 and np.array_equal(back, a)
    stacked = tricodec.decode_batch([datas[0], datas[0]], output="numpy", stack=True, device="cpu")
    assert stacked.shape == (2, 24, 20, 2) and np.array_equal(stacked[1], arrs[0])
    torch = pytest.importorskip("torch")
    for a, back in zip(arrs, tricodec.decode_batch(datas, output="torch", device="cpu")):
        assert back.dtype == torch.uint16 and np.array_equal(back.cpu().numpy(), a)


def test_triton_writes_the_cpu_bytes():
    arr = la_photo(10, 9, bits=14, seed=5)
    data = tricodec.encode(arr, device="cpu")
    assert not tricodec.read_header(data).is_fallback
    assert tricodec.encode(arr, device="triton") == data
    assert np.array_equal(tricodec.decode_array(data, device="triton"), arr)


# ---- 16-bit grey+alpha PNG files ----

def test_png_read_at_full_depth_every_way(tmp_path):
    """Pillow opens a 16-bit grey+alpha PNG as 8-bit RGBA; tricodec re-reads its samples with pypng."""
    arr = la_photo(18, 21, bits=16, seed=6)
    path = tmp_path / "la16.png"
    path.write_bytes(png16(arr, greyscale=True))
    assert Image.open(path).mode == "RGBA"
    read = read_image(path)
    assert isinstance(read, np.ndarray) and read.dtype == np.uint16 and np.array_equal(read, arr)
    for source in (path, io.BytesIO(path.read_bytes())):
        data = tricodec.encode(Image.open(source), device="cpu")
        assert tricodec.read_header(data).mode == "LA;16"
        assert np.array_equal(tricodec.decode_array(data, device="cpu"), arr)


def test_png_metadata_is_kept_as_for_colour(tmp_path):
    """Text, ICC, gAMA, pHYs and the chunks Pillow ignores (sBIT: two bytes, bKGD: a grey level) come
    back in the written PNG, as for RGBA;16; NPY, PPM and TIFF refuse."""
    arr = NOISE
    extra = [(b"iCCP", b"p\0\0" + zlib.compress(bytes(128))), (b"gAMA", struct.pack(">I", 45455)),
             (b"sBIT", bytes([12, 10])), (b"bKGD", struct.pack(">H", 1234)),
             (b"pHYs", struct.pack(">IIB", 2835, 2835, 1)), (b"tEXt", b"Title\0grey and alpha")]
    path = tmp_path / "meta.png"
    path.write_bytes(png16(arr, greyscale=True, extra=extra))
    data = tricodec.encode(Image.open(path), device="cpu")
    assert set(tricodec.read_metadata(data)) == {"icc", "gamma", "png:sBIT", "png:bKGD", "dpi", "text:Title"}
    back = tricodec.decode_any(data, device="cpu")
    assert back.mode == "LA;16" and back.text == {"Title": "grey and alpha"}
    out = io.BytesIO()
    write_image(back, out, ".png")
    info, samples = png_samples(out.getvalue())
    assert (info["bitdepth"], info["greyscale"], info["alpha"]) == (16, True, True) and np.array_equal(samples, arr)
    assert {b"iCCP", b"gAMA", b"sBIT", b"bKGD", b"pHYs", b"tEXt"} <= set(chunk_types(out.getvalue()))
    with pytest.raises(WriteError, match="NPY cannot hold the image's .*text:Title"):
        write_image(back, io.BytesIO(), ".npy")


# ---- the CLI ----

def test_cli_round_trip_gives_back_the_png_samples(tmp_path):
    arr = la_photo(40, 36, bits=16, seed=8)
    src, packed, restored = tmp_path / "src", tmp_path / "packed", tmp_path / "restored"
    src.mkdir()
    (src / "photo.png").write_bytes(png16(arr, greyscale=True))
    (src / "noise.png").write_bytes(png16(NOISE, greyscale=True, extra=[(b"tEXt", b"k\0v")]))
    r = runner.invoke(app, ["encode", str(src), str(packed), "--verify"])
    assert r.exit_code == 0, r.output
    assert tricodec.read_header((packed / "photo.png.tric").read_bytes()).mode == "LA;16"
    r = runner.invoke(app, ["decode", str(packed), str(restored)])
    assert r.exit_code == 0, r.output
    for name, expected in (("photo.png", arr), ("noise.png", NOISE)):
        info, samples = png_samples((restored / name).read_bytes())
        assert (info["bitdepth"], info["greyscale"], info["alpha"]) == (16, True, True)
        assert np.array_equal(samples, expected), name
    assert Image.open(restored / "noise.png").text == {"k": "v"}
    r = runner.invoke(app, ["verify", str(packed), str(src)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["decode", str(packed / "photo.png.tric"), str(tmp_path / "photo.npy")])
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.load(tmp_path / "photo.npy"), arr)


@pytest.mark.parametrize("fmt, match", [("ppm", "PPM cannot hold alpha: write this LA;16 image as PNG or NPY"),
                                        ("tiff", "16-bit grey\\+alpha image can be written as PNG, PPM \\(no alpha\\) "
                                                 "or NPY, not TIFF")])
def test_cli_refuses_formats_without_room_for_it(tmp_path, fmt, match):
    tric = tmp_path / "x.tric"
    tric.write_bytes(tricodec.encode(NOISE, device="cpu"))
    r = runner.invoke(app, ["decode", str(tric), str(tmp_path / f"x.{fmt}"), "--format", fmt])
    assert r.exit_code == 1
    assert len([line for line in r.output.splitlines() if match.replace("\\", "") in line]) == 1
    assert not (tmp_path / f"x.{fmt}").exists()


# ---- refusals ----

def test_pil_decode_refuses_it_like_16bit_colour():
    data = tricodec.encode(NOISE, device="cpu")
    with pytest.raises(DecodeError, match="^16-bit grey\\+alpha image: Pillow cannot hold it, use "
                                          "tricodec.decode_array$"):
        tricodec.decode(data, device="cpu")


@pytest.mark.parametrize("suffix, match", [
    (".ppm", "^PPM cannot hold alpha: write this LA;16 image as PNG or NPY$"),
    (".pgm", "^PPM cannot hold alpha"),
    (".tiff", "^a 16-bit grey\\+alpha image can be written as PNG, PPM \\(no alpha\\) or NPY, not TIFF$"),
    (".jpg", "not JPEG$")])
def test_writers_refuse_what_they_cannot_hold(suffix, match):
    with pytest.raises(WriteError, match=match):
        write_image(NOISE, io.BytesIO(), suffix)


def test_other_uint16_shapes_are_still_refused():
    with pytest.raises(tricodec.EncodeError, match="unsupported array: dtype uint16, shape \\(5, 7, 5\\)"):
        tricodec.encode(np.zeros((5, 7, 5), np.uint16), device="cpu")


@pytest.mark.gpu
def test_gpu_writes_and_reads_the_cpu_bytes():
    arr = np.ascontiguousarray(np.tile(la_photo(140, 180, bits=14, seed=9), (3, 3, 1)))
    data = tricodec.encode(arr, device="cpu")
    assert tricodec.encode(arr, device="cuda") == data
    assert np.array_equal(tricodec.decode_array(data, device="cuda"), arr)
    back = tricodec.decode_batch([data, data], device="cuda", output="torch")
    assert all(np.array_equal(t.cpu().numpy(), arr) for t in back)


def test_pil_plugin_opens_grey_alpha_16_as_la_and_refuses_to_load():
    from tricodec.pil_plugin import TricImageError   # importing it registers the .tric format

    data = tricodec.encode(np.random.default_rng(0).integers(0, 65536, (6, 7, 2)).astype(np.uint16))
    im = Image.open(io.BytesIO(data))
    assert im.mode == "LA" and im.size == (7, 6)
    with pytest.raises(TricImageError, match="LA;16"):
        im.load()
