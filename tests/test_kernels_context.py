"""The Triton context-coder kernels equal their CPU twin (tricodec.context_ref) bit for bit, both ways.

Without a GPU the kernels run under the Triton interpreter (one program per lane, every scalar step
interpreted): images are tiny.  With a GPU the ``gpu`` test adds a real photo size.
"""
import numpy as np
import pytest
import torch

import tricodec
from tricodec import context_model as cm
from tricodec import context_ref as cr
from tricodec.errors import DecodeError
from tricodec.kernels import context_decode, context_encode

from helpers import photo_residuals

DEV = "cuda" if torch.cuda.is_available() else "cpu"
MODEL = tricodec.load_model("tric-cx1")


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a)).to(DEV)


def _both(res, lane_rows):
    kinds = cm.plane_kinds(res.shape[0])
    c_ref, w_ref = cr.encode_context_lanes(res, kinds, *MODEL.arrays, lane_rows)
    c_k, w_k = context_encode.encode_context_lanes(_t(res), _t(kinds), *map(_t, MODEL.arrays), lane_rows)
    assert np.array_equal(c_k.cpu().numpy(), c_ref) and np.array_equal(w_k.cpu().numpy(), w_ref)
    back = context_decode.decode_context_lanes(_t(c_ref.astype(np.int64)), _t(w_ref), res.shape, _t(kinds),
                                               *map(_t, MODEL.arrays), lane_rows)
    assert np.array_equal(back.cpu().numpy(), res)
    return c_ref, w_ref


@pytest.mark.parametrize("p,h,w,lane_rows", [(1, 1, 1, 1), (3, 1, 1, 1), (3, 5, 7, 2), (4, 3, 5, 1),
                                             (2, 4, 3, 4), (1, 7, 2, 3)])
def test_kernels_equal_twin(p, h, w, lane_rows):
    _both(photo_residuals(h, w, p, seed=p * h + w), lane_rows)


def test_lanes_in_several_launches(monkeypatch):
    """Lanes go in launches of a bounded number (state and scratch stay bounded): 5 lanes, 2 a launch."""
    monkeypatch.setattr(context_decode, "LANES_PER_LAUNCH", 2)
    monkeypatch.setattr(context_encode, "LANES_PER_LAUNCH", 2)
    counts, _ = _both(photo_residuals(5, 4, 3, seed=8), 1)
    assert counts.shape == (5,)


def test_kernels_equal_twin_on_extremes():
    rng = np.random.default_rng(4)
    _both(np.where(rng.random((3, 4, 6)) < 0.5, 0, 255).astype(np.uint8), 2)   # every big token, both signs
    _both(np.full((3, 3, 4), 128, np.uint8), 3)                               # all zero residuals


def test_decode_kernel_reports_the_twins_corrupted_lane():
    res = photo_residuals(4, 5, 3, seed=1)
    kinds = cm.plane_kinds(3)
    counts, words = cr.encode_context_lanes(res, kinds, *MODEL.arrays, 2)
    words = words.copy()
    words[int(counts[0]) + 3] ^= 0x0040  # inside lane 1
    with pytest.raises(DecodeError) as twin:
        cr.decode_context_lanes(counts, words, res.shape, kinds, *MODEL.arrays, 2)
    with pytest.raises(DecodeError) as kernel:
        context_decode.decode_context_lanes(_t(counts.astype(np.int64)), _t(words), res.shape, _t(kinds),
                                            *map(_t, MODEL.arrays), 2)
    assert str(twin.value) == str(kernel.value) == "corrupted entropy-coded data in lane 1"


def test_decode_kernel_checks_the_lane_table_like_the_twin():
    res = photo_residuals(4, 3, 1)
    kinds = cm.plane_kinds(1)
    counts, words = cr.encode_context_lanes(res, kinds, *MODEL.arrays, 2)
    for bad in (counts[:1], np.array([1, counts.sum() - 1]), np.array([2, 10 ** 5])):
        with pytest.raises(DecodeError) as twin:
            cr.decode_context_lanes(bad.astype(np.uint32), words, res.shape, kinds, *MODEL.arrays, 2)
        with pytest.raises(DecodeError) as kernel:
            context_decode.decode_context_lanes(_t(bad.astype(np.int64)), _t(words), res.shape, _t(kinds),
                                                *map(_t, MODEL.arrays), 2)
        assert str(twin.value) == str(kernel.value)


def test_wrappers_check_arguments():
    res = photo_residuals(2, 2, 3)
    with pytest.raises(ValueError, match="uint8"):
        context_encode.encode_context_lanes(_t(res.astype(np.int32)), _t(cm.plane_kinds(3)),
                                            *map(_t, MODEL.arrays), 1)
    with pytest.raises(ValueError, match="kinds"):
        context_encode.encode_context_lanes(_t(res), _t(np.array([2, 0, 0], np.int32)), *map(_t, MODEL.arrays), 1)


@pytest.mark.gpu
def test_kernels_equal_twin_on_a_photo_size():
    _both(photo_residuals(512, 768, 3, seed=11), MODEL.lane_rows(768, 512))


def test_several_images_in_one_launch(monkeypatch):
    """Lanes of images of different shapes and plane counts side by side in the same launches (and split
    over several launches) equal the twin's one-image-at-a-time coding."""
    monkeypatch.setattr(context_decode, "LANES_PER_LAUNCH", 3)
    monkeypatch.setattr(context_encode, "LANES_PER_LAUNCH", 3)
    shapes = [(3, 4, 5, 2), (1, 3, 7, 1), (4, 2, 3, 2), (2, 5, 2, 4)]
    res = [photo_residuals(h, w, p, seed=h + p) for p, h, w, _ in shapes]
    kinds = [cm.plane_kinds(p) for p, _, _, _ in shapes]
    rows = [lr for *_, lr in shapes]
    ref = cr.encode_context_lanes_batch(res, kinds, *MODEL.arrays, rows)
    got = context_encode.encode_context_lanes_batch([_t(r) for r in res], [_t(k) for k in kinds],
                                                    *map(_t, MODEL.arrays), rows)
    for (c_ref, w_ref), (c_k, w_k) in zip(ref, got):
        assert np.array_equal(c_k.cpu().numpy(), c_ref) and np.array_equal(w_k.cpu().numpy(), w_ref)
    back = context_decode.decode_context_lanes_batch([_t(c.astype(np.int64)) for c, _ in ref], [_t(w) for _, w in ref],
                                                     [r.shape for r in res], [_t(k) for k in kinds],
                                                     *map(_t, MODEL.arrays), rows)
    assert all(np.array_equal(b.cpu().numpy(), r) for b, r in zip(back, res))
    # A corrupted lane is reported with its image, by both.
    words = [w.copy() for _, w in ref]
    words[1][3] ^= 0x0101
    with pytest.raises(DecodeError) as twin:
        cr.decode_context_lanes_batch([c for c, _ in ref], words, [r.shape for r in res], kinds, *MODEL.arrays, rows)
    with pytest.raises(DecodeError) as kernel:
        context_decode.decode_context_lanes_batch([_t(c.astype(np.int64)) for c, _ in ref], [_t(w) for w in words],
                                                  [r.shape for r in res], [_t(k) for k in kinds],
                                                  *map(_t, MODEL.arrays), rows)
    assert str(twin.value) == str(kernel.value) and str(twin.value).startswith("image 1: ")
