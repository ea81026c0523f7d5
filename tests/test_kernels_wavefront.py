"""The Triton wavefront kernels equal their CPU twin (tricodec.wavefront_ref) bit for bit, both ways.

Without a GPU the kernels run under the Triton interpreter, whose cost is per operation: time goes with
the dependent steps (about W + 2 * rows a strip), so most cases force 128 rANS states (``states=128``:
one round a step) to keep the rounds few; one case lets the encoder choose (one state: a round per
symbol).  With a GPU the ``gpu`` test adds a real photo size.
"""
import numpy as np
import pytest
import torch

import tricodec
from tricodec import context_model as cm
from tricodec import wavefront_ref as wr
from tricodec.errors import DecodeError
from tricodec.kernels import wavefront_decode, wavefront_encode

from helpers import photo_residuals

DEV = "cuda" if torch.cuda.is_available() else "cpu"
MODEL = tricodec.load_model("tric-wf1")
ARRAYS = MODEL.arrays + (MODEL.update_steps,)


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a)).to(DEV)


def _model_args(arrays=ARRAYS):
    return [_t(a) for a in arrays[:-1]] + [arrays[-1]]


def _both(res, lane_rows, states=128, arrays=ARRAYS):
    """Encode with the twin and the kernel (equal), decode the twin's stream with the kernel (equal, and
    the same dependent steps as run) -> the twin's (counts, words)."""
    kinds = cm.plane_kinds(res.shape[0])
    c_ref, w_ref = wr.encode_wavefront_lanes(res, kinds, *arrays, lane_rows, states)
    c_k, w_k = wavefront_encode.encode_wavefront_lanes(_t(res), _t(kinds), *_model_args(arrays), lane_rows, states)
    assert np.array_equal(c_k.cpu().numpy(), c_ref) and np.array_equal(w_k.cpu().numpy(), w_ref)
    stats_ref = np.zeros((c_ref.shape[0], 2), np.int64)
    assert np.array_equal(wr.decode_wavefront_lanes(c_ref, w_ref, res.shape, kinds, *arrays, lane_rows, stats_ref),
                          res)
    stats_k = torch.zeros((c_ref.shape[0], 2), dtype=torch.int64)
    back = wavefront_decode.decode_wavefront_lanes(_t(c_ref.astype(np.int64)), _t(w_ref), res.shape, _t(kinds),
                                                   *_model_args(arrays), lane_rows, stats_k)
    assert np.array_equal(back.cpu().numpy(), res)
    assert np.array_equal(stats_k.numpy(), stats_ref)
    return c_ref, w_ref


@pytest.mark.parametrize("p,h,w,lane_rows", [(1, 1, 1, 1), (3, 1, 1, 1), (3, 5, 7, 2), (4, 3, 5, 1),
                                             (2, 4, 3, 4), (1, 7, 2, 3), (3, 9, 4, 9)])
def test_kernels_equal_twin(p, h, w, lane_rows):
    _both(photo_residuals(h, w, p, seed=p * h + w), lane_rows)


def test_encoder_choice_of_states_and_several_rounds_a_step():
    """The encoder's own choice (one state here: a round per symbol) and 2 or 4 states (several rounds a
    step, a partial last round)."""
    res = photo_residuals(4, 6, 3, seed=3)
    counts, _ = _both(res, 4, states=0)
    assert counts[:, 2].tolist() == [0]
    for states in (2, 4):
        counts, _ = _both(res, 4, states=states)
        assert counts[:, 2].tolist() == [states.bit_length() - 1]


def test_long_flat_strip_reaches_every_adaptation_regime():
    """An 80x64 RGB strip of mostly zero residuals: one context is used thousands of times (its weight
    reaches the cap of weight_lut, a step's counts of it run into the tens), others start and stop."""
    res = np.full((3, 80, 64), 128, np.uint8)
    res[:, 20:24, :] = photo_residuals(4, 64, 3, seed=9)
    _both(res, 80)
    # the busiest context of table A is used more than 4096 times, far beyond the end of weight_lut
    assert _busiest_context_uses(res, cm.plane_kinds(3)) > 4096 > MODEL.weight_lut.shape[0]


def _busiest_context_uses(res, kinds) -> int:
    from tricodec.context_ref import _contexts
    uses = {}
    for p in range(res.shape[0]):
        for y in range(res.shape[1]):
            for x in range(res.shape[2]):
                ca, _ = _contexts.py_func(res, p, int(kinds[p]), y, x, 0, res.shape[2], MODEL.bin_a, MODEL.bin_b)
                uses[(int(kinds[p]), int(ca))] = uses.get((int(kinds[p]), int(ca)), 0) + 1
    return max(uses.values())


def test_update_every_few_steps():
    """update_steps > 1: the contexts of several steps are listed and updated together."""
    arrays = MODEL.arrays + (3,)
    _both(photo_residuals(6, 9, 3, seed=5), 6, arrays=arrays)


def test_kernels_equal_twin_on_extremes():
    rng = np.random.default_rng(4)
    _both(np.where(rng.random((3, 4, 6)) < 0.5, 0, 255).astype(np.uint8), 2)   # every big token, both signs
    _both(np.full((3, 3, 4), 128, np.uint8), 3)                               # all zero residuals


def test_strips_in_several_launches(monkeypatch):
    """Strips go in launches of a bounded number (state stays bounded): 5 strips, 2 a launch."""
    monkeypatch.setattr(wavefront_decode, "STRIPS_PER_LAUNCH", 2)
    monkeypatch.setattr(wavefront_encode, "STRIPS_PER_LAUNCH", 2)
    counts, _ = _both(photo_residuals(5, 4, 3, seed=8), 1)
    assert counts.shape == (5, 3)


def test_batch_of_images_of_different_shapes():
    """Several images' strips in the same launches give each image the twin's bytes and residuals."""
    shapes = [(3, 5, 4), (1, 3, 7), (4, 2, 2)]
    res = [photo_residuals(h, w, p, seed=i) for i, (p, h, w) in enumerate(shapes)]
    kinds = [cm.plane_kinds(p) for p, _, _ in shapes]
    rows = [2, 3, 1]
    got = wavefront_encode.encode_wavefront_lanes_batch([_t(r) for r in res], [_t(k) for k in kinds],
                                                        *_model_args(), rows, 128)
    refs = [wr.encode_wavefront_lanes(r, k, *ARRAYS, lr, 128) for r, k, lr in zip(res, kinds, rows)]
    for (c, w), (c_ref, w_ref) in zip(got, refs):
        assert np.array_equal(c.cpu().numpy(), c_ref) and np.array_equal(w.cpu().numpy(), w_ref)
    back = wavefront_decode.decode_wavefront_lanes_batch([_t(c.astype(np.int64)) for c, _ in refs],
                                                         [_t(w) for _, w in refs], shapes,
                                                         [_t(k) for k in kinds], *_model_args(), rows)
    assert all(np.array_equal(b.cpu().numpy(), r) for b, r in zip(back, res))


def _decode_both(counts, words, shape, lane_rows):
    kinds = cm.plane_kinds(shape[0])
    outcomes = []
    for decode in (lambda: wr.decode_wavefront_lanes(counts, words, shape, kinds, *ARRAYS, lane_rows),
                   lambda: wavefront_decode.decode_wavefront_lanes(
                       _t(counts.astype(np.int64)), _t(words), shape, _t(kinds), *_model_args(), lane_rows)):
        try:
            decode()
            outcomes.append(None)
        except DecodeError as e:
            outcomes.append(str(e))
    return outcomes


def test_decode_kernel_reports_the_twins_corrupted_strip():
    res = photo_residuals(6, 5, 3, seed=1)
    counts, words = wr.encode_wavefront_lanes(res, cm.plane_kinds(3), *ARRAYS, 3, 128)
    rng = np.random.default_rng(0)
    seen = set()
    for trial in range(4):
        bad = words.copy()
        i = int(rng.integers(0, len(bad)))
        bad[i] ^= np.uint16(1 << int(rng.integers(0, 16)))
        twin, kernel = _decode_both(counts, bad, res.shape, 3)
        assert twin == kernel
        seen.add(twin)
    short = counts.copy()
    short[0, 1] -= 1   # the first strip's raw words end one early: the second strip's start shifts
    words_short = np.delete(words, int(counts[0, 0]) + int(counts[0, 1]) - 1)
    twin, kernel = _decode_both(short, words_short, res.shape, 3)
    assert twin == kernel and twin is not None
    assert any(s is not None for s in seen | {twin})


def test_wrappers_refuse_what_the_twin_refuses():
    res = photo_residuals(3, 4, 3, seed=2)
    counts, words = wr.encode_wavefront_lanes(res, cm.plane_kinds(3), *ARRAYS, 3, 128)
    too_many = counts.copy()
    too_many[0, 2] = 8
    assert _decode_both(too_many, words, res.shape, 3)[0] == _decode_both(too_many, words, res.shape, 3)[1] \
        == "more rANS states than the strip has symbols"
    with pytest.raises(ValueError):
        wavefront_encode.encode_wavefront_lanes(_t(res), _t(cm.plane_kinds(3)), *_model_args(), 3, 3)


@pytest.mark.gpu
def test_kernels_equal_twin_on_a_photo_size():
    """On a GPU: a 768x512 photo-like image in the shipped model's strips, encoder's own choice of states."""
    res = photo_residuals(512, 768, 3, seed=11)
    _both(res, MODEL.lane_rows(768, 512), states=0)
