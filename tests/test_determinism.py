"""Determinism guard: the same image gives the same bytes every time and on every backend CI has
(CPU twin, Triton kernels under the interpreter), and each backend decodes what the other wrote."""
import pytest
from PIL import Image

import tricodec

from conftest import FIXTURES
from helpers import same_image

# Small crops: the interpreter runs each lane's symbols one step at a time.
CASES = [("photo_rgb_41x34.png", (5, 3, 25, 19)), ("photo_gray_37x29.png", (0, 0, 37, 29)),
         ("photo_rgb_41x34.png", (0, 0, 1, 1))]


@pytest.mark.parametrize("name,box", CASES)
def test_same_bytes_every_time_and_backend(name, box):
    image = Image.open(FIXTURES / name).crop(box)
    image.load()
    cpu = tricodec.encode(image, device="cpu")
    assert tricodec.encode(image, device="cpu") == cpu
    tri = tricodec.encode(image, device="triton")
    assert tri == cpu
    assert same_image(tricodec.decode(cpu, device="triton"), image)
    assert same_image(tricodec.decode(tri, device="cpu"), image)
