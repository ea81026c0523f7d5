"""Banded CPU coding (bounded memory for big images) writes and reads exactly the whole-image bytes."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tricodec
from tricodec import banded

from helpers import photo_like, same_image

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.mark.parametrize("band_symbols", [1, 64, 200, 1000])
@pytest.mark.parametrize("shape", [(37, 29, 3), (41, 34, 1), (64, 8, 4), (9, 300, 3), (200, 3, 3)])
def test_banded_equals_whole_image(monkeypatch, band_symbols, shape):
    arr = photo_like(*shape, seed=sum(shape)).reshape(shape)
    whole = tricodec.encode(arr, device="cpu")
    monkeypatch.setattr(banded, "BAND_SYMBOLS", band_symbols)
    assert tricodec.encode(arr, device="cpu") == whole
    assert np.array_equal(np.asarray(tricodec.decode(whole, device="cpu")).reshape(shape), arr)


def test_small_lanes_cross_bands_and_planes(monkeypatch):
    """Lanes of 64 symbols (via a model copy) straddle bands and plane boundaries in every way."""
    import dataclasses

    model = dataclasses.replace(tricodec.load_model("tric-bs2"), lane_log2=6)
    arr = photo_like(45, 23, 3, seed=1)
    whole = tricodec.encode(arr, device="cpu", model=model)
    monkeypatch.setattr(banded, "BAND_SYMBOLS", 100)
    assert tricodec.encode(arr, device="cpu", model=model) == whole
    assert np.array_equal(np.asarray(tricodec.decode(whole, device="cpu", model=model)), arr)


@pytest.mark.parametrize("path", sorted(GOLDEN.glob("*.tric")), ids=lambda p: p.name)
def test_golden_files_decode_banded(monkeypatch, path):
    monkeypatch.setattr(banded, "BAND_SYMBOLS", 50)
    assert same_image(tricodec.decode(path.read_bytes(), device="cpu"), Image.open(path.with_suffix(".png")))
