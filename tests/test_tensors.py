"""decode_batch(..., output="torch" | "numpy", stack=...): the arrays decode_array gives, as tensors on the
backend's device; the device-side CRC32 against zlib's; under the CPU backend and the Triton interpreter
(``device="triton"``: the device path of a GPU, on CPU tensors)."""
import zlib

import numpy as np
import pytest
import torch

import tricodec
from tricodec import tensors
from tricodec.errors import DecodeError
from tricodec.pixels import from_array

from helpers import photo_crop, photo_like


def _model_files():
    """Small 8-bit model-coded files: RGB, grey, RGBA (sizes the interpreter decodes in seconds; tric-wf2,
    whose smaller side information keeps images this small off the fallbacks)."""
    images = [photo_crop(6, 8, 3), photo_crop(10, 12, 1), photo_crop(6, 8, 4)]
    datas = [tricodec.encode(from_array(a), device="cpu", model="tric-wf2") for a in images]
    assert not any(tricodec.read_header(d).is_fallback for d in datas)   # the model path is what is tested
    return datas


def _deep_files():
    """16-bit grey, RGB and RGBA (coded by a fallback today)."""
    rng = np.random.default_rng(5)
    arrays = [rng.integers(0, 65536, (7, 5), dtype=np.uint16), rng.integers(0, 65536, (6, 4, 3), dtype=np.uint16),
              rng.integers(0, 65536, (3, 5, 4), dtype=np.uint16)]
    return [tricodec.encode(a, device="cpu") for a in arrays]


def _same(tensor, array):
    assert isinstance(tensor, torch.Tensor) and tensor.device.type == "cpu"
    assert tuple(tensor.shape) == array.shape and tensor.numpy().dtype == array.dtype
    assert np.array_equal(tensor.numpy(), array)


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 200, 4096, 70001])
def test_device_crc32_is_zlibs(n):
    data = np.random.default_rng(n).integers(0, 256, n, dtype=np.uint8)
    assert tensors.crc32([torch.from_numpy(data)]) == [zlib.crc32(data)]


def test_device_crc32_of_several_segments_and_wide_samples(monkeypatch):
    monkeypatch.setattr(tensors, "SEGMENT", 1000)      # several pieces merged on the host
    monkeypatch.setattr(tensors, "ROW_BYTES", 4096)    # several launches per piece length
    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, n, dtype=np.uint8) for n in (3001, 999, 1000, 17)]
    deep = rng.integers(0, 65536, (9, 7, 3), dtype=np.uint16)
    got = tensors.crc32([torch.from_numpy(a) for a in arrays] + [torch.from_numpy(deep)])
    assert got == [zlib.crc32(a) for a in arrays] + [zlib.crc32(deep)]


@pytest.mark.parametrize("stack", [False, True])
def test_torch_output_on_cpu_equals_decode_array(stack):
    rgba = photo_like(20, 24, 4, seed=1)
    images = [photo_like(20, 24, 3, seed=2), photo_like(20, 24, 1, seed=3).squeeze(), rgba, rgba[:, :, 1::2]]
    datas = [tricodec.encode(a) for a in images] + _deep_files()
    expected = [tricodec.decode_array(d) for d in datas]
    if stack:
        for group in (datas[:1] * 2 + datas[:1], datas[-2:-1] * 2):   # 8-bit RGB, 16-bit RGB
            out = tricodec.decode_batch(group, device="cpu", output="torch", stack=True)
            _same(out, np.stack([tricodec.decode_array(d) for d in group]))
            arr = tricodec.decode_batch(group, device="cpu", output="numpy", stack=True)
            assert isinstance(arr, np.ndarray) and np.array_equal(arr, out.numpy())
        return
    out = tricodec.decode_batch(datas, device="cpu", output="torch")
    assert isinstance(out, list) and len(out) == len(datas)
    for t, a in zip(out, expected):
        _same(t, a)
    assert [t.dtype for t in out] == [torch.uint8] * 4 + [torch.uint16] * 3
    assert tuple(out[1].shape) == (20, 24)             # grey: (H, W), as decode_array gives it
    for t, a in zip(tricodec.decode_batch(datas, device="cpu", output="numpy"), expected):
        assert np.array_equal(t, a) and t.dtype == a.dtype


def test_stack_refuses_mixed_shapes_and_bad_arguments():
    a, b = tricodec.encode(photo_like(8, 8, 3)), tricodec.encode(photo_like(8, 9, 3))
    with pytest.raises(DecodeError, match="one shape and dtype: file 0 is 8x8x3 uint8, file 1 is 8x9x3 uint8"):
        tricodec.decode_batch([a, b], device="cpu", output="torch", stack=True)
    with pytest.raises(DecodeError, match="at least one file"):
        tricodec.decode_batch([], device="cpu", output="numpy", stack=True)
    with pytest.raises(ValueError, match="output must be one of"):
        tricodec.decode_batch([a], output="tensor")
    with pytest.raises(ValueError, match="stack=True needs output"):
        tricodec.decode_batch([a], stack=True)


def test_torch_output_under_the_interpreter_equals_decode_array():
    """The device path: residuals, planes, channels-last assembly and CRC on the backend's tensors;
    16-bit files (fallback) decoded on the host and uploaded, in the same call."""
    datas = _model_files() + _deep_files()
    out = tricodec.decode_batch(datas, device="triton", output="torch")
    for t, d in zip(out, datas):
        _same(t, tricodec.decode_array(d, device="cpu"))
    assert tuple(out[1].shape) == (10, 12)
    stacked = tricodec.decode_batch(datas[-2:-1] * 2, device="triton", output="torch", stack=True)
    _same(stacked, np.stack([tricodec.decode_array(datas[-2], device="cpu")] * 2))


def test_stacked_model_files_under_the_interpreter():
    rgb = _model_files()[0]
    other = tricodec.encode(from_array(photo_crop(6, 8, 3)[::-1].copy()), device="cpu")
    assert not tricodec.read_header(other).is_fallback
    out = tricodec.decode_batch([rgb, other], device="triton", output="torch", stack=True)
    _same(out, np.stack([tricodec.decode_array(rgb, device="cpu"), tricodec.decode_array(other, device="cpu")]))


def test_device_path_checks_the_crc():
    """A file whose recorded CRC is wrong decodes to pixels that fail the check made on the device."""
    data = bytearray(_model_files()[2])
    data[42] ^= 0x01                                   # the header's crc32 field
    with pytest.raises(DecodeError, match="CRC mismatch"):
        tricodec.decode_batch([bytes(data)], device="triton", output="torch")
    with pytest.raises(DecodeError, match="CRC mismatch"):
        tricodec.decode_batch([bytes(data)], device="cpu", output="torch")


def test_files_a_gpu_would_decode_on_the_host_are_uploaded(monkeypatch):
    """Files whose model ``backend_for`` puts on the CPU (the context model under ``device="auto"`` on a
    GPU machine) decode on the host inside a device batch and come back as tensors on the device."""
    from tricodec import codec
    from tricodec.backend import CPU

    datas = [tricodec.encode(photo_like(12, 16, 3, seed=4), device="cpu", model="tric-cx1"),
             tricodec.encode(photo_like(9, 7, 1, seed=5).squeeze(), device="cpu", model="tric-wf2")]
    assert not any(tricodec.read_header(d).is_fallback for d in datas)
    monkeypatch.setattr(codec, "backend_for", lambda device, model: CPU)
    out = tricodec.decode_batch(datas, device="triton", output="torch")
    for t, d in zip(out, datas):
        _same(t, tricodec.decode_array(d, device="cpu"))
