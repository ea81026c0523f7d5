"""The context coder's CPU twin (tricodec.context_ref): exact round trips, its code length against an
independent pure-Python statement of the model, the token map, and the checks on hostile streams."""
import math
from importlib import resources

import numpy as np
import pytest

import tricodec
from tricodec import context_model as cm
from tricodec import context_ref as cr
from tricodec.errors import DecodeError, ModelError

from helpers import photo_like, photo_residuals

MODEL = tricodec.load_model("tric-cx1")


def _roundtrip(res, lane_rows, model=MODEL):
    kinds = cm.plane_kinds(res.shape[0])
    counts, words = cr.encode_context_lanes(res, kinds, *model.arrays, lane_rows)
    assert counts.shape == (cr.lane_geometry(res.shape[1], lane_rows),)
    back = cr.decode_context_lanes(counts, words, res.shape, kinds, *model.arrays, lane_rows)
    assert np.array_equal(back, res)
    return counts, words


@pytest.mark.parametrize("p,h,w,lane_rows", [(1, 1, 1, 1), (3, 1, 1, 1), (3, 5, 7, 2), (4, 9, 13, 4),
                                             (2, 17, 3, 5), (1, 6, 31, 100), (3, 40, 33, 7)])
def test_roundtrip_shapes_and_lanes(p, h, w, lane_rows):
    _roundtrip(photo_residuals(h, w, p, seed=h + w), min(lane_rows, h))


def test_roundtrip_extremes_and_noise():
    rng = np.random.default_rng(3)
    for res in (np.zeros((3, 8, 9), np.uint8), np.full((3, 8, 9), 255, np.uint8),
                rng.integers(0, 256, (3, 11, 10), dtype=np.uint8),
                np.where(rng.random((4, 7, 12)) < 0.5, 0, 255).astype(np.uint8)):
        _roundtrip(res, 3)


def test_huge_roundtrip_many_lanes():
    res = photo_residuals(300, 257, 3, seed=9)
    counts, _ = _roundtrip(res, 7)
    assert counts.shape == (43,)


def test_token_map_is_a_bijection():
    s = np.arange(256, dtype=np.uint8)
    t = cr.token_of_residual(s)
    assert t.min() == 0 and t.max() == cr.N_TOKENS - 1
    for sym in range(256):
        r = sym - 128
        u = 2 * r if r >= 0 else -2 * r - 1
        tok, n_extra, extra = cr._token(u)
        assert tok == t[sym] and cr._extra_bits(tok) == n_extra and cr._untoken(tok, extra) == u


def _reference_bits(res, kinds, model, lane_rows):
    """The model as the docstring states it, in plain Python integers: ideal code length in bits."""
    init_a, init_b, bin_a, bin_b, rate_lut = (a.astype(np.int64) for a in model.arrays)
    p_n, h, w = res.shape
    bits = 0.0
    for y0 in range(0, h, lane_rows):
        ta, tb = init_a.copy(), init_b.copy()
        na, nb = {}, {}

        def r(p, y, x):
            return 0 if y < y0 or x < 0 or x >= w else int(res[p, y, x]) - 128

        def sgn(v):
            return (v > 0) - (v < 0) + 1

        for y in range(y0, min(h, y0 + lane_rows)):
            for p in range(p_n):
                k = int(kinds[p])
                for x in range(w):
                    rw, rn, rnw, rne = r(p, y, x - 1), r(p, y - 1, x), r(p, y - 1, x - 1), r(p, y - 1, x + 1)
                    rww, rnn = r(p, y, x - 2), r(p, y - 2, x)
                    near = abs(rw) + abs(rn) + abs(rnw) + abs(rne)
                    act = near + abs(rw) + abs(rn) + abs(rww) + abs(rnn)
                    co = r(p - k, y, x) if k else 0
                    c1 = r(p - 1, y, x) if k == 2 else 0
                    if k:
                        act += 2 * abs(co) + abs(r(p - k, y, x + 1)) + abs(c1)
                    ca = (bin_a[min(act, 4095)] * 3 + sgn(rw)) * 3 + sgn(rn)
                    if k:
                        ca = ca * 3 + sgn(co)
                    a2 = bin_b[min(2 * abs(co + c1), 4095)] if k else 0
                    cb = ((bin_b[min(near, 4095)] * 12 + a2) * 3 + sgn(co + c1)) * 3 + sgn(rw + rn)
                    v = int(res[p, y, x]) - 128
                    u = 2 * v if v >= 0 else -2 * v - 1
                    t = u if u < 16 else 16 + 2 * (u.bit_length() - 5) + ((u >> (u.bit_length() - 2)) & 1)
                    n_extra = 0 if u < 16 else u.bit_length() - 2
                    c = [(ta[k, ca, i] + tb[k, cb, i] + 2 * i) >> 1 for i in range(25)]
                    bits += 16 - math.log2(c[t + 1] - c[t]) + n_extra
                    for tab, cnt, ctx in ((ta, na, ca), (tb, nb, cb)):
                        n = cnt.get(ctx, 0)
                        shift = rate_lut[min(n, len(rate_lut) - 1)]
                        cnt[ctx] = n + 1
                        for i in range(1, 24):
                            tab[k, ctx, i] += ((65512 - tab[k, ctx, i]) >> shift) if i > t else -(tab[k, ctx, i] >> shift)
    return bits


def test_code_length_matches_an_independent_statement_of_the_model():
    """rANS spends within 0.3% (+ 32 bits of final state per lane) of the model's ideal code length, and
    no less than it: the coder implements the documented model, not a different one that happens to
    round-trip."""
    res = photo_residuals(21, 26, 3, seed=5)
    lane_rows = 8
    counts, words = _roundtrip(res, lane_rows)
    ideal = _reference_bits(res, cm.plane_kinds(3), MODEL, lane_rows)
    real = 16 * len(words)
    assert ideal - 1 <= real <= ideal * 1.003 + 32 * len(counts) + 16 * len(counts)


def test_adaptation_helps_on_an_image_unlike_training():
    """Adaptation is what closes the domain gap: with adaptation disabled (a rate so slow the tables
    never move) a noisy image costs more."""
    res = photo_residuals(48, 64, 3, seed=1)
    res = ((res.astype(np.int16) - 128) * 3 + 128).clip(0, 255).astype(np.uint8)
    kinds = cm.plane_kinds(3)
    adaptive = cr.encode_context_lanes(res, kinds, *MODEL.arrays, 48)[1].size
    frozen_lut = np.full(1, 15, np.int32)
    arrays = MODEL.arrays[:4] + (frozen_lut,)
    frozen = cr.encode_context_lanes(res, kinds, *arrays, 48)[1].size
    assert adaptive < 0.97 * frozen


@pytest.mark.parametrize("damage", ["flip", "truncate", "extra", "counts"])
def test_corrupted_lanes_are_detected(damage):
    res = photo_residuals(12, 20, 3, seed=2)
    kinds = cm.plane_kinds(3)
    counts, words = cr.encode_context_lanes(res, kinds, *MODEL.arrays, 4)
    counts, words = counts.copy(), words.copy()
    if damage == "flip":
        words[len(words) // 2] ^= 0x0100
    elif damage == "truncate":
        words = words[:-1]
        counts[-1] -= 1
    elif damage == "extra":
        words = np.append(words, np.uint16(7))
        counts[-1] += 1
    else:
        counts[0] += 1
    try:
        back = cr.decode_context_lanes(counts, words, res.shape, kinds, *MODEL.arrays, 4)
    except DecodeError:
        return
    assert not np.array_equal(back, res), "damage went unnoticed and changed nothing?"
    pytest.fail("corruption decoded without an error (the CRC would still catch it, but the coder should)")


def test_lane_table_checks():
    res = photo_residuals(6, 5, 1)
    kinds = cm.plane_kinds(1)
    counts, words = cr.encode_context_lanes(res, kinds, *MODEL.arrays, 2)
    for bad_counts, msg in [(counts[:-1], "image size"), (np.array([1, 2, 2], np.uint32), "shorter"),
                            (np.array([2, 2, 10 ** 6], np.uint32), "longer")]:
        with pytest.raises(DecodeError, match=msg):
            cr.decode_context_lanes(bad_counts, words, res.shape, kinds, *MODEL.arrays, 2)


def test_model_arrays_are_checked():
    kinds = cm.plane_kinds(3)
    res = photo_residuals(4, 4, 3)
    bad = MODEL.init_a.copy()
    bad[0, 0, 5] = bad[0, 0, 4] - 1
    with pytest.raises(ValueError, match="without decreasing"):
        cr.encode_context_lanes(res, kinds, bad, *MODEL.arrays[1:], 2)
    with pytest.raises(ValueError, match="kinds"):
        cr.encode_context_lanes(res, np.array([1, 0, 0]), *MODEL.arrays, 2)


def test_weights_file_checks():
    from tricodec.model import model_from_bytes, model_to_bytes
    good = resources.files("tricodec").joinpath("weights", "tric-cx1.npz").read_bytes()
    assert model_from_bytes(good).name == "tric-cx1"
    with pytest.raises(ModelError, match="sha256"):
        model_from_bytes(good, "0" * 64)
    config = {"kind": "context", "name": "x", "lane_pixels": 1 << 14, "rgb_order": [1, 0, 2], "rgb_refs": [-1, 0, 0]}
    arrays = dict(zip(("init_a", "init_b", "bin_a", "bin_b", "rate_lut"), MODEL.arrays))
    assert model_from_bytes(model_to_bytes(config, **arrays)).lane_pixels == 1 << 14
    with pytest.raises(ModelError, match="lane_pixels"):
        model_from_bytes(model_to_bytes(dict(config, lane_pixels=100), **arrays))
    broken = dict(arrays, bin_a=np.full(4096, 99, np.int32))
    with pytest.raises(ModelError, match="malformed"):
        model_from_bytes(model_to_bytes(config, **broken))
    with pytest.raises(ModelError, match="malformed"):
        model_from_bytes(model_to_bytes({k: v for k, v in config.items() if k != "lane_pixels"}, **arrays))


def test_files_with_lanes_smaller_than_any_encoder_writes_are_refused():
    """Every lane starts from a fresh copy of the tables: a file of thousands of one-row lanes must be
    refused from its SIDE section, not decoded for minutes."""
    import struct

    from tricodec import container

    from PIL import Image

    from conftest import ROOT
    strips = np.asarray(Image.open(ROOT / "samples" / "kodim23_crop.png").convert("RGB"))
    # a real photo, 40x600: the model must take it (a tuned PNG beats it on the synthetic photo_like)
    image = np.ascontiguousarray(np.concatenate([strips[:40], strips[40:80], strips[80:120]], axis=1)[:, :600])
    data = tricodec.encode(image)
    header, sections = container.unpack(data)
    # (the default tric-wf2's SIDE is the context model's lane_rows followed by its predictor's parameters)
    assert cm.unpack_side(sections[container.SEC_SIDE][:4], 40, 600) == 40
    assert cm.unpack_side(struct.pack("<I", 28), 40, 600) == 28       # 16800 pixels a lane: allowed
    with pytest.raises(DecodeError, match="smaller than any encoder"):
        cm.unpack_side(struct.pack("<I", 27), 40, 600)
    assert cm.unpack_side(struct.pack("<I", 3), 3, 5) == 3              # a small image: one whole lane
    with pytest.raises(DecodeError, match="smaller than any encoder"):
        cm.unpack_side(struct.pack("<I", 1), 3, 5)
