"""Container v1: header size, version and limits are pinned; bad input raises DecodeError."""
import struct

import numpy as np
import pytest
from PIL import Image

import tricodec
from tricodec import container

from conftest import FIXTURES


def test_header_size_and_magic_pinned():
    assert tricodec.HEADER_SIZE == 48
    assert tricodec.VERSION == 1
    data = tricodec.encode(Image.open(FIXTURES / "photo_gray_37x29.png"))
    assert data[:4] == b"TRIC" and data[4] == 1 and struct.unpack_from("<H", data, 6)[0] == 48


@pytest.fixture(scope="module")
def valid():
    return tricodec.encode(Image.open(FIXTURES / "photo_rgb_41x34.png"), device="cpu")


@pytest.mark.parametrize("cut", [0, 1, 3, 4, 5, 20, 47, 48, 50, 53, 60, 100, -3, -2, -1])
def test_truncated(valid, cut):
    with pytest.raises(tricodec.DecodeError):
        tricodec.decode(valid[:cut])


def test_trailing_bytes(valid):
    with pytest.raises(tricodec.DecodeError, match="trailing"):
        tricodec.decode(valid + b"\0")


def test_wrong_magic_and_future_version(valid):
    with pytest.raises(tricodec.DecodeError, match="magic"):
        tricodec.decode(b"PNG!" + valid[4:])
    with pytest.raises(tricodec.DecodeError, match="version 2"):
        tricodec.decode(valid[:4] + b"\x02" + valid[5:])


def test_unknown_flags(valid):
    with pytest.raises(tricodec.DecodeError):
        tricodec.decode(valid[:5] + b"\x80" + valid[6:])


def test_absurd_size_refused_before_allocating(valid):
    bomb = bytearray(valid)
    struct.pack_into("<II", bomb, 8, 1 << 20, 1 << 20)
    with pytest.raises(tricodec.DecodeError, match="exceeds the limit"):
        tricodec.decode(bytes(bomb))
    # within the pixel limit but far bigger than the payload can describe
    struct.pack_into("<II", bomb, 8, 8000, 8000)
    with pytest.raises(tricodec.DecodeError):
        tricodec.decode(bytes(bomb))


def test_max_pixels_is_configurable(valid):
    with pytest.raises(tricodec.DecodeError, match="exceeds"):
        tricodec.decode(valid, max_pixels=100)
    with pytest.raises(tricodec.EncodeError, match="exceeds"):
        tricodec.encode(np.zeros((20, 20), np.uint8), max_pixels=100)


def test_every_single_byte_corruption_is_caught(valid):
    """Flip each byte: the result is an exact decode (impossible here but allowed) or a DecodeError."""
    ref = Image.open(FIXTURES / "photo_rgb_41x34.png").tobytes()
    for i in range(len(valid)):
        bad = bytearray(valid)
        bad[i] ^= 0x5A
        try:
            out = tricodec.decode(bytes(bad))
        except tricodec.DecodeError:
            continue
        assert out.tobytes() == ref


def test_wrong_model_refused(valid):
    bad = bytearray(valid)
    bad[34] ^= 1  # model hash prefix
    with pytest.raises(tricodec.DecodeError, match="model"):
        tricodec.decode(bytes(bad))


def test_not_bytes():
    with pytest.raises(tricodec.DecodeError):
        tricodec.decode("hello")


def test_lane_stream_validation():
    with pytest.raises(tricodec.DecodeError):
        container.unpack_lanes(memoryview(bytes([5])), 10)  # lane size below the minimum
    with pytest.raises(tricodec.DecodeError):
        container.unpack_lanes(memoryview(bytes([6]) + b"\x02\0\0\0" + b"\0\0\0"), 10)


def test_memory_limit_refuses_before_allocating(valid):
    header = tricodec.read_header(valid)
    need = container.decode_memory(header)
    with pytest.raises(tricodec.DecodeError, match="MiB"):
        tricodec.decode_any(valid, max_memory=need - 1)
    assert tricodec.decode_any(valid, max_memory=need).size == (41, 34)
